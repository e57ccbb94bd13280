"""OGC API - Records: the metadata catalogue, one record per layer, read live from the database.

A record is built from three sources, so nothing is described twice:
  * ``layers/<layer>.yml``: id (the layer name), bilingual title, description and keywords, field list;
  * ``api.catalogue``: the last successful ETL run of the layer (run id, time, counts, source checksum), so
    the record is "updated after each run" without anyone editing it: it is read on every request;
  * ``api.<layer>``: the extent (``ST_Extent(geom_wgs84)``) and the temporal extent (the layer's record date).
    Those scan the layer, so they are cached per process and per (database, layer, run id): a new run changes
    the run id and the next request recomputes them.

Record model (OGC API - Records - Part 1, record core; GeoJSON):
  ``{id, type: Feature, conformsTo, geometry: extent polygon (CRS84) | null, time: {interval} | null,
  properties: {type: dataset, title, description, keywords, themes, language, languages, resourceLanguages,
  created, updated, contacts, license, rights, formats, crs, lineage}, links}``.
  ``title`` and ``description`` are in the language the provider is given (Vietnamese, the default; English
  when pygeoapi passes ``language=en``), and ``translations: {vi: {title, description, keywords}, en: {...}}``
  carries both languages in every record (pygeoapi 0.24 always passes a provider its first language, see
  ``_record``). The other language is also an ``alternate`` link with ``hreflang``. ``keywords`` holds both
  languages' keywords, ``themes`` one keyword scheme per language.
  ``lineage`` holds the ETL run: ``run_id, job, finished_at, read, inserted, updated, unchanged, rejected,
  retired, features, source_checksum`` (the column names of ``api.catalogue``) plus a sentence.

Queries (``query``): ``q`` (comma = any of the terms; the words of a term must all occur, as word prefixes, in
the record's titles, descriptions or keywords in either language; accent-insensitive through
:func:`gisplatform.text.fold`, so "thua dat" finds "Thửa đất"), ``bbox`` (CRS84, intersects the extent),
``datetime`` (intersects the temporal extent), equality on the queryables, ``sortby``, ``limit``/``offset``,
``resulttype=hits``. ``get(id)``; an unknown id raises ``ProviderItemNotFoundError`` (404).
"""
from __future__ import annotations

import logging
import os
import re
import threading
from datetime import date, datetime, time, timezone
from typing import Any

import sqlalchemy as sa
import yaml
from dateutil.parser import parse as parse_date

from pygeoapi.provider.base import (
    BaseProvider,
    ProviderConnectionError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
    ProviderQueryError,
)

from gisplatform.config import load_yaml
from gisplatform.layers import Layer, load_layers
from gisplatform.publish.connection import api_database_url, api_engine
from gisplatform.publish.views import API_SCHEMA
from gisplatform.text import fold

LOGGER = logging.getLogger(__name__)

PROVIDER_NAME = "gisplatform.publish.records.CatalogueProvider"
CATALOGUE_ID = "catalogue"  # the collection id of the catalogue in the pygeoapi configuration

# Public data of a provincial department, published for reuse with attribution. CC BY 4.0 is the licence the
# service metadata (ogc_config/base.yml) declares; SPDX identifier as OGC API - Records asks for.
LICENSE = "CC-BY-4.0"
LICENSE_URL = "https://creativecommons.org/licenses/by/4.0/"
RIGHTS = {
    "vi": "Dữ liệu chỉ có giá trị tham khảo; khi sử dụng ghi rõ nguồn: "
          "Sở Nông nghiệp và Môi trường tỉnh Lạng Sơn.",
    "en": "For reference only; credit the source: Lạng Sơn Department of Agriculture and Environment.",
}
PUBLISHER = {
    "vi": "Sở Nông nghiệp và Môi trường tỉnh Lạng Sơn",
    "en": "Lạng Sơn Department of Agriculture and Environment",
}
PUBLISHER_URL = "https://langson.gov.vn"

