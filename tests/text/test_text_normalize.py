"""nfc, fold and fold_column."""
from __future__ import annotations

import unicodedata

from gisplatform.text import fold, fold_column, nfc, vietnamese_letters

from .vi_corpus import CORPUS


def test_nfc():
    assert nfc(unicodedata.normalize("NFD", "Nguyễn Văn Ửng")) == "Nguyễn Văn Ửng"


def test_fold_examples():
    assert fold("Xã Quý Hoà") == fold("xa quy hòa") == "xa quy hoa"
    assert fold("  XÃ\tQUÝ   HOÀ \n") == "xa quy hoa"
    assert fold("Thuỵ Hùng") == fold("Thụy Hùng") == "thuy hung"
    assert fold("Đông Kinh") == fold("đông kinh") == "dong kinh"
    assert fold("Ðông Kinh") == "dong kinh"  # Icelandic eth typed for Đ
    assert fold(unicodedata.normalize("NFD", "Điềm He")) == "diem he"
    assert fold("Trường") == "truong"
    assert fold("") == ""


def test_fold_every_letter_to_ascii():
    for c in vietnamese_letters():
        f = fold(c)
        assert len(f) == 1 and f.isascii() and f.islower(), c


def test_fold_column_matches_fold():
    values = CORPUS + [None, "", "  a \t b  ", "Straße", "İstanbul", "😀 Hà"]
    values += [unicodedata.normalize("NFD", "Hà Nội")]
    values += [v.upper() for v in CORPUS]
    out = fold_column(values)
    assert out == [None if v is None else fold(v) for v in values]
    assert fold_column([]) == []
    assert fold_column(["a\x00b"]) == [fold("a\x00b")]
