"""Column-level detection and vectorised decoding."""
from __future__ import annotations

import logging
import random
import unicodedata

import pyarrow as pa
import pytest

from gisplatform.text import (
    ENCODINGS,
    Detection,
    decode_column,
    decode_cp1258,
    decode_tcvn3,
    decode_vni,
    detect_arrow_column,
    detect_column,
    encode_tcvn3,
    encode_vni,
    lossy_values,
    possibly_truncated,
)

from .vi_corpus import CORPUS, PEOPLE, PLACES

TCVN3_NAMES = ["Hoµng V¨n Thô", "NguyÔn V¨n An", "L­êng V¨n Phñ", "N«ng ThÞ H­êng", "§Êt ë t¹i n«ng th«n"]
VNI_NAMES = ["Nguyeãn Vaên An", "Laïng Sôn", "Ñaát ôû taïi noâng thoân", "Löôøng Vaên Phuû"]


def tcvn3(texts):
    return [encode_tcvn3(t).decode("latin-1") for t in texts]


def vni(texts):
    return [encode_vni(t).decode("latin-1") for t in texts]


def utf8_as_latin1(texts):
    return [t.encode("utf-8").decode("latin-1") for t in texts]


# ---------------------------------------------------------------------------------------------- detection
@pytest.mark.parametrize("column", [
    TCVN3_NAMES, VNI_NAMES, utf8_as_latin1(PEOPLE), list(PLACES), ["abc", "", None, "12"], [None, ""],
    tcvn3(PEOPLE) + list(PEOPLE),  # a GeoPackage column mixing .VnTime rows and Unicode rows
    [name for name in tcvn3(PEOPLE) for _ in range(900)] + [None] * 7,  # more evidence than is scored
], ids=["tcvn3", "vni", "utf8-as-latin1", "unicode", "ascii", "empty", "mixed", "sampled"])
def test_detection_from_arrow_is_the_detection_from_python(column):
    """The run detects on the Arrow column (detect_arrow_column): same encoding, confidence and evidence."""
    assert detect_arrow_column(pa.array(column, pa.string())) == detect_column(column)
    assert detect_arrow_column(pa.chunked_array([pa.array(column[:3], pa.string()),
                                                 pa.array(column[3:], pa.string())])) == detect_column(column)


def test_detection_shape():
    d = detect_column(TCVN3_NAMES)
    assert isinstance(d, Detection) and d.encoding in ENCODINGS
    assert 0.0 <= d.confidence <= 1.0 and d.evidence
    with pytest.raises(Exception):
        d.encoding = "vni"  # frozen


def test_short_tcvn3_names_column():
    d = detect_column(["Hoµng V¨n Thô", "NguyÔn V¨n An"])
    assert d.encoding == "tcvn3"
    assert decode_column(["Hoµng V¨n Thô", "NguyÔn V¨n An"], d.encoding) == ["Hoàng Văn Thụ", "Nguyễn Văn An"]


def test_viparse_per_value_failure_cases_work_in_a_column():
    # The domain note: viparse read "Hoµng V¨n Thô" alone as VISCII ("Hoộng Vẽn Thô") and left
    # "NguyÔn V¨n An" unconverted. Even alone, and in a column, we must get TCVN3.
    assert detect_column(["Hoµng V¨n Thô"]).encoding == "tcvn3"
    assert detect_column(["NguyÔn V¨n An"]).encoding == "tcvn3"
    column = ["Hoµng V¨n Thô", None, "", "NguyÔn V¨n An", "Lo"]
    d = detect_column(column)
    assert d.encoding == "tcvn3"
    assert "fingerprint" in d.evidence
    assert decode_column(column, "tcvn3") == ["Hoàng Văn Thụ", None, "", "Nguyễn Văn An", "Lo"]


def test_tcvn3_corpus_column_high_confidence():
    d = detect_column(tcvn3(CORPUS))
    assert d.encoding == "tcvn3" and d.confidence > 0.9


def test_vni_columns():
    assert detect_column(["Nguyeãn Vaên"]).encoding == "vni"
    assert detect_column(VNI_NAMES).encoding == "vni"
    d = detect_column(vni(CORPUS))
    assert d.encoding == "vni" and d.confidence > 0.9
    assert decode_column(vni(CORPUS), "vni") == CORPUS


