"""Byte tables for the legacy Vietnamese encodings found in cadastral DBFs: TCVN3 (ABC), VNI-Windows, CP1258.

Every decoder takes a ``str`` whose code points U+0000–U+00FF *are* the raw bytes (the DBF reader reads text
as latin-1; text typed with a .VnTime / VNI-Times font and saved as Unicode looks the same) and returns NFC.
Characters above U+00FF cannot be legacy bytes and are passed through unchanged.

Tables are written out by hand from TCVN 5712:1993 (VN3) and the VNI-Windows font layout; the tests
cross-check them against ``viparse`` and round-trip every Vietnamese letter.
"""
from __future__ import annotations

import codecs
import re
import unicodedata

import numpy as np

# Combining tone marks, in the order TCVN3 lays its rows out: huyền, hỏi, ngã, sắc, nặng.
GRAVE, HOOK, TILDE, ACUTE, DOT = "\u0300", "\u0309", "\u0303", "\u0301", "\u0323"
TONES = (GRAVE, HOOK, TILDE, ACUTE, DOT)
CIRCUMFLEX, BREVE = "\u0302", "\u0306"

#: The 12 Vietnamese vowels (toneless) and đ; with 5 tones each that is every Vietnamese letter.
VOWELS = "aăâeêioôơuưy"


def _nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


_WIDE = re.compile("[^\x00-\xff]")
_WIDE_RUN = re.compile("([^\x00-\xff]+)")


def vietnamese_letters() -> list[str]:
    """Every Vietnamese letter, lowercase then uppercase (12 vowels × 6 tone forms + đ, both cases = 146)."""
    lower = [_nfc(v + t) for v in VOWELS for t in ("",) + TONES] + ["đ"]
    return lower + [c.upper() for c in lower]


# --------------------------------------------------------------------------------------------- TCVN3 (ABC)
# Lowercase toned letters live in 0xB5–0xFE, one row per vowel in the order grave, hook, tilde, acute, dot.
# The gaps (0xBA, 0xBF–0xC5, 0xCD, 0xD9–0xDB, 0xE0, 0xF0) are unused in VN3 (the full VN1 variant puts some
# uppercase accented letters there; VN3, the ABC fonts, has none), so such bytes are left as they are.
_TCVN3_ROWS: dict[str, tuple[int, int, int, int, int]] = {
    "a": (0xB5, 0xB6, 0xB7, 0xB8, 0xB9),  # à ả ã á ạ
    "ă": (0xBB, 0xBC, 0xBD, 0xBE, 0xC6),  # ằ ẳ ẵ ắ ặ
    "â": (0xC7, 0xC8, 0xC9, 0xCA, 0xCB),  # ầ ẩ ẫ ấ ậ
    "e": (0xCC, 0xCE, 0xCF, 0xD0, 0xD1),  # è ẻ ẽ é ẹ
    "ê": (0xD2, 0xD3, 0xD4, 0xD5, 0xD6),  # ề ể ễ ế ệ
    "i": (0xD7, 0xD8, 0xDC, 0xDD, 0xDE),  # ì ỉ ĩ í ị
    "o": (0xDF, 0xE1, 0xE2, 0xE3, 0xE4),  # ò ỏ õ ó ọ
    "ô": (0xE5, 0xE6, 0xE7, 0xE8, 0xE9),  # ồ ổ ỗ ố ộ
    "ơ": (0xEA, 0xEB, 0xEC, 0xED, 0xEE),  # ờ ở ỡ ớ ợ
    "u": (0xEF, 0xF1, 0xF2, 0xF3, 0xF4),  # ù ủ ũ ú ụ
    "ư": (0xF5, 0xF6, 0xF7, 0xF8, 0xF9),  # ừ ử ữ ứ ự
    "y": (0xFA, 0xFB, 0xFC, 0xFD, 0xFE),  # ỳ ỷ ỹ ý ỵ
}
# The only uppercase letters TCVN3 has (0xA1–0xA7), then their lowercase (0xA8–0xAE).
# 0xAD, the soft hyphen, is ư: nothing here may treat U+00AD as ignorable.
_TCVN3_BASES = "ĂÂÊÔƠƯĐăâêôơưđ"

