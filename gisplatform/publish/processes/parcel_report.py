"""parcel-report: a parcel (ID, commune/sheet/parcel, or a point in it) or a polygon, and what intersects it."""
from __future__ import annotations

from gisplatform.analysis import inputs as I
from gisplatform.analysis.report import NotFound, Subject, parcel_report
from gisplatform.publish.processes.base import (LARGE_AREA_M2, AnalysisProcessor, api_transaction, check_keys,
                                                json_output, metadata, object_input, string_input, text_value)

INPUTS = {
    "parcel_id": string_input("Mã thửa đất", "Parcel ID", "12-character GeoHash parcel ID (TT 19/2026)"),
    "commune_code": string_input("Mã xã", "Commune code", "5-digit commune code (with map_sheet_no and parcel_no)"),
    "map_sheet_no": string_input("Số tờ bản đồ", "Map sheet no.", "map sheet number"),
    "parcel_no": string_input("Số thửa", "Parcel no.", "parcel number, e.g. 125 or 125a"),
    "point": object_input("Điểm", "Point", "GeoJSON Point inside the parcel"),
    "polygon": object_input("Vùng", "Polygon", "GeoJSON Polygon or MultiPolygon: report on this area instead"),
    "crs": string_input("Hệ tọa độ", "CRS", "CRS of point/polygon: EPSG:4326 (default, lon/lat), EPSG:9215, "
                        "EPSG:3405, … or a statement such as 'VN-2000 KTT 107°15′ múi 3°'"),
}
PROCESS_METADATA = metadata(
    "parcel-report",
    {"vi": "Báo cáo thửa đất", "en": "Parcel report"},
    {"vi": "Thông tin công khai của thửa đất (theo mã thửa, xã/tờ/thửa, một điểm) hoặc một vùng, cùng mọi lớp dữ "
           "liệu giao với nó và diện tích giao (m², EPSG:9215), và các xung đột đang mở.",
     "en": "The public attributes of a parcel (by parcel ID, commune/sheet/parcel or a point) or of an area, every "
           "layer that intersects it with the areas in common (m², EPSG:9215), and its open conflicts."},
    ["parcel", "cadastre", "report"], INPUTS, {"report": json_output("Báo cáo", "Report")},
    {"inputs": {"commune_code": "06040", "map_sheet_no": "1", "parcel_no": "1"}})


def subject_from(data: dict) -> Subject:
    data = check_keys(data, set(INPUTS))
    given = [k for k in ("parcel_id", "point", "polygon") if data.get(k) not in (None, "")]
    triple = [data.get(k) not in (None, "") for k in ("commune_code", "map_sheet_no", "parcel_no")]
    if any(triple):
        if not all(triple):
            raise I.InputError("commune_code, map_sheet_no and parcel_no go together: give all three")
        given.append("sheet_parcel")
    if len(given) != 1:
        raise I.InputError("give exactly one of: parcel_id; commune_code + map_sheet_no + parcel_no; point; polygon"
                           + (f" (got {', '.join(given)})" if given else ""))
    kind = given[0]
    if kind == "parcel_id":
        return Subject(kind, parcel_id=text_value(data, "parcel_id", 32))
    if kind == "sheet_parcel":
        sheet = text_value(data, "map_sheet_no", 10)
        if not sheet.isdigit():
            raise I.InputError(f"map_sheet_no must be a whole number, not {sheet!r}")
        return Subject(kind, commune_code=text_value(data, "commune_code", 5).zfill(5), map_sheet_no=int(sheet),
                       parcel_no=text_value(data, "parcel_no", 20))
    src = I.parse_crs(data.get("crs"))
    allowed = ("Point",) if kind == "point" else ("Polygon", "MultiPolygon")
    return Subject(kind, geometry=I.geometry_from_geojson(data[kind], src, allowed))


class ParcelReportProcessor(AnalysisProcessor):
    def __init__(self, processor_def: dict):
        super().__init__(processor_def, PROCESS_METADATA)

    def is_large(self, data: dict) -> bool:
        subject = subject_from(data)
        return subject.kind == "polygon" and subject.geometry.area > LARGE_AREA_M2

    def run(self, data: dict):
        subject = subject_from(data)
        try:
            with api_transaction() as connection:
                return "application/json", parcel_report(connection, subject)
        except NotFound as exc:
            raise I.InputError(str(exc)) from None
