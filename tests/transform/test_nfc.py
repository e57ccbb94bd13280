"""Text to NFC with a cheap first look: only values with a character outside the safe ranges are checked by CPython.
The ranges are checked here against the running Python's own Unicode data, so a new Unicode version that made
one of their characters compose, or recompose, fails this test instead of letting text through unnormalised."""
from __future__ import annotations

import random
import sys
import unicodedata

import pyarrow as pa

from gisplatform.transform.arrow import NFC_SAFE_RANGES, nfc

HANGUL_VOWELS_AND_FINALS = {*range(0x1161, 0x1176), *range(0x11A8, 0x11C3)}  # compose with the jamo before them


def second_halves_of_compositions() -> set[int]:
    """Every character that is the second of a two-character canonical decomposition (a superset of those that
    NFC composes with the character before them), and the Hangul jamo that compose algorithmically."""
    seconds = set(HANGUL_VOWELS_AND_FINALS)
    for cp in range(sys.maxunicode + 1):
        decomposition = unicodedata.decomposition(chr(cp))
        if decomposition and not decomposition.startswith("<") and len(parts := decomposition.split()) == 2:
            seconds.add(int(parts[1], 16))
    return seconds


def test_safe_characters_are_starters_nfc_keeps_and_nothing_composes_with():
    seconds = second_halves_of_compositions()
    for low, high in NFC_SAFE_RANGES:
        for cp in range(low, high + 1):
            ch = chr(cp)
            assert unicodedata.combining(ch) == 0, f"U+{cp:04X} has a combining class"
            assert unicodedata.normalize("NFC", ch) == ch, f"NFC changes U+{cp:04X}"
            assert cp not in seconds, f"U+{cp:04X} may compose with the character before it"


def test_text_of_safe_characters_is_nfc():
    rng = random.Random(7)
    alphabet = [chr(cp) for low, high in NFC_SAFE_RANGES for cp in range(low, high + 1)]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        assert unicodedata.is_normalized("NFC", text)


def test_values_come_back_in_nfc_and_unchanged_arrays_as_they_were():
    values = ["Nguyễn Văn Ửng", None, "Thôn Nà Pàn – “Lạng Sơn”", unicodedata.normalize("NFD", "Lạng Sơn"),
              "\u2126 (ohm sign)", "A\u030a", "x\u0301\u0323", "ă\u0301", "\u1100\u1161", "Ω"]
    result = nfc(pa.array(values))
    assert result.to_pylist() == [None if v is None else unicodedata.normalize("NFC", v) for v in values]
    already = pa.array(["Nguyễn Văn Ửng", None, "Thôn Nà Pàn – “Lạng Sơn” 5 €", "Ω", "ascii"])
    assert nfc(already) is already
