"""The analysis results in the OGC API: the ``conflicts`` collection and the three processes.

``api.conflicts`` (migration 0006) is not a layers/*.yml layer (it has no source files, history table or ETL
job), so it is described here as a :class:`~gisplatform.layers.Layer` built in code, and served by our SQL-side
feature provider through a small subclass that knows this layer. Its fields are public by construction: the
rule, the severity, the two features' layers, public ids and natural keys, the overlap area and the dates.
"""
from __future__ import annotations

from functools import cache

from pygeoapi.provider.base import BaseProvider, ProviderConnectionError

from gisplatform.layers import Field, Layer, Text
from gisplatform.publish.features import (CRS84, EPSG_URI, OUTPUT_EPSG, FeatureProvider,
                                          copy_field_schema, field_schema)

CONFLICTS = "conflicts"
PROCESSES = {
    "parcel-report": "gisplatform.publish.processes.parcel_report.ParcelReportProcessor",
    "licence-precheck": "gisplatform.publish.processes.licence_precheck.LicencePrecheckProcessor",
    "land-statistics": "gisplatform.publish.processes.land_statistics.LandStatisticsProcessor",
}


def _f(name: str, type_: str, vi: str, en: str, **extra) -> Field:
    return Field(name=name, type=type_, title=Text(vi, en), **extra)


@cache
def conflicts_layer() -> Layer:
    fields = (
        _f("rule", "text", "Quy tắc", "Rule"),
        _f("check_name", "text", "Nội dung kiểm tra", "Check"),
        _f("severity", "text", "Mức độ", "Severity", domain=("error", "warning"),
           values={"error": Text("Lỗi", "Error"), "warning": Text("Cảnh báo", "Warning")}),
        _f("rule_title", "text", "Tên quy tắc", "Rule title (Vietnamese)"),
        _f("rule_title_en", "text", "Tên quy tắc (tiếng Anh)", "Rule title"),
        _f("layer_a", "text", "Lớp dữ liệu A", "Layer of feature A"),
        _f("feature_a_id", "integer", "Mã đối tượng A", "Id of feature A"),
        _f("feature_a", "text", "Đối tượng A", "Feature A (public key)"),
        _f("layer_b", "text", "Lớp dữ liệu B", "Layer of feature B"),
        _f("feature_b_id", "integer", "Mã đối tượng B", "Id of feature B"),
        _f("feature_b", "text", "Đối tượng B", "Feature B (public key)"),
        _f("detail", "text", "Chi tiết", "Detail"),
        _f("overlap_area_m2", "number", "Diện tích chồng lấn (m²)", "Overlap area (m²)", unit="m²"),
        _f("first_seen", "date", "Phát hiện lần đầu", "First seen"),
        _f("resolved_at", "date", "Đã xử lý lúc", "Resolved at"),
    )
    return Layer(
        name=CONFLICTS,
        title=Text("Xung đột quy hoạch, pháp lý", "Regulatory conflicts"),
        description=Text(
            "Các xung đột phát hiện tự động giữa giấy phép khoáng sản, thửa đất, nguồn nước và ranh giới hành chính "
            "theo các quy tắc trong layers/rules/conflicts.yml; tính lại sau mỗi lần cập nhật dữ liệu.",
            "Conflicts found automatically between mining licences, parcels, water sources and administrative "
            "boundaries by the rules of layers/rules/conflicts.yml; recomputed after each data update."),
        keywords={"vi": ("xung đột", "khoáng sản", "hành lang bảo vệ nguồn nước", "kiểm tra"),
                  "en": ("conflicts", "mining", "water protection corridor", "compliance")},
        geometry_type="Geometry", storage_srid=9215, natural_key=("rule", "check_name", "feature_a", "feature_b"),
        fields=fields, rules=())


@cache
def field_schemas() -> dict[str, dict]:
    return {f.name: field_schema(f) for f in conflicts_layer().fields}


class ConflictsProvider(FeatureProvider):
    """The feature provider over ``api.conflicts`` (open) / ``api.conflicts_versions`` (with ``datetime``)."""

    def __init__(self, provider_def: dict):
        BaseProvider.__init__(self, provider_def)
        self.layer = conflicts_layer()
        self.storage_srid = self.layer.storage_srid
        if self.storage_crs.to_epsg() != self.storage_srid:
            raise ProviderConnectionError(f"storage_crs of {CONFLICTS} must be EPSG:{self.storage_srid}")
        self.id_field = "id"
        self.field_defs = {f.name: f for f in self.layer.fields
                           if not self.properties or f.name in self.properties}

    def get_fields(self) -> dict:
        schemas = field_schemas()
        return {name: copy_field_schema(schemas[name]) for name in self.field_defs}  # pygeoapi edits them

    def __repr__(self):
        return f"<ConflictsProvider> {CONFLICTS}"


def conflicts_resource(bbox: list[float], license_: dict, licence_title: str) -> dict:
    layer = conflicts_layer()
    return {
        "type": "collection",
        "title": {"vi": layer.title.vi, "en": layer.title.en},
        "description": {"vi": layer.description.vi, "en": layer.description.en},
        "keywords": {lang: list(words) for lang, words in layer.keywords.items()},
        "links": [{"type": "text/html", "rel": "license", "title": licence_title, "href": license_["url"]}],
        "extents": {"spatial": {"bbox": bbox, "crs": CRS84}},
        "providers": [{
            "type": "feature",
            "name": f"{__name__}.ConflictsProvider",
            "data": {"layer": CONFLICTS},
            "id_field": "id",
            "title_field": "rule_title",
            "storage_crs": EPSG_URI.format(layer.storage_srid),
            "crs": [CRS84, *(EPSG_URI.format(code or layer.storage_srid) for code in OUTPUT_EPSG)],
            "include_extra_query_parameters": True,
        }],
    }


def process_manager(var_dir) -> dict:
    """pygeoapi's job manager: TinyDB in the server's var folder, shared by the gunicorn workers (file lock).

    It makes the processes asynchronous on request (``Prefer: respond-async``, then /jobs/{id}/results), and by
    itself for inputs a process declares large (a whole-province table on a big database, a large polygon).
    """
    from pathlib import Path

    jobs = Path(var_dir) / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    return {"name": "gisplatform.publish.processes.manager.AnalysisManager", "connection": str(jobs / "jobs.db"),
            "output_dir": str(jobs)}


def process_resources() -> dict[str, dict]:
    return {pid: {"type": "process", "processor": {"name": dotted}} for pid, dotted in PROCESSES.items()}
