"""TCVN3 / VNI / CP1258 tables: every letter, the domain fingerprints, the soft hyphen, stray VNI marks."""
from __future__ import annotations

import unicodedata

import pytest

from gisplatform.text import (
    decode_cp1258,
    decode_tcvn3,
    decode_vni,
    encode_tcvn3,
    encode_vni,
    vietnamese_letters,
)

from .vi_corpus import CORPUS

LETTERS = vietnamese_letters()
LOWER = [c for c in LETTERS if c.islower() and not c.isascii()]
UPPER = [c for c in LETTERS if c.isupper()]
TCVN3_UPPER = "ĂÂÊÔƠƯĐ"  # the only uppercase non-ASCII letters TCVN3 has


def latin1(b: bytes) -> str:
    """Raw bytes the way the DBF reader hands them over."""
    return b.decode("latin-1")


def test_letter_inventory():
    assert len(LETTERS) == 146 and len(set(LETTERS)) == 146
    assert all(len(c) == 1 and unicodedata.is_normalized("NFC", c) for c in LETTERS)
    for word in ("ế", "ậ", "ữ", "ợ", "ặ", "ẳ", "ỵ", "Ỵ", "Ẳ", "đ", "Đ"):
        assert word in LETTERS


# ------------------------------------------------------------------------------------------------------ VNI
@pytest.mark.parametrize("letter", LETTERS)
def test_vni_round_trip_every_letter(letter):
    raw = latin1(encode_vni(letter))
    assert 1 <= len(raw) <= 2  # base + one mark byte at most
    assert decode_vni(raw) == letter
    # also inside a word, where the next letter must not be swallowed
    word = "Ng" + letter + "n"
    assert decode_vni(latin1(encode_vni(word))) == word


def test_vni_round_trip_corpus():
    for text in CORPUS + [t.upper() for t in CORPUS]:
        assert decode_vni(latin1(encode_vni(text))) == text


@pytest.mark.parametrize("raw, text", [
    ("Nguyeãn", "Nguyễn"), ("Vaên", "Văn"), ("Laïng Sôn", "Lạng Sơn"), ("Ñaát", "Đất"), ("ngöôøi", "người"),
    ("Vieät Nam", "Việt Nam"), ("tænh", "tỉnh"), ("Nghóa", "Nghĩa"), ("thò xaõ", "thị xã"),
    ("Thieän Kî", "Thiện Kỵ"),
    ("Maïc Vaên Ñaúng", "Mạc Văn Đẳng"), ("NGUYEÃN VAÊN AN", "NGUYỄN VĂN AN"), ("ÑAÁT ÔÛ", "ĐẤT Ở"),
])
def test_vni_known_words(raw, text):
    assert decode_vni(raw) == text


def test_vni_known_bytes():
    # single-byte letters from the VNI-Windows layout
    assert encode_vni("đĐưƯơƠịỈĩỵÌí") == bytes(
        [0xF1, 0xD1, 0xF6, 0xD6, 0xF4, 0xD4, 0xF2, 0xC6, 0xF3, 0xEE, 0xCC, 0xED])
    assert encode_vni("ấ ậ ắ ặ ẳ ừ") == b"a\xe1 a\xe4 a\xe9 a\xeb a\xfa \xf6\xf8"
    assert encode_vni("Ấ") == b"A\xc1"


def test_vni_tolerates_y_dot_and_i_marks():
    # Other tables write ỵ as y + dot and ì as i + grave; both still decode to the same letters.
    assert decode_vni("Kyï") == "Kỵ"
    assert decode_vni("iø iù") == "ì í"


def test_vni_stray_marks_are_kept_as_letters():
    # á â ê ù ... are latin-1 letters too: after something they cannot sit on they stay what they are.
    assert decode_vni("Café") == "Café"  # é (breve+acute) after f
    assert decode_vni("ù 1â") == "ù 1â"
    assert decode_vni("uê") == "uê"  # breve only goes on a
    assert decode_vni("aùù") == "áù"