def test_ascii_column():
    d = detect_column(["Nguyen Van An", None, "ONT", "", "Thua 12"])
    assert d == Detection("ascii", 1.0, d.evidence)
    assert detect_column([]).encoding == "ascii"


def test_utf8_read_as_latin1():
    assert detect_column(["LÃ¡ng"]).encoding == "utf-8"
    column = utf8_as_latin1(PLACES)
    d = detect_column(column)
    assert d.encoding == "utf-8"
    assert decode_column(column, "utf-8") == PLACES


def test_real_unicode_column():
    d = detect_column(PEOPLE + [None])
    assert d.encoding == "unicode"
    assert decode_column(PEOPLE + [None], d.encoding) == PEOPLE + [None]


def test_nfd_unicode_column_decodes_to_nfc():
    nfd = [unicodedata.normalize("NFD", t) for t in PLACES]
    assert nfd != PLACES
    d = detect_column(nfd)
    assert d.encoding == "unicode"
    assert decode_column(nfd, d.encoding) == PLACES


def test_latin1_only_unicode_is_not_mistaken_for_legacy():
    # Real Unicode names that happen to sit inside U+00FF and have no legacy fingerprint.
    assert detect_column(["Bà Tô", "Lê Tú", "Hà"]).encoding == "unicode"
    assert detect_column(["Café crème", "Zürich"]).encoding == "unicode"


def test_cp1258_column():
    column = ["Vi\xea\xf2t Nam", "Nguy\xea\xden V\xe3n An", "L\xf5\xecn"]
    d = detect_column(column)
    assert d.encoding == "cp1258"
    assert decode_column(column, d.encoding) == ["Việt Nam", "Nguyễn Văn An", "Lớn"]


@pytest.mark.parametrize("odd", ["Nguyễn Văn An", "Nguyeãn Vaên", "LÃ¡ng", "Café", "???"])
def test_mixed_column_with_one_odd_value(odd):
    column = tcvn3(PEOPLE) + [odd]
    assert detect_column(column).encoding == "tcvn3"
    column = vni(PEOPLE) + [odd]
    assert detect_column(column).encoding == "vni"


def test_mixed_utf8_column_with_one_broken_value_keeps_it(caplog):
    column = utf8_as_latin1(PLACES) + ["NguyÔn"]
    assert detect_column(column).encoding == "utf-8"
    with caplog.at_level(logging.WARNING):
        out = decode_column(column, "utf-8")
    assert out[:-1] == PLACES and out[-1] == "NguyÔn"
    assert "not valid UTF-8" in caplog.text


def test_unicode_rows_in_a_legacy_column_are_left_alone():
    # A GeoPackage column where some rows were typed in Unicode, most with a .VnTime font.
    column = tcvn3(PEOPLE) + ["Lê Văn Ửng"]
    d = detect_column(column)
    assert d.encoding == "tcvn3"
    out = decode_column(column, d.encoding)
    assert out[-1] == "Lê Văn Ửng"
    assert out[0] == "Nguyễn Văn An"


# ---------------------------------------------------------------------------------------------- decoding
def test_decode_column_none_and_empty():
    for enc in ENCODINGS:
        assert decode_column([None, "", None], enc) == [None, "", None]
        assert decode_column([], enc) == []


def test_decode_column_unknown_encoding():
    with pytest.raises(ValueError, match="unknown text encoding"):
        decode_column(["x"], "viscii")
    assert decode_column(["L¹ng"], "TCVN3") == ["Lạng"]
    assert decode_column(["LÃ¡ng"], "utf8") == ["Láng"]


def test_decode_column_with_separator_characters_inside_values():
    column = ["a\x00L¹ng", "b\x1eS¬n", "c\ufdd0"]
    assert decode_column(column, "tcvn3") == [decode_tcvn3(v) for v in column]


def test_decode_column_vni_stray_marks_match_per_value():
    column = vni(PEOPLE) + ["Café", "ù", "aùù", None]
    out = decode_column(column, "vni")
    assert out == [None if v is None else decode_vni(v) for v in column]
    assert out[-4:-1] == ["Café", "ù", "áù"]