#: byte -> Unicode character, for the 74 bytes TCVN3 assigns; every other byte means itself.
TCVN3_TABLE: dict[int, str] = {0xA1 + i: c for i, c in enumerate(_TCVN3_BASES)}
for _base, _codes in _TCVN3_ROWS.items():
    for _tone, _code in zip(TONES, _codes):
        TCVN3_TABLE[_code] = _nfc(_base + _tone)

# Uppercase accented letters have no code: they are written with the lowercase code (shown by .VnTimeH fonts).
_TCVN3_ENCODE: dict[str, int] = {c: b for b, c in TCVN3_TABLE.items()}
for _c, _b in list(_TCVN3_ENCODE.items()):
    _TCVN3_ENCODE.setdefault(_c.upper(), _b)

# ---------------------------------------------------------------------------------------------- VNI-Windows
# VNI is composite: an ASCII base letter followed by one mark byte. Each mark byte has a lowercase and an
# uppercase form (0x20 apart, drawn higher for capitals); both mean the same combining mark(s).
# mark(s) -> (lowercase byte, uppercase byte)
_VNI_TONE_MARKS = {GRAVE: (0xF8, 0xD8), ACUTE: (0xF9, 0xD9), HOOK: (0xFB, 0xDB), TILDE: (0xF5, 0xD5),
                   DOT: (0xEF, 0xCF)}  # ø ù û õ ï
_VNI_CIRC_MARKS = {"": (0xE2, 0xC2), GRAVE: (0xE0, 0xC0), ACUTE: (0xE1, 0xC1), HOOK: (0xE5, 0xC5),
                   TILDE: (0xE3, 0xC3), DOT: (0xE4, 0xC4)}  # â à á å ã ä  (circumflex [+ tone])
_VNI_BREVE_MARKS = {"": (0xEA, 0xCA), GRAVE: (0xE8, 0xC8), ACUTE: (0xE9, 0xC9), HOOK: (0xFA, 0xDA),
                    TILDE: (0xFC, 0xDC), DOT: (0xEB, 0xCB)}  # ê è é ú ü ë  (breve [+ tone])
# Letters that VNI writes as one byte (lowercase, uppercase). ì í are the latin-1 letters themselves.
# ỵ is î (0xEE), not y + dot; viparse has "yï" instead (decoded here too), see tests/text/test_viparse.py.
_VNI_LETTERS = {"đ": (0xF1, 0xD1), "ư": (0xF6, 0xD6), "ơ": (0xF4, 0xD4), "ị": (0xF2, 0xD2),
                "ỉ": (0xE6, 0xC6), "ĩ": (0xF3, 0xD3), "ỵ": (0xEE, 0xCE), "ì": (0xEC, 0xCC), "í": (0xED, 0xCD)}

#: byte -> Unicode: single-byte letters, and mark bytes -> combining mark(s) (NFC then composes them).
VNI_TABLE: dict[int, str] = {}
for _marks, _table in ((CIRCUMFLEX, _VNI_CIRC_MARKS), (BREVE, _VNI_BREVE_MARKS), ("", _VNI_TONE_MARKS)):
    for _tone, (_lo, _up) in _table.items():
        VNI_TABLE[_lo] = VNI_TABLE[_up] = _marks + _tone
for _letter, (_lo, _up) in _VNI_LETTERS.items():
    VNI_TABLE[_lo], VNI_TABLE[_up] = _letter, _letter.upper()


