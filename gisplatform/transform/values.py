"""Numbers, dates and yes/no values as Vietnamese officers type them.

Vietnamese writes 2.380.800,00 (dot thousands, decimal comma), but files from other tools say 2,380,800.00 or
2 380 800.00, so a number is read from its shape, not from one convention. A value that cannot be read raises
``ValueError`` naming it: nothing is guessed.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata

import numpy as np
import pandas as pd

NUMBER_FORMATS = "2.380.800,00 / 2 380 800,00 / 2 380 800.00 / 2,380,800.00 / 404490 / 12,07 / 12.07"
DATE_FORMATS = "20/7/2017, 20/07/2017, 20-07-2017, 2017-07-20, 'ngày 20 tháng 7 năm 2017' or an Excel serial number"
EXCEL_EPOCH = dt.date(1899, 12, 30)  # Excel's day 0 (accounts for its 1900 leap-year bug for dates after March 1900)

_SPACES = re.compile(r"[\s\u00a0\u202f\u2009\u2007]")  # incl. NBSP, narrow NBSP, thin and figure spaces


def _grouped(digits: str, sep: str) -> bool:
    """'2.380.800' is validly grouped by '.': a 1-3 digit head, then groups of exactly 3."""
    return re.fullmatch(rf"\d{{1,3}}(?:{re.escape(sep)}\d{{3}})+", digits) is not None


def parse_vn_number(s, expect_large: bool = False) -> float:
    """A number in any of the usual Vietnamese / international spellings.

    A single separator is ambiguous: '12,07' is a decimal comma (Vietnamese convention) and '12.07' a decimal point,
    but with ``expect_large`` (coordinates, which are never below 1 000 m) a validly grouped '404,490' or
    '404.490' is read as thousands.
    """
    if isinstance(s, (bool, np.bool_)):
        raise ValueError(f"{s!r} is a yes/no value, not a number")
    if isinstance(s, (int, float, np.integer, np.floating)):
        if np.isnan(s):
            raise ValueError("empty value, expected a number")
        return float(s)
    text = _SPACES.sub("", str(s).strip()) if s is not None else ""
    m = re.fullmatch(r"([+-]?)([\d.,]*\d[\d.,]*)", text)
    if not m or re.search(r"[.,]{2}", text) or text[-1] in ".,":
        raise ValueError(f"cannot read {s!r} as a number; accepted forms: {NUMBER_FORMATS}")
    sign, body = m.groups()
    dots, commas = body.count("."), body.count(",")
    if dots and commas:  # the last separator is the decimal one; the other groups thousands
        dec = "." if body.rfind(".") > body.rfind(",") else ","
        thou = "," if dec == "." else "."
        head, _, frac = body.rpartition(dec)
        if thou in frac or not (_grouped(head, thou) or head.isdigit()):
            raise ValueError(f"cannot read {s!r} as a number: mixed separators; accepted forms: {NUMBER_FORMATS}")
        value = head.replace(thou, "") + "." + frac
    elif dots + commas == 0:
        value = body
    else:
        sep = "." if dots else ","
        count = dots or commas
        if count > 1 or (expect_large and _grouped(body, sep)):
            if not _grouped(body, sep):
                raise ValueError(f"cannot read {s!r} as a number: '{sep}' groups are not of 3 digits; "
                                 f"accepted forms: {NUMBER_FORMATS}")
            value = body.replace(sep, "")
        else:
            value = body.replace(",", ".")
    return float(sign + value)


def fold(text: str) -> str:
    """Lower case without Vietnamese diacritics (đ -> d), whitespace collapsed."""
    text = unicodedata.normalize("NFKD", str(text).replace("đ", "d").replace("Đ", "D"))
    return " ".join("".join(c for c in text if not unicodedata.combining(c)).lower().split())


def _date(y: int, m: int, d: int, original) -> dt.date:
    try:
        return dt.date(y, m, d)
    except ValueError as exc:
        raise ValueError(f"{original!r} is not a valid date ({exc})") from None


def parse_vn_date(s) -> dt.date:
    """A date written day-first (Vietnamese), ISO, in words, or as an Excel serial number."""
    if isinstance(s, dt.datetime):
        return s.date()
    if isinstance(s, dt.date):
        return s
    if isinstance(s, np.datetime64) and not np.isnat(s):
        return pd.Timestamp(s).date()
    if isinstance(s, (int, float, np.integer, np.floating)) and not isinstance(s, (bool, np.bool_)):
        return _excel_serial(float(s), s)
    text = fold(s) if s is not None else ""
    if m := re.fullmatch(r"(?:ngay\s*)?(\d{1,2})\s*thang\s*(\d{1,2})\s*nam\s*(\d{4})", text):
        return _date(int(m[3]), int(m[2]), int(m[1]), s)
    if m := re.fullmatch(r"(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{4})", text):
        return _date(int(m[3]), int(m[2]), int(m[1]), s)
    if m := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ t]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?", text):
        return _date(int(m[1]), int(m[2]), int(m[3]), s)
    if re.fullmatch(r"\d{5}(?:\.0+)?", text):  # serial number stored as text
        return _excel_serial(float(text), s)
    raise ValueError(f"cannot read {s!r} as a date; accepted forms: {DATE_FORMATS}")


def _excel_serial(n: float, original) -> dt.date:
    # 10 000 = 1927, 80 000 = 2119: anything else is more likely a year or an amount than a date.
    if not np.isfinite(n) or not 10_000 <= n < 80_000:
        raise ValueError(f"{original!r} is not a plausible Excel date serial; accepted forms: {DATE_FORMATS}")
    return EXCEL_EPOCH + dt.timedelta(days=int(n))


_TRUE = {"co", "x", "1", "true", "yes", "y", "dung", "t", "v"}
_FALSE = {"khong", "", "0", "false", "no", "n", "sai", "f"}


def parse_bool(s) -> bool:
    """có/không, x/blank, 1/0, true/false, yes/no (any case and accents)."""
    if s is None or (isinstance(s, float) and np.isnan(s)):
        return False
    if isinstance(s, (bool, np.bool_)):
        return bool(s)
    if isinstance(s, (int, float, np.integer, np.floating)) and s in (0, 1):
        return bool(s)
    text = fold(s)
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"cannot read {s!r} as yes/no; accepted: có/không, x/blank, 1/0, true/false, yes/no")


# --------------------------------------------------------------------------------------------- pandas helpers
def _blank(v) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)) or (
        isinstance(v, str) and not v.strip())


def _parse_series(series: pd.Series, parse, missing) -> tuple[pd.Series, pd.Series]:
    """Parse each distinct value once; blanks give ``missing`` and are not errors (required_fields decides)."""
    codes, uniques = pd.factorize(series.astype(object), use_na_sentinel=True)
    parsed, bad = [], []
    for v in uniques:
        if _blank(v):
            parsed.append(missing), bad.append(False)
            continue
        try:
            parsed.append(parse(v)), bad.append(False)
        except (ValueError, TypeError, OverflowError):
            parsed.append(missing), bad.append(True)
    lookup = np.array(parsed + [missing], dtype=object)  # index -1 (NA sentinel) -> missing
    flags = np.array(bad + [False])
    return (pd.Series(lookup[codes], index=series.index),
            pd.Series(flags[codes], index=series.index, dtype=bool))


def parse_number_series(series: pd.Series, expect_large: bool = False) -> tuple[pd.Series, pd.Series]:
    """(float values, error mask). Numeric columns pass straight through."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype("float64"), pd.Series(False, index=series.index)
    values, bad = _parse_series(series, lambda v: parse_vn_number(v, expect_large), np.nan)
    return values.astype("float64"), bad


def parse_date_series(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(datetime.date or None values, error mask)."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return series.dt.date.where(series.notna(), None).astype(object), pd.Series(False, index=series.index)
    return _parse_series(series, parse_vn_date, None)


def parse_bool_series(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(bool values, error mask); blank is False (the 'x / blank' convention)."""
    values, bad = _parse_series(series, parse_bool, False)
    return values.astype(bool), bad
