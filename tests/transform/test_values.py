"""gisplatform.transform.values: Vietnamese numbers, dates and yes/no values."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from gisplatform.transform.values import (
    parse_bool,
    parse_bool_series,
    parse_date_series,
    parse_number_series,
    parse_vn_date,
    parse_vn_number,
)


@pytest.mark.parametrize("text,expected", [
    ("2.380.800,00", 2_380_800.0),
    ("2 380 800.00", 2_380_800.0),
    ("2 380 800,00", 2_380_800.0),
    ("2\u00a0380\u00a0800,00", 2_380_800.0),
    ("2\u202f380\u202f800,00", 2_380_800.0),
    ("2,380,800.00", 2_380_800.0),
    ("2.380.800", 2_380_800.0),
    ("404490", 404_490.0),
    ("404490,5", 404_490.5),
    ("12,07", 12.07),
    ("12.07", 12.07),
    ("1.234,5", 1_234.5),
    ("1,234.5", 1_234.5),
    (" -12,5 ", -12.5),
    ("1.234", 1.234),  # single dot: decimal point unless expect_large
    ("1,234", 1.234),  # single comma: Vietnamese decimal comma
    (404490, 404_490.0),
    (12.07, 12.07),
    (np.int64(7), 7.0),
])
def test_parse_vn_number(text, expected):
    assert parse_vn_number(text) == pytest.approx(expected)


@pytest.mark.parametrize("text,expected", [
    ("1.234", 1_234.0),
    ("1,234", 1_234.0),
    ("404.490", 404_490.0),
    ("404490,123", 404_490.123),  # 6-digit head: cannot be a thousands group
    ("2380800.5", 2_380_800.5),
    ("404 490,00", 404_490.0),
])
def test_parse_vn_number_expect_large(text, expected):
    assert parse_vn_number(text, expect_large=True) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "  ", "abc", "12 m", "1.23.4", "1,2,3", "1..2", "12,", "1234,567.8",
                                  "2.380,800.00", None, True, float("nan")])
def test_parse_vn_number_rejects(text):
    with pytest.raises(ValueError) as exc:
        parse_vn_number(text)
    if isinstance(text, str) and text.strip():
        assert repr(text) in str(exc.value) and "accepted forms" in str(exc.value)


@pytest.mark.parametrize("value,expected", [
    ("20/7/2017", dt.date(2017, 7, 20)),
    ("20/07/2017", dt.date(2017, 7, 20)),
    ("20-07-2017", dt.date(2017, 7, 20)),
    ("20.07.2017", dt.date(2017, 7, 20)),
    ("2017-07-20", dt.date(2017, 7, 20)),
    ("2017-07-20 00:00:00", dt.date(2017, 7, 20)),
    ("ngày 20 tháng 7 năm 2017", dt.date(2017, 7, 20)),
    ("Ngày 05 Tháng 01 Năm 2024", dt.date(2024, 1, 5)),
    (42936, dt.date(2017, 7, 20)),
    (42936.0, dt.date(2017, 7, 20)),
    ("42936", dt.date(2017, 7, 20)),
    (dt.datetime(2017, 7, 20, 13, 5), dt.date(2017, 7, 20)),
    (dt.date(2017, 7, 20), dt.date(2017, 7, 20)),
    (pd.Timestamp("2017-07-20"), dt.date(2017, 7, 20)),
])
def test_parse_vn_date(value, expected):
    assert parse_vn_date(value) == expected


@pytest.mark.parametrize("value", ["31/02/2017", "2017", "7/2017", "hôm qua", "", None, 2017, "13/13/2020"])
def test_parse_vn_date_rejects(value):
    with pytest.raises(ValueError, match="date"):
        parse_vn_date(value)


@pytest.mark.parametrize("value,expected", [
    ("có", True), ("Có", True), ("CO", True), ("x", True), ("X", True), ("1", True), (1, True), ("true", True),
    ("yes", True), ("không", False), ("Không", False), ("", False), ("  ", False), (None, False), ("0", False),
    (0, False), ("false", False), ("no", False), (True, True),
])
def test_parse_bool(value, expected):
    assert parse_bool(value) is expected


def test_parse_bool_rejects():
    with pytest.raises(ValueError, match="yes/no"):
        parse_bool("có lẽ")


def test_number_series_fast_path_and_text():
    values, bad = parse_number_series(pd.Series([1, 2.5, None]))
    assert values.dtype == "float64" and not bad.any()
    s = pd.Series(["2.380.800,00", "2 380 800.00", None, "", "oops", "2.380.800,00", 404490])
    values, bad = parse_number_series(s, expect_large=True)
    assert values.iloc[0] == values.iloc[1] == 2_380_800.0 and values.iloc[6] == 404_490.0
    assert np.isnan(values.iloc[2]) and np.isnan(values.iloc[3])
    assert bad.tolist() == [False, False, False, False, True, False, False]


def test_date_and_bool_series():
    dates, bad = parse_date_series(pd.Series(["20/7/2017", 42936, None, "sai"]))
    assert dates.iloc[0] == dates.iloc[1] == dt.date(2017, 7, 20) and dates.iloc[2] is None
    assert bad.tolist() == [False, False, False, True]
    dates, bad = parse_date_series(pd.Series(pd.to_datetime(["2017-07-20", None])))
    assert dates.iloc[0] == dt.date(2017, 7, 20) and dates.iloc[1] is None and not bad.any()
    flags, bad = parse_bool_series(pd.Series(["x", None, "không", "?"]))
    assert flags.tolist() == [True, False, False, False] and bad.tolist() == [False, False, False, True]
