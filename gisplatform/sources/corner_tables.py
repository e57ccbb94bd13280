"""Licence registers with their corner-point tables, and point tables (water intakes, wells) → SourceBatch.

A mining licence's area is printed as a table of corner points (§3.3): X = northing, Y = easting, points listed in
order, the ring closing implicitly, large areas split into sub-areas (khu I, khu II). The register holds one row per
licence; the corner table one row per point. Geometry is built in the CRS the licence states, in GIS order
(E, N) = (Y, X); reprojection and diagnosis (swapped axes, UTM instead of TM-3) happen later, in one place.

What cannot be built is reported per register row (rule ``corner_table``) with the corner file, licence, line
numbers and column, so an officer can open the file and fix that line.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon

from gisplatform.crs import fold, parse_crs_statement
from gisplatform.sources.base import FileInfo, RowProblem, SourceBatch, SourceError, SourceOptions
from gisplatform.sources.tables import XLSX_SUFFIXES, read_table, sheet_names
from gisplatform.transform.values import parse_vn_number

CORNER_RULE = "corner_table"
POINT_RULE = "point_table"
CRS_RULE = "crs_statement"
REGISTER_SHEET, CORNER_SHEET = "giay_phep", "toa_do"

# Source names as in layers/mining_licences.yml and water_licences.yml (field_map can override).
LICENCE_COLUMNS = ("so_giay_phep", "SoGiayPhep", "licence_no", "so_gp")
CRS_COLUMNS = ("he_toa_do", "HeToaDo", "crs")
SUB_AREA_COLUMNS = ("khu", "khu_vuc", "sub_area")
POINT_LABEL_COLUMNS = ("diem", "diem_goc", "so_hieu_diem", "point_no", "point")
SAME_POINT_M = 0.001  # a repeated closing point equal to the first within 1 mm closes the ring


# --------------------------------------------------------------------------------------------- columns
def find_column(columns, candidates, override: str | None = None) -> str | None:
    """The first column matching a candidate name, case-insensitively; ``override`` (field_map) wins."""
    if override:
        return override if override in columns else None
    by_fold = {fold(c): c for c in columns}
    return next((by_fold[fold(c)] for c in candidates if fold(c) in by_fold), None)


def xy_column(columns, axis: str) -> str | None:
    """The X or Y column: x, X, 'x (m)', toa_do_x, 'Tọa độ X' (units in parentheses ignored)."""
    for c in columns:
        base = re.sub(r"[\s_]+", "_", re.sub(r"\(.*?\)", "", fold(c)).strip())
        if base in (axis, f"toa_do_{axis}", f"toado_{axis}"):
            return c
    return None


def licence_key(value) -> str:
    """Licence numbers as matched between register and corner table: NFC, trimmed, one space, upper case."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(unicodedata.normalize("NFC", str(value)).split()).upper()


