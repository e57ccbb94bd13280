"""Unicode normal form and an accent-insensitive key for matching Vietnamese names.

``fold`` makes "Xã Quý Hoà", "xa quy hòa" and "XÃ  QUÝ HOÀ" one key: it drops every diacritic, so old and new
tone placement (hoà / hòa, thuỵ / thụy) and NFD text from macOS all meet.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

import numpy as np


def nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


@functools.cache
def _fold_tables() -> tuple[np.ndarray, np.ndarray, dict[int, str | None]]:
    """Per-character folding of the BMP, applied after casefold: (replacement code point, keep flag) arrays
    for columns and the same as a ``str.translate`` dict for single values, so both give identical keys.

    A character folds to its NFD base letter without combining marks; a combining mark is dropped; any
    whitespace becomes a space; đ (and ð, Icelandic eth, a common stand-in for it in old data) becomes d,
    since đ is a letter of its own and does not decompose.
    """
    to = np.arange(65536, dtype=np.uint16)
    keep = np.ones(65536, dtype=bool)
    for cp in range(0x09, 65536):
        if 0xD800 <= cp <= 0xDFFF:
            continue  # surrogate halves of non-BMP characters pass through
        ch = chr(cp)
        if ch.isspace():
            to[cp] = 0x20
        elif unicodedata.combining(ch):
            keep[cp] = False
        elif unicodedata.decomposition(ch) and not unicodedata.decomposition(ch).startswith("<"):
            base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
            if len(base) == 1 and ord(base) <= 0xFFFF:  # a few CJK compatibility forms map outside the BMP
                to[cp] = ord(base)
    to[[0x111, 0xF0]] = ord("d")
    table: dict[int, str | None] = {cp: None for cp in np.flatnonzero(~keep).tolist()}
    table.update({cp: chr(c) for cp, c in enumerate(to.tolist()) if c != cp and keep[cp]})
    return to, keep, table


_RUNS = re.compile(" {2,}")


def _collapse(s: str) -> str:
    return _RUNS.sub(" ", s) if "  " in s else s


def fold(s: str) -> str:
    """Matching key: no diacritics, đ -> d, casefolded, whitespace collapsed and stripped.

    ``fold("Xã Quý Hoà") == fold("xa quy hòa") == "xa quy hoa"``.
    """
    return _collapse(s.casefold().translate(_fold_tables()[2])).strip(" ")


def fold_column(values: Sequence[str | None]) -> list[str | None]:
    """:func:`fold` over a column: one casefold and two numpy lookups over the joined values.

    None stays None.
    """
    vals = list(values)
    strs = vals if None not in vals else [v for v in vals if v is not None]
    joined = "\x00".join(strs)
    if not strs or joined.count("\x00") != len(strs) - 1:
        out = [fold(s) for s in strs]
    else:
        to, keep, _ = _fold_tables()
        units = np.frombuffer(joined.casefold().encode("utf-16-le", "surrogatepass"), dtype=np.uint16)
        folded = to[units][keep[units]].tobytes().decode("utf-16-le", "surrogatepass")
        folded = _collapse(folded).replace(" \x00", "\x00").replace("\x00 ", "\x00").strip(" ")
        out = folded.split("\x00")
    if strs is vals:
        return out  # type: ignore[return-value]
    it = iter(out)
    return [None if v is None else next(it) for v in vals]
