"""CSV and XLSX tables as raw rows, numbered as a person sees them in the file.

Values are not interpreted: CSV cells stay text exactly as written ("2.380.800,00"), XLSX cells keep what Excel
stored (a number stays a Python number, a date a ``datetime.date``). Blank cells are None; fully blank rows are
skipped, but row numbers still count them, so a reject report can say "line 14" and the officer finds line 14.

CSV text that is not UTF-8 is read as latin-1, byte for byte (``df.attrs["text_is_latin1"]``): whether it was
cp1258, TCVN3 or VNI is decided per column by :mod:`gisplatform.text`, which needs the raw bytes to decide.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from gisplatform.sources.base import SourceError

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
DELIMITERS = (",", ";", "\t")


def sheet_names(path: Path) -> list[str]:
    """Sheet names of a workbook; [] for a CSV."""
    path = Path(path)
    if path.suffix.lower() not in XLSX_SUFFIXES:
        return []
    wb = _open_workbook(path)
    try:
        return list(wb.sheetnames)
    finally:
        wb.close()


def read_table(path: Path, sheet: str | None = None, encoding: str = "auto") -> tuple[pd.DataFrame, np.ndarray]:
    """All rows of a CSV or of one XLSX sheet (default: the first) under the header row's column names.

    Returns the frame (object columns; attrs: encoding, text_is_latin1, sheet, header_row, title) and the row
    numbers (int64) a person sees: CSV line number of each record (header = line 1), or the sheet's row number.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise SourceError(f"{path}: file not found")
    if suffix in XLSX_SUFFIXES:
        records, attrs = _xlsx_records(path, sheet)
    elif suffix in CSV_SUFFIXES:
        records, attrs = _csv_records(path, encoding)
    elif suffix == ".xls":
        raise SourceError(f"{path.name}: old Excel .xls files are not read; open it in Excel or LibreOffice and "
                          f"save it as .xlsx")
    else:
        raise SourceError(f"{path.name}: not a table (expected {', '.join(CSV_SUFFIXES + XLSX_SUFFIXES)})")
    return _frame(path, records, attrs)


def _blank(v) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _column_name(v, position: int) -> str:
    if _blank(v):
        return f"column_{position}"
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def _frame(path: Path, records: Iterable[tuple[int, list]], attrs: dict) -> tuple[pd.DataFrame, np.ndarray]:
    records = [(n, cells) for n, cells in records if not all(_blank(c) for c in cells)]
    # Title lines above the header ("Bảng tọa độ các điểm góc ...") fill one cell: the header is the first row
    # with at least two values (or the first row of a one-column table).
    width = [sum(not _blank(c) for c in cells) for _, cells in records]
    first = next((i for i, w in enumerate(width) if w >= 2), 0)
    attrs["title"] = [str(next(c for c in cells if not _blank(c))) for _, cells in records[:first]]
    header: list[str] | None = None
    auto: set[str] = set()  # names we made up for cells without a header
    rows, numbers = [], []
    for number, cells in records[first:]:
        if header is None:
            header = _unique([_column_name(c, i + 1) for i, c in enumerate(cells)])
            auto = {h for h, c in zip(header, cells) if _blank(c)}
            attrs["header_row"] = number
            continue
        if len(cells) > len(header) and any(not _blank(c) for c in cells[len(header):]):
            if attrs.get("sheet") is None:  # CSV: a structural error, guessing would shift values between columns
                raise SourceError(
                    f"{path.name}: line {number} has {len(cells)} fields but the header has {len(header)}; this "
                    f"usually means an unquoted decimal comma (2380800,00) or a wrong delimiter: quote such "
                    f"numbers or use ';' as the delimiter")
            extra = [f"column_{i + 1}" for i in range(len(header), len(cells))]  # XLSX: data right of the header
            header, auto = header + extra, auto | set(extra)
        rows.append(list(cells[: len(header)]))
        numbers.append(number)
    if header is None:
        raise SourceError(f"{path.name}{_sheet_note(attrs)}: the table is empty (no header row)")
    rows = [r + [None] * (len(header) - len(r)) for r in rows]
    frame = pd.DataFrame(rows, columns=header, dtype=object) if rows else pd.DataFrame(
        {c: pd.Series(dtype=object) for c in header})
    # Unnamed, empty columns are formatting leftovers (Excel ranges, trailing delimiters): drop them.
    frame = frame.drop(columns=[c for c in auto if frame[c].map(_blank).all()])
    frame.attrs.update(attrs)
    return frame, np.asarray(numbers, dtype="int64")


def _sheet_note(attrs: dict) -> str:
    return f" (sheet {attrs['sheet']!r})" if attrs.get("sheet") else ""


