"""gisplatform.sources.tables: CSV / XLSX as raw rows with the row numbers a person sees."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest

from gisplatform.sources.base import SourceError
from gisplatform.sources.tables import read_table, sheet_names


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_utf8_csv_keeps_text_and_counts_lines(tmp_path):
    p = write(tmp_path / "a.csv", "so_giay_phep, x ,y\n12/GP-UBND,\"2.380.800,00\",404 490\n\n,,\n"
                                   "13/GP-UBND,2380835,\n".encode())
    df, rows = read_table(p)
    assert list(df.columns) == ["so_giay_phep", "x", "y"]  # header stripped, case kept
    assert rows.tolist() == [2, 5]  # blank line 3 and empty record 4 skipped but counted
    assert df.iloc[0].tolist() == ["12/GP-UBND", "2.380.800,00", "404 490"]
    assert df.iloc[1, 2] is None
    assert df.attrs["encoding"] == "utf-8" and df.attrs["text_is_latin1"] is False


def test_bom_semicolon_and_decimal_commas(tmp_path):
    p = write(tmp_path / "b.csv", "\ufeffSố GP;X;Y\r\n1;2380800,00;404490,00\r\n".encode("utf-8"))
    df, rows = read_table(p)
    assert list(df.columns) == ["Số GP", "X", "Y"]
    assert df.iloc[0].tolist() == ["1", "2380800,00", "404490,00"]
    assert rows.tolist() == [2] and df.attrs["encoding"] == "utf-8-sig" and df.attrs["delimiter"] == ";"


def test_title_line_above_csv_header(tmp_path):
    p = write(tmp_path / "t.csv", "Bảng tọa độ các điểm góc\ndiem;x;y\n1;2380800,00;404490,00\n".encode())
    df, rows = read_table(p)
    assert list(df.columns) == ["diem", "x", "y"] and rows.tolist() == [3] and df.attrs["header_row"] == 2


def test_tab_delimited(tmp_path):
    p = write(tmp_path / "c.txt", b"a\tb\n1\t2\n")
    df, _ = read_table(p)
    assert df.to_dict("records") == [{"a": "1", "b": "2"}]


def test_legacy_bytes_are_kept_as_latin1(tmp_path):
    raw = "chu_giay_phep;he_toa_do\nCông ty Đá vôi;VN-2000\n".encode("cp1258")
    df, _ = read_table(write(tmp_path / "d.csv", raw))
    assert df.attrs["text_is_latin1"] is True and df.attrs["encoding"] == "latin-1"
    assert df.iloc[0, 0].encode("latin-1") == "Công ty Đá vôi".encode("cp1258")  # byte for byte
    df, _ = read_table(tmp_path / "d.csv", encoding="cp1258")
    assert df.iloc[0, 0] == "Công ty Đá vôi" and df.attrs["text_is_latin1"] is False


def test_utf16_export(tmp_path):
    df, _ = read_table(write(tmp_path / "e.txt", "a\tb\r\nđá\t1\r\n".encode("utf-16")))
    assert df.iloc[0].tolist() == ["đá", "1"]


def test_multiline_record_numbered_by_its_first_line(tmp_path):
    p = write(tmp_path / "f.csv", b'id,note\n1,"two\nlines"\n2,x\n')
    df, rows = read_table(p)
    assert rows.tolist() == [2, 4] and df.iloc[0, 1] == "two\nlines"


def test_duplicate_and_blank_headers(tmp_path):
    df, _ = read_table(write(tmp_path / "g.csv", b"x,x,,\n1,2,3,\n"))
    assert list(df.columns) == ["x", "x.1", "column_3"]  # empty unnamed trailing column dropped


def test_unquoted_decimal_comma_is_reported_with_its_line(tmp_path):
    p = write(tmp_path / "h.csv", b"diem,x,y\n1,2380800,404490\n2,2380835,00,404890,00\n")
    with pytest.raises(SourceError, match=r"h\.csv: line 3 .*decimal comma"):
        read_table(p)


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(SourceError, match=r"\.xlsx"):
        read_table(write(tmp_path / "old.xls", b"\xd0\xcf"))
    with pytest.raises(SourceError, match="empty"):
        read_table(write(tmp_path / "empty.csv", b"\n\n"))
    with pytest.raises(SourceError, match="workbook"):
        read_table(write(tmp_path / "fake.xlsx", b"not a zip"))


@pytest.fixture
def workbook(tmp_path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "ghi_chu"
    ws["A1"] = "notes"
    ws = wb.create_sheet("giay_phep")
    ws["A1"] = "Danh sách giấy phép"  # a title row above the header is common
    ws.append([])
    ws.append([" so_giay_phep ", "ngay_cap", "dien_tich_ha", "gio"])
    ws.append(["12/GP-UBND", dt.datetime(2017, 7, 20), 12.07, dt.datetime(2017, 7, 20, 8, 30)])
    ws.append([None, None, None, None])
    ws.append(["13/GP-UBND", 42936, "12,07", None, "stray note"])
    path = tmp_path / "register.xlsx"
    wb.save(path)
    return path


def test_xlsx_sheet_by_name_keeps_cell_types(workbook):
    assert sheet_names(workbook) == ["ghi_chu", "giay_phep"]
    df, rows = read_table(workbook, "GIAY_PHEP")
    assert df.attrs["sheet"] == "giay_phep"
    # A one-cell title row above the header is skipped; the header is row 3.
    assert df.attrs["title"] == ["Danh sách giấy phép"] and df.attrs["header_row"] == 3
    assert list(df.columns)[:4] == ["so_giay_phep", "ngay_cap", "dien_tich_ha", "gio"]
    assert rows.tolist() == [4, 6]
    assert df.iloc[0].tolist()[:4] == ["12/GP-UBND", dt.date(2017, 7, 20), 12.07, dt.datetime(2017, 7, 20, 8, 30)]
    assert df.iloc[1].tolist()[:3] == ["13/GP-UBND", 42936, "12,07"]
    assert "column_5" in df.columns  # data right of the header is kept, not lost


def test_xlsx_header_and_default_sheet(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append([])
    ws.append(["so_giay_phep ", "x"])
    ws.append(["1", 2380800.5])
    path = tmp_path / "t.xlsx"
    wb.save(path)
    df, rows = read_table(path)
    assert list(df.columns) == ["so_giay_phep", "x"] and rows.tolist() == [3] and df.iloc[0, 1] == 2380800.5


def test_xlsx_missing_sheet_lists_sheets(workbook):
    with pytest.raises(SourceError, match="ghi_chu, giay_phep"):
        read_table(workbook, "toa_do")
