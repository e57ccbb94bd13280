"""Source values → the layer's field types.

Text is stripped and NFC; codes are zero-padded and upper-cased; numbers and dates accept the Vietnamese
formats officers actually type ("2.380.800,00", "20/7/2017"). A value that cannot be read is not guessed: it is
reported (rule ``field_values``) and the row is rejected.

Each distinct value is parsed once: source columns repeat values a lot (dates, codes), so this keeps Python-level
parsing off the per-row path.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

import numpy as np
import pandas as pd

from gisplatform.layers import Field
from gisplatform.text import fold
from gisplatform.transform.values import parse_bool, parse_vn_date, parse_vn_number

NAT = np.datetime64("NaT", "D")


def is_missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    return value is pd.NaT or (isinstance(value, np.datetime64) and np.isnat(value))


def _parse_distinct(values: np.ndarray, parse: Callable, empty, out_dtype) -> tuple[np.ndarray, np.ndarray]:
    """Apply parse to each distinct non-missing value; return (parsed array, mask of unparseable values)."""
    out = np.full(len(values), empty, dtype=out_dtype)
    failed = np.zeros(len(values), dtype=bool)
    labels, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    parsed = np.full(len(uniques), empty, dtype=out_dtype)
    bad = np.zeros(len(uniques), dtype=bool)
    for k, value in enumerate(uniques):
        if is_missing(value):
            continue
        try:
            parsed[k] = parse(value)
        except (ValueError, TypeError, OverflowError):
            bad[k] = True
    present = labels >= 0
    out[present] = parsed[labels[present]]
    failed[present] = bad[labels[present]]
    return out, failed


def _to_date(value) -> np.datetime64:
    if isinstance(value, (dt.date, dt.datetime, pd.Timestamp)):
        return np.datetime64(pd.Timestamp(value).date(), "D")
    return np.datetime64(parse_vn_date(value), "D")


def _to_number(value) -> float:
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    return float(parse_vn_number(str(value)))


def _to_integer(value) -> float:
    number = _to_number(value)
    if not float(number).is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return number


def _text(values: np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if is_missing(v):
            out[i] = None
        elif isinstance(v, float) and v.is_integer():
            out[i] = str(int(v))  # a code Excel turned into a number
        else:
            out[i] = str(v).strip()
    return out


def _codes(values: np.ndarray, field: Field) -> np.ndarray:
    """Codes: upper-case, zero-padded to the field's width, multi-codes normalised to 'A+B'."""
    def one(code: str) -> str:
        code = code.strip().upper()
        if field.pad and code.isdigit():
            code = code.zfill(field.pad)
        return code

    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v is None:
            out[i] = None
        elif field.multi:
            parts = [p for p in v.replace(",", field.multi).replace(";", field.multi).split(field.multi) if p.strip()]
            out[i] = field.multi.join(one(p) for p in parts) or None
        else:
            out[i] = one(v)
    return out


def _domain(values: np.ndarray, field: Field) -> tuple[np.ndarray, np.ndarray]:
    """Map a domain value given as its code or its Vietnamese/English label (any accents/case) to the code."""
    lookup = {}
    for code in field.domain or ():
        lookup[fold(code)] = code
        label = field.values.get(code)
        if label:
            lookup[fold(label.vi)] = code
            lookup[fold(label.en)] = code
    out = np.empty(len(values), dtype=object)
    bad = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if v is None:
            out[i] = None
            continue
        code = lookup.get(fold(v))
        out[i] = code
        bad[i] = code is None
    return out, bad


def convert(values: np.ndarray, field: Field) -> tuple[np.ndarray, np.ndarray]:
    """Typed values for one field, and the mask of values that could not be converted."""
    if field.type == "text":
        text = _text(values)
        if field.domain:
            return _domain(text, field)
        if field.code_table or field.pad:
            return _codes(text, field), np.zeros(len(values), dtype=bool)
        return text, np.zeros(len(values), dtype=bool)
    if field.type == "number":
        return _parse_distinct(values, _to_number, np.nan, np.float64)
    if field.type == "integer":
        return _parse_distinct(values, _to_integer, np.nan, np.float64)
    if field.type == "date":
        return _parse_distinct(values, _to_date, NAT, "datetime64[D]")
    if field.type == "boolean":
        return _parse_distinct(values, parse_bool, None, object)
    raise ValueError(f"unknown field type {field.type}")


def empty(field: Field, size: int) -> np.ndarray:
    """A column of missing values of the field's type."""
    if field.type in ("number", "integer"):
        return np.full(size, np.nan)
    if field.type == "date":
        return np.full(size, NAT, dtype="datetime64[D]")
    return np.full(size, None, dtype=object)


def missing_mask(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "M":
        return np.isnat(values)
    return np.array([v is None for v in values], dtype=bool)
