"""Source values → the layer's field types.

Text is stripped and NFC; codes are zero-padded and upper-cased; numbers and dates accept the Vietnamese
formats officers actually type ("2.380.800,00", "20/7/2017"). A value that cannot be read is not guessed: it is
reported (rule ``field_values``) and the row is rejected.

Columns arrive as Arrow arrays; work is done by Arrow kernels or once per distinct value (see transform.arrow).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gisplatform.layers import Field
from gisplatform.text import fold
from gisplatform.transform import arrow
from gisplatform.transform.values import parse_bool, parse_vn_date, parse_vn_number

NAT = np.datetime64("NaT", "D")


@dataclass
class Converted:
    values: np.ndarray | pa.Array  # object (text, boolean), float64 (number, integer), datetime64[D] (date);
    # free text: the Arrow array
    failed: np.ndarray  # bool: values that could not be read as the field's type
    padded: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # codes that gained zeros


def is_missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    return isinstance(value, np.datetime64) and np.isnat(value)


def _to_date(value) -> np.datetime64:
    if isinstance(value, (dt.date, dt.datetime)):
        return np.datetime64(value if isinstance(value, dt.date) and not isinstance(value, dt.datetime)
                             else value.date(), "D")
    return np.datetime64(parse_vn_date(value), "D")


def _to_number(value) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return float(parse_vn_number(str(value)))


def _to_integer(value) -> float:
    number = _to_number(value)
    if not float(number).is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return number


def _numbers(array: pa.Array, parse) -> tuple[np.ndarray, np.ndarray]:
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        values = np.asarray(pc.fill_null(array.cast(pa.float64()), np.nan))
        if parse is _to_integer:
            fractional = ~np.isnan(values) & (values != np.floor(values))
            return np.where(fractional, np.nan, values), fractional
        return values, np.zeros(len(values), dtype=bool)
    return arrow.parse_distinct(arrow.clean_text(array), parse, np.nan, np.float64)


def _dates(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    if pa.types.is_timestamp(array.type) or pa.types.is_date(array.type):
        values = np.asarray(array.cast(pa.date32()).to_numpy(zero_copy_only=False), dtype="datetime64[D]")
        return values, np.zeros(len(values), dtype=bool)
    return arrow.parse_distinct(arrow.clean_text(array), _to_date, NAT, "datetime64[D]")


def _domain(array: pa.Array, f: Field) -> tuple[np.ndarray, np.ndarray]:
    """A domain value given as its code or its Vietnamese/English label (any accents or case) → the code."""
    lookup = {}
    for code in f.domain or ():
        lookup[fold(code)] = code
        label = f.values.get(code)
        if label:
            lookup[fold(label.vi)] = code
            lookup[fold(label.en)] = code

    def to_code(value: str) -> str:
        code = lookup.get(fold(str(value)))
        if code is None:
            raise ValueError(value)
        return code

    return arrow.parse_distinct(arrow.clean_text(array), to_code, None, object)


def convert(values, f: Field) -> Converted:
    """Typed values for one field (from an Arrow array, pandas column or numpy array)."""
    array = arrow.as_arrow(values)
    size = len(array)
    if f.type == "text":
        if f.domain:
            return Converted(*_domain(array, f))
        if f.code_table or f.pad:
            codes, padded = arrow.normalise_codes(array, f.pad, f.multi)
            return Converted(arrow.to_numpy(codes), np.zeros(size, dtype=bool), padded)
        # free text stays Arrow until something reads it (see gisplatform.transform.batch.TypedValues)
        return Converted(arrow.clean_text(array), np.zeros(size, dtype=bool))
    if f.type == "number":
        return Converted(*_numbers(array, _to_number))
    if f.type == "integer":
        return Converted(*_numbers(array, _to_integer))
    if f.type == "date":
        return Converted(*_dates(array))
    if f.type == "boolean":
        if pa.types.is_boolean(array.type):
            return Converted(arrow.to_numpy(array), np.zeros(size, dtype=bool))
        return Converted(*arrow.parse_distinct(arrow.clean_text(array), parse_bool, None, object))
    raise ValueError(f"unknown field type {f.type}")


def empty(f: Field, size: int) -> np.ndarray:
    """A column of missing values of the field's type."""
    if f.type in ("number", "integer"):
        return np.full(size, np.nan)
    if f.type == "date":
        return np.full(size, NAT, dtype="datetime64[D]")
    return np.full(size, None, dtype=object)


def missing_mask(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "M":
        return np.isnat(values)
    return np.asarray(pd.isna(values), dtype=bool)