# VNI_TABLE says what each byte means *alone*; applying it with str.translate and then NFC would compose
# base + combining marks into letters. The same is precomputed here as a pair table (base byte, mark byte) ->
# letter, applied with numpy (an NFC pass over a million values costs more than the rest of the decode).
# Mark bytes are latin-1 letters too (â á ê ù ...): one only counts as a mark right after a letter it can sit
# on: breve after a, circumflex after a e o, a tone after any vowel (ô ö are the VNI bytes for ơ ư). A stray
# mark byte is kept as the latin-1 letter it is.
_VNI_BASES = {  # mark byte -> the bytes it may follow
    **{b: "aA" for pair in _VNI_BREVE_MARKS.values() for b in pair},
    **{b: "aeoAEO" for pair in _VNI_CIRC_MARKS.values() for b in pair},
    **{b: "aeiouyAEIOUY\xf4\xf6\xd4\xd6" for pair in _VNI_TONE_MARKS.values() for b in pair},
}
_VNI_MARKS = set(_VNI_BASES)

_VNI_SINGLE = np.arange(256, dtype=np.uint16)  # byte -> code point on its own (stray marks: themselves)
for _b, _c in VNI_TABLE.items():
    if _b not in _VNI_MARKS:
        _VNI_SINGLE[_b] = ord(_c)
_VNI_IS_MARK = np.zeros(256, dtype=bool)
_VNI_IS_MARK[list(_VNI_MARKS)] = True
_VNI_PAIR = np.zeros(65536, dtype=np.uint16)  # (base << 8 | mark) -> composed letter, 0 = not a pair
for _m, _bases in _VNI_BASES.items():
    for _base in _bases:
        _letter = _nfc(VNI_TABLE.get(ord(_base), _base) + VNI_TABLE[_m])
        assert len(_letter) == 1, (_base, _m, _letter)
        _VNI_PAIR[ord(_base) << 8 | _m] = ord(_letter)
# Scoring variant for the detector: bytes VNI does not use and stray marks become U+FFFD.
_VNI_SINGLE_STRICT = _VNI_SINGLE.copy()
for _b in range(0x80, 0x100):
    if _b not in VNI_TABLE:
        _VNI_SINGLE_STRICT[_b] = 0xFFFD


def vni_decode_bytes(raw: bytes, strict: bool = False) -> str:
    """Decode VNI bytes in a few numpy passes; the result is NFC by construction (one letter per pair)."""
    a = np.frombuffer(raw, dtype=np.uint8)
    out = (_VNI_SINGLE_STRICT if strict else _VNI_SINGLE)[a]
    marks = np.flatnonzero(_VNI_IS_MARK[a])
    prev = np.where(marks > 0, a[marks - 1], 0).astype(np.uint16)  # a mark at position 0 has no base
    letters = _VNI_PAIR[prev << 8 | a[marks]]
    paired = letters != 0
    out[marks[paired] - 1] = letters[paired]
    if strict:
        out[marks[~paired]] = 0xFFFD
    return np.delete(out, marks[paired]).tobytes().decode("utf-16-le")


def _vni_sequence(letter: str) -> str:
    """One NFC Vietnamese letter as VNI bytes (as latin-1 code points); KeyError if it has none."""
    upper = letter.isupper()
    pick = 1 if upper else 0
    if letter.lower() in _VNI_LETTERS:
        return chr(_VNI_LETTERS[letter.lower()][pick])
    d = unicodedata.normalize("NFD", letter.lower())
    base, marks = d[0], d[1:]
    tone = "".join(m for m in marks if m in TONES)  # NFD puts the dot below first: ậ = a + dot + circumflex
    shape = "".join(m for m in marks if m not in TONES)
    if base == "o" and shape == "\u031b":  # ơ
        head, table = chr(_VNI_LETTERS["ơ"][pick]), _VNI_TONE_MARKS
    elif base == "u" and shape == "\u031b":  # ư
        head, table = chr(_VNI_LETTERS["ư"][pick]), _VNI_TONE_MARKS
    elif shape == CIRCUMFLEX and base in "aeo":
        head, table = base, _VNI_CIRC_MARKS
    elif shape == BREVE and base == "a":
        head, table = base, _VNI_BREVE_MARKS
    elif shape == "" and base in "aeiouy":
        head, table = base, _VNI_TONE_MARKS
    else:
        raise KeyError(letter)
    if upper and head.isascii():
        head = head.upper()
    return head + (chr(table[tone][pick]) if tone or table is not _VNI_TONE_MARKS else "")