LANGUAGES = ("vi", "en")  # first = default
LANGUAGE_NAMES = {"vi": "Tiếng Việt", "en": "English"}
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
# The CRSs a layer is offered in: CRS84 and EPSG:4326 (features), EPSG:9215 (VN-2000 Lạng Sơn, storage),
# EPSG:3857 (vector tiles).
CRS_LIST = (CRS84, "http://www.opengis.net/def/crs/EPSG/0/4326", "http://www.opengis.net/def/crs/EPSG/0/9215",
            "http://www.opengis.net/def/crs/EPSG/0/3857")
FORMATS = (
    {"name": "GeoJSON", "mediaType": "application/geo+json"},
    {"name": "MVT", "mediaType": "application/vnd.mapbox-vector-tile"},
    {"name": "HTML", "mediaType": "text/html"},
)
RECORD_CONFORMS_TO = ["http://www.opengis.net/spec/ogcapi-records-1/1.0/req/record-core"]
TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
PROVINCE_BBOX = [106.0, 21.2, 107.5, 22.6]  # as gisplatform.publish.tiles.PROVINCE_TILE_BOUNDS

LINEAGE_COUNTS = ("read", "inserted", "updated", "unchanged", "rejected", "retired")

# Queryables / sortables (pygeoapi validates ``sortby`` and property filters against these names).
FIELDS: dict[str, dict[str, str]] = {
    "type": {"type": "string"},
    "title": {"type": "string"},
    "description": {"type": "string"},
    "keywords": {"type": "string"},
    "license": {"type": "string"},
    "created": {"type": "string", "format": "date-time"},
    "updated": {"type": "string", "format": "date-time"},
    "features": {"type": "integer"},
}

_WORD = re.compile(r"[0-9a-z]+")


def catalogue_provider_definition(server_url: str | None = None) -> dict[str, Any]:
    """The pygeoapi ``record`` provider block of the catalogue collection."""
    options: dict[str, Any] = {"collection": CATALOGUE_ID}
    if server_url:
        options["base_url"] = server_url.rstrip("/")
    return {
        "type": "record",
        "name": PROVIDER_NAME,
        "data": f"{API_SCHEMA}.catalogue",
        "id_field": "id",
        "title_field": "title",
        "time_field": "time",
        "languages": list(LANGUAGES),
        "options": options,
    }


def catalogue_resource_definition(server_url: str | None = None) -> dict[str, Any]:
    """The whole pygeoapi resource of the catalogue collection (``resources.catalogue``).

    Titles and descriptions are pygeoapi language structs (``{vi: ..., en: ...}``): pygeoapi picks the one
    matching the request's language among ``server.languages``. Record links point at the server of
    ``server_url``; without it the provider reads ``server.url`` from ``$PYGEOAPI_CONFIG`` at run time.
    """
    return {
        "type": "collection",
        "title": {"vi": "Danh mục dữ liệu", "en": "Data catalogue"},
        "description": {
            "vi": "Siêu dữ liệu của từng lớp dữ liệu công bố: mô tả, từ khóa, phạm vi không gian và "
                  "thời gian, giấy phép và nguồn gốc (lần nạp dữ liệu gần nhất, số lượng, mã kiểm tra "
                  "nguồn), cập nhật sau mỗi lần nạp.",
            "en": "Metadata of every published layer: description, keywords, spatial and temporal extent, "
                  "licence and lineage (latest load, counts, source checksum), updated after every load.",
        },
        "keywords": {"vi": ["danh mục", "siêu dữ liệu", "Lạng Sơn"],
                     "en": ["catalogue", "metadata", "Lang Son"]},
        "links": [{"type": "text/html", "rel": "license", "title": LICENSE, "href": LICENSE_URL}],
        "extents": {"spatial": {"bbox": list(PROVINCE_BBOX), "crs": CRS84}},
        "providers": [catalogue_provider_definition(server_url)],
    }


