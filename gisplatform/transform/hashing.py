"""64-bit row hashes over Arrow columns.

Two hashes drive change detection (see gisplatform.load.merge):
  * the *source hash* of a row as read, to skip unchanged rows before any parsing or validation;
  * the *row hash* of the stored attributes and normalised geometry, to leave unchanged rows untouched.

Both read the values as stored (numbers by their bit patterns, never by a text formatting that could change):
  * the row hash (:func:`hash_columns`) is compared with stored hashes across upgrades, so it must never change:
    each row's columns joined into one byte string by Arrow, then BLAKE2b-64, a standard algorithm, one C call
    per row (about 1.4 s per million rows);
  * the source hash (:func:`fast_hash_columns`) is computed for every row of every run, and a re-run of a
    barely changed file is mostly this: Polars' ``hash_rows``, which hashes the Arrow columns where they lie,
    with no Python object per row (0.27 s per million parcels here, against 1.28 s for joining each row into a
    byte string and SipHashing it). Polars promises it stable only within a version: after an upgrade the
    next run finds no row unchanged by its source hash, processes every row, and still leaves them untouched
    by their row hash: slower once, never wrong.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_SEPARATOR = pa.scalar(b"\x1f", pa.binary())
_NULL = b"\x00<null>\x00"  # longer than any 1-byte value, so null differs from False or 0


def _as_binary(array: pa.Array) -> pa.Array:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    kind = array.type
    if pa.types.is_null(kind):
        return pa.nulls(len(array), pa.binary())
    if pa.types.is_boolean(kind):
        array = array.cast(pa.int8())
    elif pa.types.is_floating(kind):
        array = pc.add(array.cast(pa.float64()), 0.0)  # fold -0.0 into 0.0
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type) or pa.types.is_temporal(array.type):
        return array.view(pa.binary(array.type.bit_width // 8)).cast(pa.binary())
    return array.cast(pa.binary())


def _joined_rows(columns: list[pa.Array]) -> np.ndarray:
    """Each row's columns as one byte string (an object array of bytes)."""
    if not columns:
        raise ValueError("nothing to hash")
    parts = [_as_binary(c) for c in columns]
    if len(parts) == 1:
        parts.append(pa.array([b""] * len(parts[0]), pa.binary()))
    joined = pc.binary_join_element_wise(*parts, _SEPARATOR, null_handling="replace", null_replacement=_NULL)
    return joined.to_numpy(zero_copy_only=False)


def hash_columns(columns: list[pa.Array], seed: bytes = b"") -> np.ndarray:
    """One int64 hash per row over the given columns (in order), keyed with ``seed``: stable forever."""
    key = hashlib.blake2b(seed, digest_size=16).digest()
    # a copy of the keyed state: keying compresses a whole block, once here instead of once per row
    keyed = hashlib.blake2b(digest_size=8, key=key).copy

    def digest(value: bytes) -> bytes:
        state = keyed()
        state.update(value)
        return state.digest()

    digests = b"".join([digest(v) for v in _joined_rows(columns)])
    return np.frombuffer(digests, dtype=np.int64).copy()


def fast_hash_columns(columns: list[pa.Array], seed: bytes = b"") -> np.ndarray:
    """One int64 hash per row, like :func:`hash_columns` but vectorised and not promised stable across upgrades."""
    import polars as pl

    if not columns:
        raise ValueError("nothing to hash")
    key = int.from_bytes(hashlib.blake2b(seed, digest_size=8).digest(), "little")
    folded = [_zero_folded(c) for c in columns]
    frame = pl.from_arrow(pa.table(folded, names=[str(i) for i in range(len(folded))]), rechunk=False)
    return frame.hash_rows(seed=key).to_numpy().view(np.int64)


def _zero_folded(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Floats with -0.0 folded into 0.0 (equal values, one hash); other columns as they are."""
    if pa.types.is_floating(array.type):
        return pc.add(array, 0.0)
    return array


def seed_of(*parts: str) -> bytes:
    """A hash key from text (layer definition, job options, code version): change any and every hash changes."""
    return hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=16).digest()
