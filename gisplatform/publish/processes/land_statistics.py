"""land-statistics: area by land-use code per commune on a date, in the statutory layout, as JSON or XLSX."""
from __future__ import annotations

import datetime as dt

from gisplatform.analysis import inputs as I
from gisplatform.analysis.statistics import XLSX_MIME, land_statistics, to_xlsx
from gisplatform.publish.processes.base import (LARGE_PARCELS, AnalysisProcessor, api_transaction, check_keys,
                                                date_value, json_output, live_parcels, metadata, object_input,
                                                string_input)

INPUTS = {
    "date": string_input("Ngày thống kê", "Date", "YYYY-MM-DD (default: today): the data as they stood then",
                         format="date"),
    "communes": object_input("Các xã", "Communes", "list of 5-digit commune codes (default: all communes of that date)",
                             {"type": "array", "items": {"type": "string"}}),
    "format": string_input("Định dạng", "Format", "json (default) or xlsx (an Excel download)", enum=["json", "xlsx"]),
}
PROCESS_METADATA = metadata(
    "land-statistics",
    {"vi": "Thống kê diện tích đất đai", "en": "Land statistics"},
    {"vi": "Diện tích theo loại đất của từng xã tại một ngày (theo lịch sử dữ liệu), theo mẫu biểu thống kê đất đai; "
           "JSON hoặc tệp Excel.",
     "en": "Area by land-use type per commune on a date (from the data history), in the layout of the statutory "
           "land-statistics table; JSON or an Excel file."},
    ["land statistics", "land use", "commune"], INPUTS,
    {"table": {"title": {"vi": "Biểu thống kê", "en": "Statistics table"},
               "description": f"application/json, or {XLSX_MIME} with format=xlsx",
               "schema": {"oneOf": [{"type": "object"}, {"type": "string", "format": "binary"}]}}},
    {"inputs": {"communes": ["06040"], "format": "json"}})
MAX_COMMUNES = 200


def options_from(data: dict) -> tuple[dt.date, list[str] | None, str]:
    data = check_keys(data, set(INPUTS))
    date = date_value(data, "date") or dt.date.today()
    communes = data.get("communes")
    if communes is not None:
        if isinstance(communes, str):
            communes = [c for c in communes.replace(";", ",").split(",") if c.strip()]
        if (not isinstance(communes, list) or not communes or len(communes) > MAX_COMMUNES
                or not all(isinstance(c, (str, int)) and str(c).strip().isdigit() and len(str(c).strip()) <= 5
                           for c in communes)):
            raise I.InputError("communes must be a non-empty list of 5-digit commune codes, e.g. [\"06040\"]")
        communes = [str(c).strip().zfill(5) for c in communes]
    fmt = str(data.get("format") or "json").lower()
    if fmt not in ("json", "xlsx"):
        raise I.InputError(f"format must be json or xlsx, not {str(data.get('format'))[:20]!r}")
    return date, communes, fmt


class LandStatisticsProcessor(AnalysisProcessor):
    def __init__(self, processor_def: dict):
        super().__init__(processor_def, PROCESS_METADATA)

    def is_large(self, data: dict) -> bool:
        _, communes, _ = options_from(data)
        return (communes is None or len(communes) > 10) and live_parcels() > LARGE_PARCELS

    def run(self, data: dict):
        date, communes, fmt = options_from(data)
        with api_transaction() as connection:
            table = land_statistics(connection, date, communes)
        if communes and len(table["communes"]) < len(set(communes)):
            known = {c["code"] for c in table["communes"]}
            missing = sorted(set(communes) - known)
            raise I.InputError(f"no commune {', '.join(missing)} on {date.isoformat()} (codes changed on 2025-07-01)")
        if fmt == "xlsx":
            return XLSX_MIME, to_xlsx(table)
        return "application/json", table