# --------------------------------------------------------------------------------------------- database
_EXTENTS: dict[tuple[str, str, Any], dict[str, Any]] = {}
_EXTENTS_LOCK = threading.Lock()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _layer_extent(conn, layer: Layer) -> dict[str, Any]:
    """Extent box, temporal extent (record date) and first version time of a layer (scans it: cache it)."""
    d0, d1 = (f"min({_q(layer.record_date)})", f"max({_q(layer.record_date)})") if layer.record_date \
        else ("NULL", "NULL")
    conn.execute(sa.text("SET LOCAL jit = off"))  # JIT adds ~0.5 s to these scans (1 M parcels: ~1.2 s without)
    row = conn.execute(sa.text(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), d0, d1, "
        f"(SELECT min(version_start) FROM {API_SCHEMA}.{_q(layer.name + '_versions')}) "
        f"FROM (SELECT ST_Extent(geom_wgs84) AS e, {d0} AS d0, {d1} AS d1 "
        f"FROM {API_SCHEMA}.{_q(layer.name)}) t"
    )).one()
    bbox = [float(v) for v in row[:4]] if row[0] is not None else None
    return {"bbox": bbox, "time": (row[4], row[5]) if row[4] is not None else None, "created": row[6]}


def read_catalogue(layers: dict[str, Layer]) -> dict[str, dict[str, Any]]:
    """Per layer: the last successful run (``api.catalogue``) and the (cached) extents."""
    key_db = api_database_url().render_as_string(hide_password=True)
    out: dict[str, dict[str, Any]] = {}
    try:
        with api_engine().connect() as conn:
            runs = {r["layer"]: dict(r) for r in conn.execute(sa.text(
                "SELECT layer, run_id, job, finished_at, read, inserted, updated, unchanged, rejected, "
                f"retired, features, source_checksum FROM {API_SCHEMA}.catalogue")).mappings()}
            for name, layer in layers.items():
                run = runs.get(name)
                key = (key_db, name, run["run_id"] if run else None)
                extent = _EXTENTS.get(key)
                if extent is None:
                    extent = _layer_extent(conn, layer)
                    with _EXTENTS_LOCK:
                        for old in [k for k in _EXTENTS if k[:2] == key[:2]]:
                            del _EXTENTS[old]
                        _EXTENTS[key] = extent
                out[name] = {"run": run, **extent}
    except sa.exc.SQLAlchemyError as exc:
        LOGGER.error("reading the catalogue failed: %s", exc)
        raise ProviderQueryError() from exc
    return out


def clear_cache() -> None:
    with _EXTENTS_LOCK:
        _EXTENTS.clear()