def _text(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


def _num(v: float) -> str:
    return f"{v:,.2f}".replace(",", " ")


# --------------------------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Corner:
    line: int
    area: str  # sub-area label, "" = the only area
    label: str
    x: object  # raw northing as in the file
    y: object  # raw easting


def _crossings(ring: list[tuple[float, float]], corners: list[Corner]) -> list[str]:
    """Pairs of non-adjacent boundary segments that cross, named by point labels and lines."""
    n = len(ring)
    segs = shapely.linestrings([[ring[i], ring[(i + 1) % n]] for i in range(n)])
    out = []
    for i in range(n):
        for j in range(i + 2, n):
            if (i == 0 and j == n - 1) or not shapely.intersects(segs[i], segs[j]):
                continue
            a, b, c, d = corners[i], corners[(i + 1) % n], corners[j], corners[(j + 1) % n]
            out.append(f"segment {a.label}–{b.label} (lines {a.line}–{b.line}) crosses segment "
                       f"{c.label}–{d.label} (lines {c.line}–{d.line})")
    return out


Problem = tuple[str, "str | None"]  # (message, corner-table column concerned)


def build_area(corners: list[Corner], where: str, x_col: str, y_col: str) -> tuple[Polygon | None, list[Problem]]:
    """One sub-area's polygon in (E, N) = (Y, X), and the problems found. ``where`` starts each message."""
    problems: list[Problem] = []
    ring = [(_coordinate(c.y, y_col, f"{where}, line {c.line} (point {c.label})", problems),
             _coordinate(c.x, x_col, f"{where}, line {c.line} (point {c.label})", problems)) for c in corners]
    if problems:
        return None, problems
    listed, corners = corners, list(corners)
    if len(ring) > 1 and np.hypot(*np.subtract(ring[-1], ring[0])) <= SAME_POINT_M:
        ring, corners = ring[:-1], corners[:-1]  # the closing point written out: fine
    elif len(ring) > 2 and corners[-1].label and corners[-1].label == corners[0].label:
        first, last = corners[0], corners[-1]
        gap = np.hypot(*np.subtract(ring[-1], ring[0]))
        return None, [(f"{where}: not closed: point {last.label} is listed again at line {last.line} as "
                       f"X={_num(ring[-1][1])}, Y={_num(ring[-1][0])} but at line {first.line} as "
                       f"X={_num(ring[0][1])}, Y={_num(ring[0][0])} ({gap:.2f} m apart); correct one of them", None)]
    distinct = {(round(e, 3), round(n, 3)) for e, n in ring}
    if len(distinct) < 3:
        lines = f"lines {listed[0].line}–{listed[-1].line}" if len(listed) > 1 else f"line {listed[0].line}"
        return None, [(f"{where}: only {len(distinct)} distinct point(s) ({lines}); an area needs at least 3", None)]
    polygon = Polygon(ring)
    if not polygon.is_valid:
        reason = shapely.is_valid_reason(polygon)
        at = re.search(r"\[([-\d.e+]+) ([-\d.e+]+)\]", reason)
        near = f" near X={_num(float(at[2]))}, Y={_num(float(at[1]))}" if at else ""
        crossing = "; ".join(_crossings(ring, corners)[:3])
        problems.append((f"{where}: the boundary crosses itself{near} ({reason})" +
                         (f": {crossing}; the points are probably out of order" if crossing else ""), None))
    return polygon, problems


def _coordinate(value, column: str, where: str, problems: list[Problem]) -> float:
    """A coordinate in any Vietnamese number format; NaN and a problem naming line, column and value if not."""
    try:
        return parse_vn_number(value, expect_large=True)
    except ValueError as exc:
        shown = "blank" if _text(value) == "" else repr(value)
        problems.append((f"{where}: column '{column}' value {shown} is not a coordinate ({exc})", column))
        return float("nan")


def build_licence(corners: list[Corner], where: str, x_col: str,
                  y_col: str) -> tuple[MultiPolygon | None, list[Problem]]:
    """MultiPolygon of all sub-areas (in order of first appearance); None if any sub-area cannot be built."""
    areas: dict[str, list[Corner]] = {}
    for c in corners:
        areas.setdefault(c.area, []).append(c)
    parts, problems = [], []
    for area, members in areas.items():
        label = f"{where}, sub-area '{area}'" if area else where
        polygon, found = build_area(members, label, x_col, y_col)
        problems += found
        parts.append(polygon)
    if any(p is None for p in parts):
        return None, problems
    return MultiPolygon(parts), problems


# --------------------------------------------------------------------------------------------- stated CRS
def _stated_crs(rows: pd.DataFrame, numbers: np.ndarray, column: str | None, options: SourceOptions,
                file: str) -> tuple[np.ndarray, dict[int, str]]:
    """Per-row EPSG (0 = unknown) and the problem message of each row whose CRS statement cannot be read."""
    n = len(rows)
    if options.crs:
        return np.full(n, int(options.crs), dtype="int64"), {}
    if column is None:
        return np.zeros(n, dtype="int64"), {i: _no_crs_message(file) for i in range(n)}
    latin1 = bool(rows.attrs.get("text_is_latin1"))
    codes, problems, cache = np.zeros(n, dtype="int64"), {}, {}
    for i, raw in enumerate(rows[column]):
        key = _text(raw)
        if key not in cache:
            cache[key] = _parse_statement(key, latin1)
        code, error = cache[key]
        codes[i] = code
        if error:
            problems[i] = (f"{file}, line {numbers[i]}: column '{column}' {error}; state it like 'VN-2000, KTT "
                           f"107°15′, múi chiếu 3°' or 'EPSG:9215', or declare `crs:` for the job")
    return codes, problems


def _parse_statement(text: str, latin1: bool) -> tuple[int, str | None]:
    if not text:
        return 0, "is blank: the CRS of the coordinates is not stated"
    try:
        return parse_crs_statement(text), None
    except ValueError as exc:
        if latin1:  # text read as raw latin-1 bytes: try the usual Windows Vietnamese code page
            try:
                return parse_crs_statement(text.encode("latin-1").decode("cp1258")), None
            except (ValueError, UnicodeError):
                pass
        return 0, f"cannot be read ({exc})"


def _no_crs_message(file: str) -> str:
    return (f"{file} has no CRS column ({', '.join(CRS_COLUMNS)}) and the job declares no `crs:`; state the CRS "
            f"per licence or declare it for the job")


# --------------------------------------------------------------------------------------------- readers
def _batches(path: Path, rows: pd.DataFrame, numbers: np.ndarray, geometry: np.ndarray, crs: np.ndarray,
             problems: list[RowProblem], batch_size: int) -> Iterator[SourceBatch]:
    by_row: dict[int, list[RowProblem]] = {}
    for p in problems:
        by_row.setdefault(p.index, []).append(p)
    size = max(1, batch_size)
    for start in range(0, len(rows), size):
        stop = min(start + size, len(rows))
        batch_problems = [RowProblem(p.index - start, p.rule, p.message, p.field)
                          for i in range(start, stop) for p in by_row.get(i, [])]
        yield SourceBatch(file=path, rows=rows.iloc[start:stop].reset_index(drop=True),
                          row_numbers=numbers[start:stop], geometry=geometry[start:stop], crs=crs[start:stop],
                          problems=batch_problems, text_is_latin1=bool(rows.attrs.get("text_is_latin1")))


def _sheet(path: Path, preferred: str) -> str | None:
    """The named sheet if the workbook has it, else None (= first sheet); None for CSV."""
    names = sheet_names(path)
    return next((n for n in names if n.strip().lower() == preferred), None)


class LicenceReader:
    """Licence register + corner-point table → one MultiPolygon per licence, in the stated CRS."""

    def __init__(self, register_path: Path, options: SourceOptions):
        self.path = Path(register_path)
        self.options = options
        is_xlsx = self.path.suffix.lower() in XLSX_SUFFIXES
        self.rows, self.row_numbers = read_table(
            self.path, options.layer or (_sheet(self.path, REGISTER_SHEET) if is_xlsx else None), options.encoding)
        corners_path = options.related.get("corners")
        if corners_path is None and is_xlsx and _sheet(self.path, CORNER_SHEET):
            corners_path = self.path
        if corners_path is None:
            raise SourceError(f"{self.path.name}: no corner-point table: give it as related `corners:` in the job, "
                              f"or put a sheet '{CORNER_SHEET}' in the workbook")
        self.corners_path = Path(corners_path)
        corner_sheet = _sheet(self.corners_path, CORNER_SHEET)
        self.corners, self.corner_lines = read_table(self.corners_path, corner_sheet, options.encoding)
        self.corners_name = self.corners_path.name + (f" (sheet {corner_sheet})" if corner_sheet else "")

        fm = options.field_map
        self.licence_col = find_column(self.rows.columns, LICENCE_COLUMNS, fm.get("licence_no"))
        self.crs_col = find_column(self.rows.columns, CRS_COLUMNS, fm.get("corner_crs"))
        cols = self.corners.columns
        self.c_licence = find_column(cols, LICENCE_COLUMNS)
        self.c_area = find_column(cols, SUB_AREA_COLUMNS)
        self.c_label = find_column(cols, POINT_LABEL_COLUMNS)
        self.c_x, self.c_y = xy_column(cols, "x"), xy_column(cols, "y")
        for name, col, file, accepted in (
                ("licence number", self.licence_col, self.path.name, LICENCE_COLUMNS),
                ("licence number", self.c_licence, self.corners_name, LICENCE_COLUMNS),
                ("X (northing)", self.c_x, self.corners_name, ("x", "X", "x (m)", "toa_do_x")),
                ("Y (easting)", self.c_y, self.corners_name, ("y", "Y", "y (m)", "toa_do_y"))):
            if col is None:
                raise SourceError(f"{file}: no {name} column (accepted: {', '.join(accepted)}; has: "
                                  f"{', '.join(map(str, self.rows.columns if file == self.path.name else cols))})")
        self._built: tuple[np.ndarray, np.ndarray, list[RowProblem], list] | None = None

    def info(self) -> FileInfo:
        return FileInfo(path=self.path, columns=tuple(self.rows.columns), declared_crs=self.options.crs,
                        feature_count=len(self.rows), encoding_hint=self.rows.attrs.get("encoding"))

    def _corner_groups(self) -> dict[str, tuple[str, list[Corner]]]:
        """Corner rows by licence key, as (licence as first written, corners). A blank licence cell continues
        the licence above it (merged cells in Excel); a blank sub-area continues the one above in that licence."""
        groups: dict[str, tuple[str, list[Corner]]] = {}
        counts: dict[tuple[str, str], int] = {}  # points so far per (licence, area): the label if none is given
        licence, area = "", ""
        t = self.corners
        areas = t[self.c_area] if self.c_area else [None] * len(t)
        labels = t[self.c_label] if self.c_label else [None] * len(t)
        for line, lic, ar, lab, x, y in zip(self.corner_lines, t[self.c_licence], areas, labels,
                                            t[self.c_x], t[self.c_y]):
            if _text(lic) and licence_key(lic) != licence_key(licence):
                licence, area = _text(lic), ""
            area = _text(ar) or area
            key = licence_key(licence)
            counts[key, area] = counts.get((key, area), 0) + 1
            groups.setdefault(key, (licence, []))[1].append(
                Corner(int(line), area, _text(lab) or str(counts[key, area]), x, y))
        return groups

    def _build(self) -> tuple[np.ndarray, np.ndarray, list[RowProblem], list]:
        if self._built is not None:
            return self._built
        n = len(self.rows)
        groups = self._corner_groups()
        keys = [licence_key(v) for v in self.rows[self.licence_col]]
        geometry = np.full(n, None, dtype=object)
        problems: list[RowProblem] = []
        for i, key in enumerate(keys):
            shown = _text(self.rows[self.licence_col].iloc[i])
            if key not in groups or not key:
                problems.append(RowProblem(i, CORNER_RULE, f"no corner points for licence {shown or '(blank)'} in "
                                                           f"{self.corners_name}", self.licence_col))
                continue
            where = f"{self.corners_name}, licence {shown}"
            geometry[i], found = build_licence(groups[key][1], where, self.c_x, self.c_y)
            problems += [RowProblem(i, CORNER_RULE, m, col) for m, col in found]
        register_keys = set(keys)
        orphans = [(shown, [c.line for c in corners]) for key, (shown, corners) in groups.items()
                   if key not in register_keys or not key]
        crs, crs_problems = _stated_crs(self.rows, self.row_numbers, self.crs_col, self.options, self.path.name)
        problems += [RowProblem(i, CRS_RULE, m, self.crs_col) for i, m in crs_problems.items()]
        self._built = (geometry, crs, problems, orphans)
        return self._built

    def orphan_corners(self) -> list[tuple[str, list[int]]]:
        """Corner rows whose licence is not in the register: (licence as written, corner-table line numbers)."""
        return self._build()[3]

    def batches(self, batch_size: int) -> Iterator[SourceBatch]:
        geometry, crs, problems, _ = self._build()
        yield from _batches(self.path, self.rows, self.row_numbers, geometry, crs, problems, batch_size)


class PointTableReader:
    """One row per point (water intake, well) with X (northing), Y (easting) and the stated CRS → Points."""

    def __init__(self, path: Path, options: SourceOptions):
        self.path = Path(path)
        self.options = options
        self.rows, self.row_numbers = read_table(self.path, options.layer, options.encoding)
        self.c_x, self.c_y = xy_column(self.rows.columns, "x"), xy_column(self.rows.columns, "y")
        if self.c_x is None or self.c_y is None:
            raise SourceError(f"{self.path.name}: needs X (northing) and Y (easting) columns (accepted: x, X, "
                              f"'x (m)', toa_do_x and the same for y); has: {', '.join(self.rows.columns)}")
        self.crs_col = find_column(self.rows.columns, CRS_COLUMNS, options.field_map.get("point_crs"))

    def info(self) -> FileInfo:
        return FileInfo(path=self.path, columns=tuple(self.rows.columns), declared_crs=self.options.crs,
                        feature_count=len(self.rows), encoding_hint=self.rows.attrs.get("encoding"))

    def batches(self, batch_size: int) -> Iterator[SourceBatch]:
        geometry = np.full(len(self.rows), None, dtype=object)
        problems: list[RowProblem] = []
        for i, (line, x, y) in enumerate(zip(self.row_numbers, self.rows[self.c_x], self.rows[self.c_y])):
            if _text(x) == "" and _text(y) == "":
                continue  # no coordinates at all: geometry_present reports it
            found: list[Problem] = []
            where = f"{self.path.name}, line {line}"
            east, north = _coordinate(y, self.c_y, where, found), _coordinate(x, self.c_x, where, found)
            geometry[i] = None if found else Point(east, north)
            problems += [RowProblem(i, POINT_RULE, m, col) for m, col in found]
        crs, crs_problems = _stated_crs(self.rows, self.row_numbers, self.crs_col, self.options, self.path.name)
        problems += [RowProblem(i, CRS_RULE, m, self.crs_col) for i, m in crs_problems.items()]
        yield from _batches(self.path, self.rows, self.row_numbers, geometry, crs, problems, batch_size)
