"""Land statistics: area by land-use code per commune as the data stood on a date, in the statutory layout.

The layout follows the land-statistics tables of TT 08/2024/TT-BTNMT: one row per land type under its group
(1 agricultural NNP, 2 non-agricultural PNN, 3 unused CSD), group subtotals, the total natural area first; one
column per commune and the total; hectares. Legacy codes are reported under their successor (BHK/NHK → HNK,
LUN → LUK: ``maps_to`` of the code table), as shared/domain §2.3 says, for reporting only.

Areas are planar areas in EPSG:9215 of each parcel's part inside the commune (parcels are assigned by geometry,
not by their stated commune code, since communes were merged in 2025). A parcel counts under its main land-use
code. The commune's area not covered by any parcel is a row of its own, so that every column adds up to the
commune's natural area. Data "as of" the date are the feature versions current at the end of that day (UTC).
"""
from __future__ import annotations

import datetime as dt
from io import BytesIO
from typing import Any

import sqlalchemy as sa

GROUPS = {  # code-table group -> statutory top group
    "LUA": "NNP", "HNK": "NNP", "CHN": "NNP", "SXN": "NNP", "LNP": "NNP", "NNP": "NNP",
    "OCT": "PNN", "CDG": "PNN", "PNN": "PNN", "CSD": "CSD",
}
TOP = [("1", "NNP", "Nhóm đất nông nghiệp", "Agricultural land"),
       ("2", "PNN", "Nhóm đất phi nông nghiệp", "Non-agricultural land"),
       ("3", "CSD", "Nhóm đất chưa sử dụng", "Unused land")]
UNMAPPED = ("4", "", "Diện tích chưa có bản đồ địa chính", "Area not covered by cadastral maps")
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_SQL = """
WITH units AS (
  SELECT DISTINCT ON (code) code, name, geom FROM api.admin_units_versions
  WHERE version_start <= :t AND (version_end IS NULL OR version_end > :t)
    AND valid_from <= :d AND (valid_to IS NULL OR valid_to > :d)
    AND (CAST(:communes AS text[]) IS NULL OR code = ANY(CAST(:communes AS text[])))
  ORDER BY code, version_start DESC),
parcels AS (
  SELECT land_use_code, geom FROM api.cadastral_parcels_versions
  WHERE version_start <= :t AND (version_end IS NULL OR version_end > :t)),
areas AS (
  SELECT u.code AS commune, p.land_use_code AS code,
         sum(CASE WHEN ST_CoveredBy(p.geom, u.geom) THEN ST_Area(p.geom)
                  ELSE ST_Area(ST_Intersection(p.geom, u.geom)) END) AS m2
  FROM units u JOIN parcels p ON ST_Intersects(p.geom, u.geom)
  GROUP BY 1, 2)
SELECT json_build_object(
  'units', (SELECT coalesce(json_agg(json_build_object('code', code, 'name', name, 'm2', ST_Area(geom))
                                     ORDER BY code), '[]') FROM units),
  'areas', (SELECT coalesce(json_agg(json_build_object('commune', a.commune, 'code', coalesce(c.report, a.code),
                                                       'm2', a.m2)), '[]')
            FROM areas a LEFT JOIN LATERAL (
              SELECT coalesce(maps_to, code) AS report FROM api.land_use_codes c
              WHERE c.code = a.code ORDER BY valid_from DESC LIMIT 1) c ON TRUE),
  'codes', (SELECT coalesce(json_agg(x), '[]') FROM (
              SELECT DISTINCT ON (code) code, name_vi, name_en, "group" FROM api.land_use_codes
              WHERE valid_from <= :d ORDER BY code, valid_from DESC) x))::text
"""


def _ha(m2: float) -> float:
    return round(m2 / 10_000, 4)


def _row(no: str, code: str, vi: str, en: str, level: int, by_m2: dict[str, float], communes: list[str]) -> dict:
    values = {c: _ha(by_m2.get(c, 0.0)) for c in communes}
    return {"no": no, "code": code, "name_vi": vi, "name_en": en, "level": level,
            "total": _ha(sum(by_m2.get(c, 0.0) for c in communes)), "by_commune": values}