# --------------------------------------------------------------------------------------------- records
def _instant(text: str, end: bool) -> datetime | None:
    """An RFC 3339 date or date-time as an aware datetime; a bare date is its first (or, for an end, last)
    instant; ".." or "" is open (None)."""
    text = text.strip()
    if text in ("", ".."):
        return None
    default = datetime.combine(date(2000, 1, 1), time.max if end else time.min)
    try:
        value = parse_date(text, default=default)
    except (ValueError, OverflowError) as exc:
        raise ProviderInvalidQueryError(user_msg=f"invalid datetime {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return aware.isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _lang(language: Any) -> str:
    code = getattr(language, "language", language)
    return code if code in LANGUAGES else LANGUAGES[0]


def _polygon(bbox: list[float] | None) -> dict | None:
    if not bbox:
        return None
    x0, y0, x1, y1 = bbox
    if x0 == x1 and y0 == y1:
        return {"type": "Point", "coordinates": [x0, y0]}
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def _lineage(layer: Layer, run: dict | None, lang: str) -> dict[str, Any] | None:
    if run is None:
        return None
    finished = _iso(run["finished_at"])
    counts = {k: run[k] for k in LINEAGE_COUNTS}
    if lang == "en":
        statement = (f"Loaded by the gisplatform ETL (job {run['job']}, run {run['run_id']}, "
                     f"finished {finished}): {counts['read']} read, {counts['inserted']} inserted, "
                     f"{counts['updated']} updated, {counts['unchanged']} unchanged, "
                     f"{counts['rejected']} rejected, {counts['retired']} retired; "
                     f"{run['features']} features published.")
    else:
        statement = (f"Nạp bằng ETL gisplatform (tác vụ {run['job']}, lần chạy {run['run_id']}, "
                     f"kết thúc {finished}): đọc {counts['read']}, thêm mới {counts['inserted']}, "
                     f"cập nhật {counts['updated']}, không đổi {counts['unchanged']}, "
                     f"từ chối {counts['rejected']}, ngừng hiệu lực {counts['retired']}; "
                     f"công bố {run['features']} đối tượng.")
    return {
        "statement": statement,
        "run_id": run["run_id"],
        "job": run["job"],
        "finished_at": finished,
        **counts,
        "features": run["features"],
        # SHA-256 over the SHA-256 digests of the run's source files (gisplatform.etl.runner); none when the
        # layer was derived from another layer rather than read from files.
        "source_checksum": run["source_checksum"],
    }


class CatalogueProvider(BaseProvider):
    """``record`` provider: one OGC API - Records record per layer of ``layers/*.yml``."""

    def __init__(self, provider_def: dict):
        super().__init__(provider_def)
        self.options = self.options or {}
        self.id_field = self.id_field or "id"
        self.collection = self.options.get("collection", CATALOGUE_ID)
        try:
            self.layers = load_layers()
        except Exception as exc:  # a broken layer file: the catalogue cannot describe the layers
            raise ProviderConnectionError(user_msg="layer definitions cannot be read") from exc
        self._fields = {name: dict(schema) for name, schema in FIELDS.items()}

    def __repr__(self) -> str:
        return f"<CatalogueProvider> {self.data}"

    def get_fields(self) -> dict:
        return self._fields

    # ----------------------------------------------------------------------------------------- links
    def base_url(self) -> str:
        explicit = self.options.get("base_url")
        if explicit:
            return str(explicit).rstrip("/")
        return _configured_server_url()

    def _links(self, layer: Layer, lang: str) -> list[dict[str, str]]:
        base = self.base_url()
        coll = f"{base}/collections/{layer.name}"
        other = [code for code in LANGUAGES if code != lang]
        return [
            {"rel": "describes", "type": "application/json", "title": layer.title.get(lang),
             "href": f"{coll}?f=json"},
            {"rel": "items", "type": "application/geo+json", "title": layer.title.get(lang) + " (GeoJSON)",
             "href": f"{coll}/items?f=json"},
            {"rel": TILESETS_VECTOR, "type": "application/json", "href": f"{coll}/tiles?f=json",
             "title": layer.title.get(lang) + " (vector tiles)"},
            {"rel": "license", "type": "text/html", "title": LICENSE, "href": LICENSE_URL},
            *({"rel": "alternate", "type": "application/geo+json", "hreflang": code,
               "title": layer.title.get(code),
               "href": f"{base}/collections/{self.collection}/items/{layer.name}?f=json&lang={code}"}
              for code in other),
        ]

    # ----------------------------------------------------------------------------------------- build
    def _record(self, layer: Layer, info: dict[str, Any], lang: str) -> dict[str, Any]:
        run = info["run"]
        keywords = [k for code in LANGUAGES for k in layer.keywords.get(code, ())]
        time_ = None
        if info["time"]:
            time_ = {"interval": [_iso(info["time"][0]), _iso(info["time"][1])], "resolution": "P1D"}
        languages = [{"code": code, "name": LANGUAGE_NAMES[code]} for code in LANGUAGES]
        properties: dict[str, Any] = {
            "type": "dataset",
            "title": layer.title.get(lang),
            "description": layer.description.get(lang),
            "keywords": list(dict.fromkeys(keywords)),
            # Both languages in every record: pygeoapi 0.24 hands providers their first language whatever the
            # request asks (l10n.get_plugin_locale passes the raw "lang" string to best_match, which only
            # takes lists), so ?lang=en cannot be relied on to reach the provider.
            "translations": {code: {"title": layer.title.get(code),
                                    "description": layer.description.get(code),
                                    "keywords": list(layer.keywords.get(code, ()))} for code in LANGUAGES},
            "themes": [{"concepts": [{"id": k} for k in layer.keywords.get(code, ())],
                        "scheme": f"gisplatform:keywords:{code}"}
                       for code in LANGUAGES if layer.keywords.get(code)],
            "language": {"code": lang, "name": LANGUAGE_NAMES[lang]},
            "languages": languages,
            "resourceLanguages": [languages[0]],
            "created": _iso(info["created"]),
            "updated": _iso(run["finished_at"]) if run else None,
            "contacts": [{"organization": PUBLISHER[lang], "roles": ["publisher", "custodian"],
                          "links": [{"rel": "about", "type": "text/html", "href": PUBLISHER_URL}]}],
            "license": LICENSE,
            "rights": RIGHTS[lang],
            "formats": [dict(f) for f in FORMATS],
            "crs": list(CRS_LIST),
            "features": run["features"] if run else 0,
            "lineage": _lineage(layer, run, lang),
        }
        return {
            "id": layer.name,
            "type": "Feature",
            "conformsTo": list(RECORD_CONFORMS_TO),
            "time": time_,
            "geometry": _polygon(info["bbox"]),
            "properties": properties,
            "links": self._links(layer, lang),
        }

    def records(self, language: Any = None) -> list[dict[str, Any]]:
        """Every record, in layer-file order, in the requested language (Vietnamese by default)."""
        lang = _lang(language)
        infos = read_catalogue(self.layers)
        return [self._record(layer, infos[name], lang) for name, layer in self.layers.items()]

    # ----------------------------------------------------------------------------------------- search
    def _search_words(self, layer: Layer) -> dict[str, set[str]]:
        """Folded words of the record's texts in both languages, by where they come from (for ranking)."""
        def words(*texts: str) -> set[str]:
            return set(_WORD.findall(fold(" ".join(texts))))
        return {
            "title": words(layer.name.replace("_", " "), *(layer.title.get(c) for c in LANGUAGES)),
            "keywords": words(*(k for c in LANGUAGES for k in layer.keywords.get(c, ()))),
            "description": words(*(layer.description.get(c) for c in LANGUAGES)),
        }

    @staticmethod
    def _score(words: dict[str, set[str]], q: str) -> int:
        """0 when no term matches; else higher when the matching term hits titles, then keywords."""
        best = 0
        for term in (t for t in q.split(",") if t.strip()):
            query = _WORD.findall(fold(term))
            if not query:
                continue
            everything = set().union(*words.values())
            if not all(any(w.startswith(qw) for w in everything) for qw in query):
                continue
            score = 1
            for weight, part in ((3, "title"), (2, "keywords")):
                if all(any(w.startswith(qw) for w in words[part]) for qw in query):
                    score = max(score, weight)
            best = max(best, score)
        return best

    # ----------------------------------------------------------------------------------------- filters
    @staticmethod
    def _bbox_match(record: dict, bbox: list[float]) -> bool:
        geom = record["geometry"]
        if geom is None:
            return False
        if len(bbox) == 6:
            bbox = [bbox[0], bbox[1], bbox[3], bbox[4]]
        coords = geom["coordinates"][0] if geom["type"] == "Polygon" else [geom["coordinates"]]
        xs, ys = [c[0] for c in coords], [c[1] for c in coords]
        return min(xs) <= bbox[2] and max(xs) >= bbox[0] and min(ys) <= bbox[3] and max(ys) >= bbox[1]

    @staticmethod
    def _time_bounds(datetime_: str) -> tuple[datetime | None, datetime | None]:
        if "/" in datetime_:
            begin, end = datetime_.split("/", 1)
            return _instant(begin, end=False), _instant(end, end=True)
        return _instant(datetime_, end=False), _instant(datetime_, end=True)

    @staticmethod
    def _time_match(record: dict, bounds: tuple[datetime | None, datetime | None]) -> bool:
        if not record["time"]:
            return False
        first, last = record["time"]["interval"]
        begin, end = _instant(first or "..", end=False), _instant(last or "..", end=True)
        q0, q1 = bounds
        return (q1 is None or begin is None or begin <= q1) and (q0 is None or end is None or end >= q0)

    @staticmethod
    def _property_match(record: dict, name: str, value: str) -> bool:
        if name not in FIELDS:
            raise ProviderInvalidQueryError(user_msg=f"unknown queryable {name!r}")
        actual = record["properties"].get(name)
        if isinstance(actual, list):
            return any(fold(str(a)) == fold(str(value)) for a in actual)
        if actual is None:
            return False
        if isinstance(actual, (int, float)) and not isinstance(actual, bool):
            try:
                return float(actual) == float(value)
            except ValueError:
                return False
        return fold(str(actual)) == fold(str(value))

    @staticmethod
    def _sort(records: list[dict], sortby: list[dict]) -> list[dict]:
        for spec in reversed(sortby):
            name = spec["property"]
            if name not in FIELDS and name != "id":
                raise ProviderInvalidQueryError(user_msg=f"cannot sort by {name!r}")
            reverse = spec.get("order") == "-"

            def key(r: dict, name=name):
                v = r["id"] if name == "id" else r["properties"].get(name)
                if isinstance(v, list):
                    v = ", ".join(map(str, v))
                return (v is None) != reverse, fold(v) if isinstance(v, str) else (v if v is not None else 0)

            records = sorted(records, key=key, reverse=reverse)
        return records

    # ----------------------------------------------------------------------------------------- API
    def query(self, offset: int = 0, limit: int = 10, resulttype: str = "results", bbox: list | None = None,
              datetime_: str | None = None, properties: list | None = None, sortby: list | None = None,
              select_properties: list | None = None, skip_geometry: bool = False, q: str | None = None,
              language: Any = None, **kwargs) -> dict[str, Any]:
        records = self.records(language)
        if q and q.strip():
            scored = [(self._score(self._search_words(self.layers[r["id"]]), q), i, r)
                      for i, r in enumerate(records)]
            scored = [s for s in scored if s[0] > 0]
            records = [r for _, _, r in sorted(scored, key=lambda s: (-s[0], s[1]))]
        if bbox:
            records = [r for r in records if self._bbox_match(r, [float(v) for v in bbox])]
        if datetime_:
            bounds = self._time_bounds(datetime_)
            records = [r for r in records if self._time_match(r, bounds)]
        for name, value in properties or []:
            records = [r for r in records if self._property_match(r, name, value)]
        if sortby:
            records = self._sort(records, sortby)

        collection: dict[str, Any] = {"type": "FeatureCollection", "features": []}
        if self.count or resulttype == "hits":
            collection["numberMatched"] = len(records)
        if resulttype == "hits":
            collection["numberReturned"] = 0
            return collection
        offset, limit = max(int(offset or 0), 0), max(int(limit if limit is not None else 10), 0)
        page = records[offset:offset + limit]
        for record in page:
            self._select(record, select_properties, skip_geometry)
        collection["features"] = page
        collection["numberReturned"] = len(page)
        return collection

    def get(self, identifier: str, language: Any = None, **kwargs) -> dict[str, Any]:
        if identifier not in self.layers:
            raise ProviderItemNotFoundError(user_msg=f"no record {identifier!r} in the catalogue")
        for record in self.records(language):
            if record["id"] == identifier:
                return record
        raise ProviderItemNotFoundError(user_msg=f"no record {identifier!r} in the catalogue")

    @staticmethod
    def _select(record: dict, select_properties: list | None, skip_geometry: bool) -> None:
        if select_properties:
            record["properties"] = {k: v for k, v in record["properties"].items() if k in select_properties}
        if skip_geometry:
            record["geometry"] = None


# --------------------------------------------------------------------------------------------- server URL
_SERVER_URL: dict[tuple[str, float], str] = {}


def _configured_server_url() -> str:
    """``server.url`` of the running pygeoapi configuration (``$PYGEOAPI_CONFIG``); "" if none (root-relative
    links)."""
    path = os.environ.get("PYGEOAPI_CONFIG")
    if not path:
        return ""
    try:
        key = (path, os.path.getmtime(path))
    except OSError:
        return ""
    if key not in _SERVER_URL:
        try:
            with open(path, encoding="utf-8") as fh:
                url = str(((load_yaml(fh) or {}).get("server") or {}).get("url") or "")
        except (OSError, yaml.YAMLError):
            url = ""
        _SERVER_URL.clear()
        _SERVER_URL[key] = url.rstrip("/")
    return _SERVER_URL[key]
