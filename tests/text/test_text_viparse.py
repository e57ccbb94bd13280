"""Cross-check our TCVN3 and VNI tables against viparse (an independent implementation, used only here).

Where viparse disagrees, the standard layout decides. Our VNI table follows the VNI-Windows layout as shipped
by keyboard drivers (e.g. xvnkb's vni.h: rows "aê aé aè aú aü aë" and "y yù yø yû yõ î"):
  * ẳ / Ẳ = a + ú (0xFA) / A + Ú (0xDA). viparse (0.1.31) deliberately leaves ẳ out because its corpus never
    had one, so it returns "aú" unconverted.
  * ỵ / Ỵ = î (0xEE) / Î (0xCE), a single byte like ị ỉ ĩ. viparse has "yï" (y + dot) instead, marked
    "derived" (by symmetry) in its source; we decode "yï" too, but encode î.
Those four letters are the only disagreements; everything else must match exactly.
"""
from __future__ import annotations

import pytest

from gisplatform.text import decode_tcvn3, decode_vni, encode_tcvn3, encode_vni, vietnamese_letters

from .vi_corpus import CORPUS

viparse = pytest.importorskip("viparse")

VNI_DISAGREEMENTS = {"ẳ", "Ẳ", "ỵ", "Ỵ"}
TCVN3_UPPER = "ĂÂÊÔƠƯĐ"


def vp(raw: str, encoding: str) -> str:
    return viparse.fix(raw, encoding=encoding)


def test_tcvn3_every_letter_agrees():
    letters = [c for c in vietnamese_letters() if c.islower() and not c.isascii()] + list(TCVN3_UPPER)
    for c in letters:
        raw = encode_tcvn3(c).decode("latin-1")
        assert vp(raw, "tcvn3") == decode_tcvn3(raw) == c, c


def test_vni_every_letter_agrees_except_known():
    disagree = set()
    for c in vietnamese_letters():
        raw = encode_vni(c).decode("latin-1")
        assert decode_vni(raw) == c
        if vp("x" + raw + "x", "vni") != "x" + c + "x":
            disagree.add(c)
    assert disagree == VNI_DISAGREEMENTS


def test_vni_viparse_spelling_of_y_dot_decodes_the_same():
    assert vp("Kyï", "vni") == decode_vni("Kyï") == "Kỵ"


@pytest.mark.parametrize("text", CORPUS)
def test_corpus_tcvn3(text):
    raw = encode_tcvn3(text).decode("latin-1")
    assert decode_tcvn3(raw) == vp(raw, "tcvn3")


@pytest.mark.parametrize("text", CORPUS)
def test_corpus_vni(text):
    raw = encode_vni(text).decode("latin-1")
    ours = decode_vni(raw)
    assert ours == text
    if VNI_DISAGREEMENTS.isdisjoint(text):
        assert vp(raw, "vni") == ours
    else:  # e.g. "Thiện Kỵ", "Mạc Văn Đẳng": viparse leaves î / aú as they are
        assert vp(raw, "vni") != ours


def test_corpus_covers_the_disagreements():
    assert {"ẳ", "ỵ"} <= set("".join(CORPUS))