def land_statistics(connection: sa.Connection, date: dt.date, communes: list[str] | None = None) -> dict[str, Any]:
    """The statistics table as JSON-ready data (see the module doc)."""
    import json

    end_of_day = dt.datetime.combine(date + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)
    data = json.loads(connection.execute(sa.text(_SQL), {"t": end_of_day, "d": date, "communes": communes}).scalar())
    unit_codes = [u["code"] for u in data["units"]]
    labels = {c["code"]: c for c in data["codes"]}
    per_code: dict[str, dict[str, float]] = {}
    for a in data["areas"]:
        cell = per_code.setdefault(a["code"], {})
        cell[a["commune"]] = cell.get(a["commune"], 0.0) + a["m2"]
    natural = {u["code"]: u["m2"] for u in data["units"]}
    rows = [_row("", "", "Tổng diện tích tự nhiên", "Total natural area", 0, natural, unit_codes)]
    covered: dict[str, float] = {}
    for no, top, vi, en in TOP:
        members = sorted(code for code in per_code if GROUPS.get((labels.get(code) or {}).get("group"), "PNN") == top)
        group_m2: dict[str, float] = {}
        for code in members:
            for commune, m2 in per_code[code].items():
                group_m2[commune] = group_m2.get(commune, 0.0) + m2
                covered[commune] = covered.get(commune, 0.0) + m2
        rows.append(_row(no, top, vi, en, 1, group_m2, unit_codes))
        for i, code in enumerate(members, start=1):
            label = labels.get(code) or {"name_vi": "Mã không có trong bảng mã", "name_en": "Code not in the code table"}
            rows.append(_row(f"{no}.{i}", code, label["name_vi"], label["name_en"], 2, per_code[code], unit_codes))
    unmapped = {c: natural[c] - covered.get(c, 0.0) for c in unit_codes}
    rows.append(_row(*UNMAPPED, 1, unmapped, unit_codes))
    return {"date": date.isoformat(), "unit": "ha",
            "communes": [{"code": u["code"], "name": u["name"], "natural_area_ha": _ha(u["m2"])} for u in data["units"]],
            "rows": rows}


def to_xlsx(table: dict[str, Any]) -> bytes:
    """The table as an Excel workbook (bilingual headings; codes as text so Excel keeps leading zeros)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Thống kê đất đai"
    sheet.append(["BIỂU THỐNG KÊ DIỆN TÍCH ĐẤT ĐAI THEO ĐƠN VỊ HÀNH CHÍNH / LAND STATISTICS BY COMMUNE"])
    sheet.append([f"Đến ngày / As of: {table['date']}", "", "", "", "Đơn vị tính: ha / Unit: ha"])
    communes = table["communes"]
    sheet.append(["STT / No.", "Loại đất", "Land type", "Mã / Code", "Tổng / Total",
                  *(f"{c['code']} {c['name']}" for c in communes)])
    for row in table["rows"]:
        sheet.append([row["no"], row["name_vi"], row["name_en"], row["code"], row["total"],
                      *(row["by_commune"][c["code"]] for c in communes)])
        if row["level"] < 2:
            for cell in sheet[sheet.max_row]:
                cell.font = Font(bold=True)
    for cell in sheet[3]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True)
    sheet["A1"].font = Font(bold=True, size=13)
    buffer = BytesIO()
    workbook.save(buffer)
    return _deterministic(buffer.getvalue(), dt.datetime.fromisoformat(table["date"]))


def _deterministic(xlsx: bytes, stamp: dt.datetime) -> bytes:
    """The same table gives the same bytes: openpyxl stamps the save time into the zip members and the document
    properties; both are set to the table's date instead."""
    import zipfile

    iso = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    core = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:creator>gisplatform</dc:creator>'
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{iso}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{iso}</dcterms:modified></cp:coreProperties>').encode()
    out = BytesIO()
    with zipfile.ZipFile(BytesIO(xlsx)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=stamp.timetuple()[:6])
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o600 << 16
            dst.writestr(member, core if info.filename == "docProps/core.xml" else src.read(info.filename))
    return out.getvalue()
