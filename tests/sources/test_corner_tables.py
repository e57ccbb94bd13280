"""gisplatform.sources.corner_tables: licence registers + corner-point tables, and point tables."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl
import pytest
import shapely

from gisplatform.crs import diagnose_xy, transform_geometries
from gisplatform.sources.base import SourceError, SourceOptions
from gisplatform.sources.corner_tables import LicenceReader, PointTableReader

REGISTER_HEADER = "so_giay_phep;ngay_cap;co_quan_cap;chu_giay_phep;loai_khoang_san;dien_tich_ha;he_toa_do"
# §3.3 synthetic quarry near Hữu Lũng, ≈ 12.07 ha: (X northing, Y easting) in EPSG:9215 and EPSG:3405.
TM3 = [("2 380 800.00", "404 490.00"), ("2 380 835.00", "404 890.00"), ("2 381 135.00", "404 870.00"),
       ("2 381 100.00", "404 470.00")]
UTM = [("2 380 388.74", "637 549.58"), ("2 380 429.50", "637 948.97"), ("2 380 729.12", "637 924.65"),
       ("2 380 688.37", "637 525.27")]


def register_line(no: str, crs: str) -> str:
    return f"{no};20/7/2017;UBND tỉnh Lạng Sơn;Công ty CP Đá Hữu Lũng;da_voi_xd;12,07;{crs}"


def corner_lines(no: str, points, area: str = "", labels=None) -> list[str]:
    labels = labels or [str(i + 1) for i in range(len(points))]
    return [f'{no};{area};{lab};"{x}";"{y}"' for lab, (x, y) in zip(labels, points)]


def write_pair(tmp_path: Path, register: list[str], corners: list[str],
               corner_header: str = "so_giay_phep;khu;diem;x;y") -> tuple[Path, Path]:
    reg = tmp_path / "giay_phep.csv"
    reg.write_text("\n".join([REGISTER_HEADER, *register]) + "\n", encoding="utf-8")
    cor = tmp_path / "toa_do.csv"
    cor.write_text("\n".join([corner_header, *corners]) + "\n", encoding="utf-8")
    return reg, cor


def read(reg: Path, cor: Path | None = None, batch_size: int = 100, **options):
    related = {"corners": cor} if cor else {}
    reader = LicenceReader(reg, SourceOptions(related=related, **options))
    batches = list(reader.batches(batch_size))
    return reader, batches


def problems_of(batch, rule: str = "corner_table") -> list[str]:
    return [p.message for p in batch.problems if p.rule == rule]


def test_synthetic_quarry_in_tm3_and_utm48_gives_the_same_area(tmp_path):
    reg, cor = write_pair(
        tmp_path,
        [register_line("12/GP-UBND", "VN-2000, KTT 107°15′, múi chiếu 3°"),
         register_line("05/GP-BTNMT", "VN-2000, KTT 105°, múi chiếu 6°")],
        corner_lines("12/GP-UBND", TM3) + corner_lines("05/GP-BTNMT", UTM))
    reader, [batch] = read(reg, cor)
    assert batch.problems == []
    assert batch.crs.tolist() == [9215, 3405]
    assert batch.row_numbers.tolist() == [2, 3]
    assert batch.rows["so_giay_phep"].tolist() == ["12/GP-UBND", "05/GP-BTNMT"]
    tm3, utm = batch.geometry
    assert tm3.geom_type == "MultiPolygon" and len(tm3.geoms) == 1
    assert tm3.geoms[0].exterior.coords[0] == (404_490.0, 2_380_800.0)  # (E, N) = (Y, X): GIS order
    assert utm.geoms[0].exterior.coords[0] == (637_549.58, 2_380_388.74)  # stated CRS, not reprojected
    in_9215 = transform_geometries(np.array([utm], dtype=object), 3405, 9215)[0]
    for g in (tm3, in_9215):
        assert g.area / 10_000 == pytest.approx(12.07, rel=0.01)
    assert shapely.equals_exact(in_9215, tm3, tolerance=0.05)
    assert reader.orphan_corners() == []


def test_vietnamese_number_formats_and_closing_point(tmp_path):
    points = [("2.380.800,00", "404.490,00"), ("2\u00a0380\u00a0835,00", "404\u00a0890,00"),
              ("2,381,135.00", "404,870.00"), ("2381100", "404470"), ("2.380.800,00", "404.490,00")]
    reg, cor = write_pair(tmp_path, [register_line("1/GP", "EPSG:9215")],
                          corner_lines("1/GP", points, labels=["1", "2", "3", "4", "1"]))
    _, [batch] = read(reg, cor)
    assert batch.problems == []
    ring = batch.geometry[0].geoms[0].exterior.coords
    assert len(ring) == 5 and batch.geometry[0].area / 10_000 == pytest.approx(12.07, rel=1e-6)


def test_two_sub_areas_make_two_parts(tmp_path):
    second = [(f"{float(x.replace(' ', '')) + 1000:.2f}", y) for x, y in TM3]
    reg, cor = write_pair(tmp_path, [register_line("7/GP", "EPSG:9215")],
                          corner_lines("7/GP", TM3, "Khu I") + corner_lines("7/GP", second, "Khu II"))
    _, [batch] = read(reg, cor)
    geom = batch.geometry[0]
    assert batch.problems == [] and geom.geom_type == "MultiPolygon" and len(geom.geoms) == 2
    assert geom.area / 10_000 == pytest.approx(2 * 12.07, rel=0.01)


def test_merged_cell_style_blank_licence_and_area_continue_above(tmp_path):
    rows = corner_lines("7/GP", TM3[:1], "I") + corner_lines("", TM3[1:], "")
    second = [(f"{float(x.replace(' ', '')) + 1000:.2f}", y) for x, y in TM3]
    rows += corner_lines("", second[:1], "II") + corner_lines("", second[1:], "")
    reg, cor = write_pair(tmp_path, [register_line("7/GP", "EPSG:9215")], rows)
    reader, [batch] = read(reg, cor)
    assert batch.problems == [] and len(batch.geometry[0].geoms) == 2
    assert reader.orphan_corners() == []


def test_unclosed_table(tmp_path):
    points = TM3 + [("2 380 810.00", "404 490.00")]
    reg, cor = write_pair(tmp_path, [register_line("3/GP", "EPSG:9215")],
                          corner_lines("3/GP", points, labels=["1", "2", "3", "4", "1"]))
    _, [batch] = read(reg, cor)
    [msg] = problems_of(batch)
    assert batch.geometry[0] is None
    assert "toa_do.csv" in msg and "licence 3/GP" in msg and "not closed" in msg
    assert "line 6" in msg and "line 2" in msg and "10.00 m apart" in msg


def test_self_intersecting_bow_tie_keeps_the_invalid_polygon(tmp_path):
    bow_tie = [TM3[0], TM3[2], TM3[1], TM3[3]]  # points 2 and 3 swapped
    reg, cor = write_pair(tmp_path, [register_line("4/GP", "EPSG:9215")], corner_lines("4/GP", bow_tie))
    _, [batch] = read(reg, cor)
    [msg] = problems_of(batch)
    geom = batch.geometry[0]
    assert geom is not None and not geom.is_valid  # kept so validation can show it
    assert "crosses itself" in msg and "near X=" in msg
    assert "segment 1–2 (lines 2–3) crosses segment 3–4 (lines 4–5)" in msg


def test_unparseable_value_and_too_few_points(tmp_path):
    bad = [TM3[0], ("2 380 835.00", "404 89O.00"), TM3[2], TM3[3]]
    reg, cor = write_pair(tmp_path, [register_line("5/GP", "EPSG:9215"), register_line("6/GP", "EPSG:9215")],
                          corner_lines("5/GP", bad) + corner_lines("6/GP", TM3[:2] + [TM3[0]]))
    _, [batch] = read(reg, cor)
    assert batch.geometry[0] is None and batch.geometry[1] is None
    first = [p for p in batch.problems if p.index == 0]
    assert len(first) == 1 and first[0].field == "y"
    assert "line 3 (point 2)" in first[0].message and "'404 89O.00'" in first[0].message
    [few] = [p.message for p in batch.problems if p.index == 1]
    assert "only 2 distinct point(s)" in few and "lines 6–8" in few


def test_orphan_corners_and_licence_without_corners(tmp_path):
    reg, cor = write_pair(tmp_path, [register_line("8/GP", "EPSG:9215"), register_line("9/GP", "EPSG:9215")],
                          corner_lines("8/GP", TM3) + corner_lines("99/GP", TM3))
    reader, [batch] = read(reg, cor)
    assert reader.orphan_corners() == [("99/GP", [6, 7, 8, 9])]
    [msg] = problems_of(batch)
    assert msg == "no corner points for licence 9/GP in toa_do.csv"
    assert batch.problems[0].index == 1 and batch.geometry[1] is None


def test_licence_numbers_match_despite_spacing_case_and_unicode_form(tmp_path):
    import unicodedata
    nfd = unicodedata.normalize("NFD", "12/GP-ĐCKS")
    reg, cor = write_pair(tmp_path, [register_line("12/GP-ĐCKS", "EPSG:9215")], corner_lines(f" {nfd.lower()} ", TM3))
    reader, [batch] = read(reg, cor)
    assert batch.problems == [] and reader.orphan_corners() == []


def test_crs_statement_problems_and_override(tmp_path):
    reg, cor = write_pair(tmp_path, [register_line("1/GP", "tọa độ giả định"), register_line("2/GP", "")],
                          corner_lines("1/GP", TM3) + corner_lines("2/GP", TM3))
    _, [batch] = read(reg, cor)
    assert batch.crs.tolist() == [0, 0]
    msgs = problems_of(batch, "crs_statement")
    assert len(msgs) == 2 and "giay_phep.csv, line 2: column 'he_toa_do'" in msgs[0] and "blank" in msgs[1]
    assert all(p.field == "he_toa_do" for p in batch.problems)
    _, [batch] = read(reg, cor, crs=9215)
    assert batch.crs.tolist() == [9215, 9215] and batch.problems == []


def test_swapped_x_y_columns_are_built_as_stated_and_diagnosed(tmp_path):
    swapped = [(y, x) for x, y in TM3]  # easting written in the X column
    reg, cor = write_pair(tmp_path, [register_line("1/GP", "EPSG:9215")], corner_lines("1/GP", swapped))
    _, [batch] = read(reg, cor)
    assert batch.problems == []
    e, n = np.array(batch.geometry[0].geoms[0].exterior.coords).T
    assert set(diagnose_xy(e, n)) == {"swapped"}


def test_batches_reindex_problems(tmp_path):
    reg, cor = write_pair(tmp_path, [register_line("1/GP", "EPSG:9215"), register_line("2/GP", "EPSG:9215")],
                          corner_lines("1/GP", TM3))
    reader, batches = read(reg, cor, batch_size=1)
    assert [len(b) for b in batches] == [1, 1]
    assert batches[0].problems == [] and [p.index for p in batches[1].problems] == [0]
    assert batches[1].row_numbers.tolist() == [3]
    info = reader.info()
    assert info.columns[0] == "so_giay_phep" and info.declared_crs is None and info.feature_count == 2


def test_column_names_with_units_and_missing_columns(tmp_path):
    reg, cor = write_pair(tmp_path, [register_line("1/GP", "EPSG:9215")], corner_lines("1/GP", TM3),
                          corner_header="SoGiayPhep;Khu;Điểm;X (m);Y (m)")
    _, [batch] = read(reg, cor)
    assert batch.problems == [] and batch.geometry[0] is not None
    reg, cor = write_pair(tmp_path, [register_line("1/GP", "EPSG:9215")], corner_lines("1/GP", TM3),
                          corner_header="so_giay_phep;khu;diem;bac;dong")
    with pytest.raises(SourceError, match=r"toa_do\.csv: no X \(northing\) column"):
        read(reg, cor)
    with pytest.raises(SourceError, match="no corner-point table"):
        read(reg)


def test_workbook_with_both_sheets(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "giay_phep"
    ws.append(REGISTER_HEADER.split(";"))
    ws.append(["12/GP-UBND", 42936, "UBND tỉnh Lạng Sơn", "Công ty", "da_voi_xd", 12.07, 9215])
    ws = wb.create_sheet("toa_do")
    ws.append(["Bảng tọa độ các điểm góc"])
    ws.append(["so_giay_phep", "khu", "diem", "x", "y"])
    for i, (x, y) in enumerate(TM3, start=1):
        ws.append(["12/GP-UBND" if i == 1 else None, None, i, float(x.replace(" ", "")), float(y.replace(" ", ""))])
    path = tmp_path / "giay_phep.xlsx"
    wb.save(path)
    reader, [batch] = read(path)
    assert batch.problems == [] and batch.crs.tolist() == [9215]
    assert batch.geometry[0].area / 10_000 == pytest.approx(12.07, rel=1e-6)
    assert batch.rows.iloc[0]["ngay_cap"] == 42936  # raw: typing is the transform stage's job
    assert "toa_do" in reader.corners_name


def test_point_table_for_water_licences(tmp_path):
    p = tmp_path / "gieng.csv"
    p.write_text("so_giay_phep;so_hieu_diem;loai_nguon;x;y;he_toa_do\n"
                 '15/GP;G1;nuoc_duoi_dat;"2.417.549,70";"449.314,38";VN-2000 KTT 107°15′ múi 3°\n'
                 "15/GP;G2;nuoc_duoi_dat;2417600;4493I4;EPSG:9215\n"
                 "15/GP;G3;nuoc_duoi_dat;;;WGS 84\n", encoding="utf-8")
    reader = PointTableReader(p, SourceOptions())
    [batch] = list(reader.batches(10))
    assert batch.geometry[0].coords[0] == pytest.approx((449_314.38, 2_417_549.70))
    assert batch.geometry[1] is None and batch.geometry[2] is None
    [problem] = batch.problems
    assert problem.index == 1 and problem.field == "y" and "line 3" in problem.message and "4493I4" in problem.message
    assert batch.crs.tolist() == [9215, 9215, 4326]
    assert reader.info().columns[-1] == "he_toa_do"