_VNI_ENCODE: dict[str, str] = {c: _vni_sequence(c) for c in vietnamese_letters() if not c.isascii()}

# ------------------------------------------------------------------------------------------------- CP1258
# Windows-1258: precomposed base letters plus *separate* combining tone marks.
# Bytes it leaves undefined mean themselves.
CP1258_TABLE: dict[int, str] = {}
for _b in range(0x80, 0x100):
    try:
        CP1258_TABLE[_b] = bytes([_b]).decode("cp1258")
    except UnicodeDecodeError:
        pass


# ------------------------------------------------------------------------------------------------ functions
def charmap(table: dict[int, str], unassigned: str | None = None) -> str:
    """A 256-char table for ``codecs.charmap_decode`` (one C pass over the bytes): every byte the encoding
    does not assign means itself, or ``unassigned`` (the detector's strict variant)."""
    default = [chr(b) if unassigned is None or b < 0x80 else unassigned for b in range(256)]
    return "".join(table.get(b, default[b]) for b in range(256))


TCVN3_CHARMAP = charmap(TCVN3_TABLE)
CP1258_CHARMAP = charmap(CP1258_TABLE)


def charmap_decode(raw: bytes, table: str) -> str:
    return codecs.charmap_decode(raw, "strict", table)[0]


def decode_tcvn3(s: str) -> str:
    """TCVN3 bytes (as latin-1 code points) -> NFC Unicode. ``"NguyÔn V¨n"`` -> ``"Nguyễn Văn"``."""
    return _nfc(s.translate(TCVN3_TABLE))  # translate leaves characters above U+00FF alone


def decode_vni(s: str) -> str:
    """VNI-Windows bytes (as latin-1 code points) -> NFC Unicode. ``"Nguyeãn Vaên"`` -> ``"Nguyễn Văn"``."""
    if not _WIDE.search(s):
        return vni_decode_bytes(s.encode("latin-1"))
    # Characters above U+00FF are not bytes: decode the runs between them, leave them as they are.
    parts = _WIDE_RUN.split(s)
    parts[::2] = [vni_decode_bytes(p.encode("latin-1")) for p in parts[::2]]
    return _nfc("".join(parts))


def decode_cp1258(s: str) -> str:
    """Windows-1258 bytes (as latin-1 code points) -> NFC Unicode (its separate tone marks are composed)."""
    return _nfc(s.translate(CP1258_TABLE))


def _unencodable(encoding: str, s: str, ch: str) -> ValueError:
    return ValueError(f"{encoding} cannot encode {ch!r} (U+{ord(ch):04X}) in {s!r}")


def encode_tcvn3(s: str) -> bytes:
    """Unicode -> TCVN3 bytes. Uppercase accented letters become their lowercase code, as the real fonts do.

    Only ASCII and Vietnamese letters can be encoded; anything else raises ``ValueError`` naming it.
    """
    out = bytearray()
    for ch in _nfc(s):
        if ch.isascii():
            out.append(ord(ch))
        elif ch in _TCVN3_ENCODE:
            out.append(_TCVN3_ENCODE[ch])
        else:
            raise _unencodable("TCVN3", s, ch)
    return bytes(out)


def encode_vni(s: str) -> bytes:
    """Unicode -> VNI-Windows bytes (base letter + mark byte). ASCII and Vietnamese letters only."""
    out = []
    for ch in _nfc(s):
        if ch.isascii():
            out.append(ch)
        elif ch in _VNI_ENCODE:
            out.append(_VNI_ENCODE[ch])
        else:
            raise _unencodable("VNI", s, ch)
    return "".join(out).encode("latin-1")
