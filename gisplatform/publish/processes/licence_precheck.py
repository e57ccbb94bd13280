"""licence-precheck: the conflicts a proposed mining area would raise (corner table or GeoJSON, any VN-2000 CRS)."""
from __future__ import annotations

from gisplatform.analysis import inputs as I
from gisplatform.analysis.precheck import Proposal, precheck
from gisplatform.publish.processes.base import (LARGE_AREA_M2, AnalysisProcessor, api_transaction, check_keys, date_value,
                                                json_output, metadata, number_value, object_input, string_input,
                                                text_value)

INPUTS = {
    "corners": object_input("Bảng tọa độ điểm góc", "Corner-point table",
                            "[{point, x, y, area?}, ...] or [[x, y], ...]: X = northing, Y = easting, as in the "
                            "licence annex; Vietnamese number formats such as '2.380.800,00' are accepted",
                            {"type": "array", "items": {}}),
    "geometry": object_input("Vùng (GeoJSON)", "Area (GeoJSON)", "GeoJSON Polygon or MultiPolygon instead of corners"),
    "crs": string_input("Hệ tọa độ", "CRS", "CRS of the corners (required) or the GeoJSON (default EPSG:4326): "
                        "EPSG:9215, EPSG:3405, … or a statement such as 'VN-2000 KTT 107°15′ múi chiếu 3°'"),
    "licence_no": string_input("Số giấy phép", "Licence no.", "number of the application or licence, if any"),
    "area_ha": string_input("Diện tích ghi trên hồ sơ (ha)", "Stated area (ha)", "checked against the polygon"),
    "commune_code": string_input("Mã xã", "Commune code", "commune stated on the application"),
    "issue_date": string_input("Ngày cấp dự kiến", "Planned issue date", "YYYY-MM-DD", format="date"),
    "expiry_date": string_input("Ngày hết hạn dự kiến", "Planned expiry date", "YYYY-MM-DD", format="date"),
    "term_years": string_input("Thời hạn (năm)", "Term (years)", "licence term in years"),
}
PROCESS_METADATA = metadata(
    "licence-precheck",
    {"vi": "Kiểm tra trước khi cấp phép khai thác khoáng sản", "en": "Mining licence pre-check"},
    {"vi": "Các xung đột (rừng đặc dụng/phòng hộ, hành lang nguồn nước, di tích, quốc phòng, giấy phép khác, đất ở, "
           "ranh giới…) mà khu vực đề nghị cấp phép sẽ gây ra, theo các quy tắc của hệ thống.",
     "en": "The conflicts (protected forest, water corridors, heritage, defence, other licences, residential land, "
           "boundaries…) a proposed mining area would raise under the platform's rules."},
    ["mining", "licence", "conflicts"], INPUTS, {"conflicts": json_output("Xung đột", "Conflicts")},
    {"inputs": {"crs": "VN-2000 KTT 107°15′ múi chiếu 3°", "corners": [
        {"point": "1", "x": "2.380.800,00", "y": "404.490,00"}, {"point": "2", "x": "2.380.835,00", "y": "404.890,00"},
        {"point": "3", "x": "2.381.135,00", "y": "404.870,00"}, {"point": "4", "x": "2.381.100,00", "y": "404.470,00"}],
        "area_ha": "12.07"}})


def proposal_from(data: dict) -> tuple[Proposal, list[str]]:
    data = check_keys(data, set(INPUTS))
    has_corners, has_geometry = data.get("corners") is not None, data.get("geometry") is not None
    if has_corners == has_geometry:
        raise I.InputError("give the proposed area as exactly one of: corners (with crs) or geometry (GeoJSON)")
    if has_corners:
        if data.get("crs") in (None, ""):
            raise I.InputError("crs is required with corners: the licence annex states it, e.g. 'EPSG:9215' or "
                               "'VN-2000 KTT 107°15′ múi chiếu 3°'")
        geometry, crossings = I.geometry_from_corners(data["corners"], I.parse_crs(data["crs"]))
    else:
        geometry = I.geometry_from_geojson(data["geometry"], I.parse_crs(data.get("crs")), ("Polygon", "MultiPolygon"))
        crossings = []
    commune = text_value(data, "commune_code", 5)
    return Proposal(geometry, licence_no=text_value(data, "licence_no", 60), area_ha=number_value(data, "area_ha"),
                    commune_code=commune.zfill(5) if commune else None, issue_date=date_value(data, "issue_date"),
                    expiry_date=date_value(data, "expiry_date"), term_years=number_value(data, "term_years")), crossings


class LicencePrecheckProcessor(AnalysisProcessor):
    def __init__(self, processor_def: dict):
        super().__init__(processor_def, PROCESS_METADATA)

    def is_large(self, data: dict) -> bool:
        return proposal_from(data)[0].geometry.area > LARGE_AREA_M2

    def run(self, data: dict):
        proposal, crossings = proposal_from(data)
        with api_transaction() as connection:
            return "application/json", precheck(connection, proposal, crossings)