def _random_values(n: int, seed: int) -> list[str | None]:
    rng = random.Random(seed)
    words = " ".join(CORPUS).split() + ["12", "ONT", "-", ","]
    out: list[str | None] = []
    for _ in range(n):
        n_words = rng.randint(0, 4)
        out.append(None if rng.random() < 0.02 else " ".join(rng.choice(words) for _ in range(n_words)))
    return out


@pytest.mark.parametrize("encoding, encode, per_value", [
    ("tcvn3", encode_tcvn3, decode_tcvn3),
    ("vni", encode_vni, decode_vni),
])
def test_decode_200k_values_vectorised(encoding, encode, per_value):
    texts = _random_values(200_000, seed=7)
    raw = [None if t is None else encode(t).decode("latin-1") for t in texts]
    out = decode_column(raw, encoding)
    assert len(out) == len(raw)
    assert [i for i, v in enumerate(out) if v is None] == [i for i, v in enumerate(raw) if v is None]
    for i in random.Random(1).sample(range(len(raw)), 3000):
        expected = None if raw[i] is None else per_value(raw[i])
        assert out[i] == expected
        if encoding == "vni":
            assert out[i] == texts[i]
    assert all(v is None or unicodedata.is_normalized("NFC", v) for v in out[:5000])


def test_decode_cp1258_and_unicode_columns_match_per_value():
    raw = ["Vi\xea\xf2t Nam", None, "L\xf5\xecn"] * 1000
    assert decode_column(raw, "cp1258") == [None if v is None else decode_cp1258(v) for v in raw]
    nfd = [unicodedata.normalize("NFD", t) for t in CORPUS] * 100
    assert decode_column(nfd, "unicode") == CORPUS * 100


# ---------------------------------------------------------------------------------------------- row flags
def test_lossy_values():
    values = ["Nguy?n V?n An", "Có không?", "?ông Kinh", "Lạng S\ufffdn", None, "", "Đông Kinh", "12?"]
    values += ["a ? b"]
    assert lossy_values(values) == [0, 2, 3]


def test_lossy_mask_of_arrow_columns_chunked_sliced_or_without_marks():
    import pyarrow as pa

    from gisplatform.text.detect import lossy_mask

    assert not lossy_mask(pa.array(["Lạng Sơn", None, "Đông Kinh"] * 1000)).any()  # no "?" nor U+FFFD at all
    assert lossy_mask(pa.chunked_array([["Lạng Sơn"], ["?ông Kinh", "Có không?"]])).tolist() == [False, True, False]
    sliced = pa.array(["?ông Kinh", "Đông Kinh", "Lạng S\ufffdn"], pa.large_string()).slice(1)
    assert lossy_mask(sliced).tolist() == [False, True]  # the buffer also holds the first value


def test_possibly_truncated_vni():
    # "Nông Thị Hà" is 13 bytes in VNI ("Noâng Thò Haø"); a C(12) field cuts "aø" between base and mark.
    full = encode_vni("Nông Thị Hà").decode("latin-1")
    assert full == "Noâng Thò Haø"
    cut = full[:12]
    assert decode_vni(cut) == "Nông Thị Ha"
    raw = [cut, "Laïng Sôn", None, "x" * 12, ""]
    assert possibly_truncated(raw, 12, "vni") == [0, 3]
    assert possibly_truncated(raw, 12, "tcvn3") == []
    assert possibly_truncated(["LÃ¡ng SÆ"], 8, "utf-8") == [0]  # "Láng S" + half of ơ


@pytest.mark.parametrize("failing, decided", [(0, "utf-8"), (2, "utf-8"), (3, "unicode")])
def test_the_utf8_count_stops_early_but_decides_as_the_full_count_would(failing, decided):
    """Text that is UTF-8 read as Latin-1 wins at 80 % of the values; the count stops once a fifth fail, so the
    boundary (8 of 10) must still go the same way, and a passing count is exact (its share is reported)."""
    mojibake = ["Lạng Sơn".encode("utf-8").decode("latin-1")] * (10 - failing)
    typed_in_unicode = ["Lê Hà Tú"] * failing  # Latin-1 range, not UTF-8 bytes
    found = detect_column(mojibake + typed_in_unicode)
    assert (found.encoding == "utf-8") == (decided == "utf-8")
    if decided == "utf-8":
        assert found.evidence.startswith(f"{10 - failing} of 10 ")