def test_vni_leaves_characters_above_latin1_alone():
    assert decode_vni("Laïng Sơn ÿ€") == "Lạng Sơn ÿ€"
    assert decode_vni("Laï\u0301ng") == unicodedata.normalize("NFC", "Lạ\u0301ng")
    assert decode_vni("") == ""


# ---------------------------------------------------------------------------------------------------- TCVN3
@pytest.mark.parametrize("letter", LOWER + list(TCVN3_UPPER))
def test_tcvn3_round_trip(letter):
    raw = encode_tcvn3(letter)
    assert len(raw) == 1 and raw[0] >= 0xA1
    assert decode_tcvn3(latin1(raw)) == letter


def test_tcvn3_uses_74_distinct_bytes():
    codes = {encode_tcvn3(c) for c in LOWER + list(TCVN3_UPPER)}
    assert len(codes) == 74


@pytest.mark.parametrize("letter", [c for c in UPPER if c not in TCVN3_UPPER and not c.isascii()])
def test_tcvn3_uppercase_accented_encode_lowercase(letter):
    assert encode_tcvn3(letter) == encode_tcvn3(letter.lower())
    assert decode_tcvn3(latin1(encode_tcvn3(letter))) == letter.lower()


def test_tcvn3_round_trip_corpus_lowercase():
    for text in CORPUS:
        flat = "".join(c.lower() if not c.isascii() and c not in TCVN3_UPPER else c for c in text)
        assert decode_tcvn3(latin1(encode_tcvn3(text))) == flat


@pytest.mark.parametrize("raw, text", [
    ("§Êt", "Đất"), ("x·", "xã"), ("huyÖn", "huyện"), ("tØnh", "tỉnh"), ("n«ng th«n", "nông thôn"),
    ("NguyÔn", "Nguyễn"), ("V¨n", "Văn"), ("ThÞ", "Thị"), ("Hoµng", "Hoàng"), ("L¹ng S¬n", "Lạng Sơn"),
    ("Hoµng V¨n Thô", "Hoàng Văn Thụ"), ("®Êt ë t¹i n«ng th«n", "đất ở tại nông thôn"),
])
def test_tcvn3_fingerprints(raw, text):
    assert decode_tcvn3(raw) == text


def test_tcvn3_soft_hyphen_is_u_horn():
    assert decode_tcvn3("Tr\xadêng") == "Trường"
    assert decode_tcvn3("Ng\xadêi") == "Người"
    assert encode_tcvn3("Trường") == b"Tr\xad\xeang"
    assert encode_tcvn3("ư") == b"\xad"


def test_tcvn3_unused_bytes_and_wide_characters_pass_through():
    assert decode_tcvn3("\xe0\xf0 ABC 123") == "\xe0\xf0 ABC 123"
    assert decode_tcvn3("L¹ng Sơn") == "Lạng Sơn"


# --------------------------------------------------------------------------------------------------- encode
@pytest.mark.parametrize("encode", [encode_tcvn3, encode_vni])
def test_unencodable_character_is_named(encode):
    with pytest.raises(ValueError, match="U\\+20AC"):
        encode("Giá 5 €")
    with pytest.raises(ValueError, match="'ç'"):
        encode("ça")


def test_encoders_accept_nfd_input():
    nfd = unicodedata.normalize("NFD", "Nguyễn Văn Ửng")
    assert encode_vni(nfd) == encode_vni("Nguyễn Văn Ửng")
    assert encode_tcvn3(nfd) == encode_tcvn3("Nguyễn Văn Ửng")


# --------------------------------------------------------------------------------------------------- CP1258
@pytest.mark.parametrize("raw, text", [
    ("Vi\xea\xf2t Nam", "Việt Nam"),  # ê + combining dot below
    ("Nguy\xea\xden V\xe3n", "Nguyễn Văn"),  # ê + combining tilde, ă = 0xE3
    ("\xd0\xe2\xcct", "Đầt"),
    ("\xf0\xfd\xec", "đứ"),  # ư = 0xFD, then combining acute
    ("L\xf5\xecn", "Lớn"),  # ơ = 0xF5
])
def test_cp1258(raw, text):
    assert decode_cp1258(raw) == text
    assert unicodedata.normalize("NFC", raw.encode("latin-1").decode("cp1258")) == text
