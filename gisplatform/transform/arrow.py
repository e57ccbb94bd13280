"""Column operations on Arrow arrays: the per-row work of the transform stage, in C++ instead of Python loops.

A million-row file spends its time here if anything is done value by value, so text cleaning, code
normalisation and pattern checks use Arrow compute kernels, and parsing (numbers, dates in Vietnamese formats)
runs once per *distinct* value through a dictionary encoding.
"""
from __future__ import annotations

import unicodedata
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def as_arrow(values) -> pa.Array:
    """A pandas column (Arrow-backed or not), numpy array or list as one Arrow array."""
    if isinstance(values, pa.ChunkedArray):  # one chunk (a reader's batch) as it is: combining copies it
        return values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    if isinstance(values, pd.Series):
        if isinstance(values.dtype, pd.ArrowDtype):
            return as_arrow(values.array._pa_array)
        values = values.to_numpy(dtype=object)
    array = np.asarray(values, dtype=object)
    try:
        return pa.array(array, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types (a spreadsheet column): keep them as text
        return pa.array([None if _missing(v) else str(v) for v in array], pa.string())


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def is_text(array: pa.Array) -> bool:
    return pa.types.is_string(array.type) or pa.types.is_large_string(array.type)


def to_numpy(array: pa.Array) -> np.ndarray:
    """Text and booleans as object arrays with None for missing values."""
    return array.to_numpy(zero_copy_only=False)


def clean_text(array: pa.Array) -> pa.Array:
    """Trim whitespace; an empty string is a missing value. Numbers a spreadsheet stored become text
    ('5977.0' stays a code '5977')."""
    if not is_text(array):
        if pa.types.is_floating(array.type):
            whole = pc.equal(pc.floor(array), array)
            as_int = pc.cast(pc.if_else(whole, array, None), pa.int64(), safe=False)
            array = pc.if_else(whole, pc.cast(as_int, pa.string()), pc.cast(array, pa.string()))
        else:
            array = pc.cast(array, pa.string())
    trimmed = pc.utf8_trim_whitespace(array)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def normalise_codes(array: pa.Array, pad: int | None, multi: str | None) -> tuple[pa.Array, np.ndarray]:
    """Upper-case codes, zero-padded to ``pad`` when all digits, multi-codes joined by ``multi``.

    Returns the codes and a mask of values that gained leading zeros (Excel drops them; worth reporting).
    """
    codes = pc.utf8_upper(clean_text(array))
    if multi:
        codes = pc.replace_substring_regex(codes, r"\s*[,;+]\s*", multi)
        codes = pc.utf8_trim(codes, characters=multi)
    padded = np.zeros(len(codes), dtype=bool)
    if pad:
        digits = pc.fill_null(pc.match_substring_regex(codes, r"^[0-9]+$"), False)
        short = pc.and_(digits, pc.less(pc.utf8_length(codes), pad))
        padded = np.asarray(pc.fill_null(short, False))
        codes = pc.if_else(short, pc.utf8_lpad(codes, pad, "0"), codes)
    return codes, padded


# Characters that leave no text other than NFC: starters (combining class 0) that NFC keeps as they are and that
# never compose with the character before them. Text made only of these is NFC as it stands. They cover what
# Vietnamese text is written with: ASCII, Latin-1, Latin Extended-A/B, IPA and spacing modifiers (U+0000–U+02FF),
# Latin Extended Additional (U+1E00–U+1EFF: the precomposed letters such as ễ, ử) and general punctuation and
# currency signs (U+2002–U+20CF). A test derives the property from the running Python's Unicode data.
NFC_SAFE_RANGES = ((0x0000, 0x02FF), (0x1E00, 0x1EFF), (0x2002, 0x20CF))
_OUTSIDE_NFC_SAFE = "[^" + "".join(f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in NFC_SAFE_RANGES) + "]"  # RE2


def nfc(array: pa.Array) -> pa.Array:
    """Text in Unicode normalisation form C (precomposed letters), the form every comparison and index assumes.

    Nearly all text is NFC already. Arrow's kernel recomposes every value (about 2 µs per Vietnamese address), so
    values are only checked: an RE2 scan finds those with a character outside :data:`NFC_SAFE_RANGES` (decomposed
    text has combining marks, U+0300 and up), and only they are checked by CPython and recomposed if need be.
    The array comes back as it was when nothing changes; otherwise only the recomposed values are replaced (the
    whole column rebuilt from Python strings took 20 ms per batch of 50,000 addresses, instead of 6)."""
    if pc.all(pc.string_is_ascii(array)).as_py() is not False:
        return array
    suspect = np.flatnonzero(np.asarray(pc.fill_null(pc.match_substring_regex(array, _OUTSIDE_NFC_SAFE), False)))
    if not len(suspect):
        return array
    is_nfc = unicodedata.is_normalized
    changed = {int(i): unicodedata.normalize("NFC", v) for i, v in zip(suspect, array.take(suspect).to_pylist())
               if not is_nfc("NFC", v)}
    if not changed:
        return array
    mask = np.zeros(len(array), dtype=bool)
    mask[list(changed)] = True  # the keys ascend (as ``suspect`` does), the order replace_with_mask fills in
    return pc.replace_with_mask(array, pa.array(mask), pa.array(list(changed.values()), array.type))


def matches(array: pa.Array, pattern: str) -> np.ndarray:
    """Rows whose text matches an RE2 pattern (missing values never match)."""
    return np.asarray(pc.fill_null(pc.match_substring_regex(array, pattern), False))


def parse_distinct(array: pa.Array, parse: Callable, empty, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``parse`` once per distinct value; return (parsed values, mask of values it could not parse)."""
    encoded = pc.dictionary_encode(array)
    dictionary = encoded.dictionary.to_pylist()
    parsed = np.full(len(dictionary), empty, dtype=dtype)
    failed = np.zeros(len(dictionary), dtype=bool)
    for k, value in enumerate(dictionary):
        if isinstance(value, str) and not value.strip():
            continue
        try:
            parsed[k] = parse(value)
        except (ValueError, TypeError, OverflowError):
            failed[k] = True
    indices = encoded.indices
    if not dictionary:  # every value null (an empty optional column): nothing to parse, nothing failed
        return np.full(len(array), empty, dtype=dtype), np.zeros(len(array), dtype=bool)
    present = np.asarray(indices.is_valid())
    positions = np.asarray(indices.fill_null(0))
    out = np.where(present, parsed[positions], np.full(1, empty, dtype=dtype)[0]).astype(dtype)
    return out, present & failed[positions]