def _unique(names: list[str]) -> list[str]:
    """Duplicate header names get '.1', '.2' like pandas, so no column is silently dropped."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        n = seen.get(name, 0)
        seen[name] = n + 1
        out.append(name if n == 0 else f"{name}.{n}")
    return out


# --------------------------------------------------------------------------------------------- CSV
def _decode(path: Path, data: bytes, encoding: str) -> tuple[str, str, bool]:
    """(text, encoding used, text_is_latin1)."""
    enc = encoding.lower().replace("_", "-")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16", False  # Excel's "Unicode text" export
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict"), "utf-8-sig", False
    if enc in ("auto", "utf-8", "utf8"):
        try:
            return data.decode("utf-8"), "utf-8", False
        except UnicodeDecodeError as exc:
            if enc != "auto":
                line = data[: exc.start].count(b"\n") + 1
                raise SourceError(f"{path.name}: line {line} is not UTF-8 (byte {data[exc.start]:#04x}); set "
                                  f"encoding to auto, cp1258, tcvn3 or vni for this source") from None
    if enc in ("cp1258", "windows-1258"):
        try:
            return data.decode("cp1258"), "cp1258", False
        except UnicodeDecodeError as exc:
            raise SourceError(f"{path.name}: byte {data[exc.start]:#04x} does not exist in cp1258; try "
                              f"encoding auto, tcvn3 or vni") from None
    return data.decode("latin-1"), "latin-1", True  # auto fallback, latin1, tcvn3, vni: bytes kept for text/


def _delimiter(lines: list[str]) -> str:
    """The candidate whose header (first line it splits, past one-field title lines) the next lines agree with.

    Decimal commas make ',' split data lines unevenly, so agreement counts before width.
    """
    def score(d: str) -> tuple[int, int]:
        counts = [len(next(csv.reader([line], delimiter=d), [])) for line in lines]
        head = next((i for i, c in enumerate(counts) if c > 1), None)
        return (0, 1) if head is None else (sum(c == counts[head] for c in counts[head + 1:]), counts[head])

    scores = {d: score(d) for d in DELIMITERS}
    return max(DELIMITERS, key=lambda d: scores[d])  # ties keep the order of DELIMITERS (',' first)


def _csv_records(path: Path, encoding: str) -> tuple[Iterator[tuple[int, list]], dict]:
    text, used, latin1 = _decode(path, path.read_bytes(), encoding)
    delimiter = _delimiter([line for line in text.splitlines()[:20] if line.strip()][:10])
    attrs = {"encoding": used, "text_is_latin1": latin1, "sheet": None, "delimiter": delimiter}

    def records() -> Iterator[tuple[int, list]]:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        start = 1
        try:
            for cells in reader:
                yield start, [c if c != "" else None for c in cells]
                start = reader.line_num + 1
        except csv.Error as exc:
            raise SourceError(f"{path.name}: line {reader.line_num}: {exc}") from None

    return records(), attrs


# --------------------------------------------------------------------------------------------- XLSX
def _open_workbook(path: Path):
    import openpyxl  # imported here: CSV-only jobs do not pay for it

    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise SourceError(f"{path.name}: cannot open as an Excel workbook ({exc}); is it really .xlsx?") from None


def _pick_sheet(path: Path, wb, sheet: str | None):
    if sheet is None:
        return wb.worksheets[0]
    if sheet in wb.sheetnames:
        return wb[sheet]
    folded = {name.strip().lower(): name for name in wb.sheetnames}
    if sheet.strip().lower() in folded:
        return wb[folded[sheet.strip().lower()]]
    raise SourceError(f"{path.name}: no sheet named {sheet!r}; the workbook has {', '.join(wb.sheetnames)}")


def _cell(v):
    # Excel has no date type: a date is a datetime at midnight. Keep real times.
    if isinstance(v, dt.datetime) and v.time() == dt.time(0):
        return v.date()
    return v


def _xlsx_records(path: Path, sheet: str | None) -> tuple[Iterator[tuple[int, list]], dict]:
    wb = _open_workbook(path)
    ws = _pick_sheet(path, wb, sheet)
    ws.reset_dimensions()  # some writers store a wrong <dimension>; read what is really there
    attrs = {"encoding": None, "text_is_latin1": False, "sheet": ws.title}

    def records() -> Iterator[tuple[int, list]]:
        try:
            # openpyxl yields every row from 1 (empty ones as ()), so the position is the sheet row number.
            for number, cells in enumerate(ws.iter_rows(min_row=1, values_only=True), start=1):
                yield number, [_cell(v) for v in cells]
        finally:
            wb.close()

    return records(), attrs
