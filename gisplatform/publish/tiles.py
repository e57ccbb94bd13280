"""OGC API - Tiles: Mapbox vector tiles (WebMercatorQuad) cut in PostGIS from the ``api.<layer>`` views.

pygeoapi's own ``MVT-postgresql`` provider transforms with CRS *strings* (``ST_Transform(geom,
'EPSG:3857')``), which on PostGIS 3.3 / PROJ 9.1 costs ~10 ms per row against ~2 µs with an integer SRID
(shared research etl-and-clients §5): a z12 parcel tile never finished. This provider writes the SQL itself,
with integer SRIDs only, and one statement (one round trip) per tile::

    geom_wgs84 && ST_Transform(ST_TileEnvelope(z, x, y, margin => buffer/extent), 4326)   -- GiST index
    ST_AsMVT(..., ST_AsMVTGeom(ST_Transform(geom_wgs84, 3857), ST_TileEnvelope(z, x, y), 4096, 64, true))

Per-layer behaviour is data, in the ``tiles:`` section of ``layers/<layer>.yml``::

    tiles:
      minzoom: 13          # below: empty tile (HTTP 204) without touching the database
      maxzoom: 18          # deepest tiles served; map clients overzoom beyond it
      properties: [...]    # attributes in the tile (public fields; ``id`` is always the MVT feature id)
      simplify: 0.5        # ST_Simplify tolerance in screen pixels (256-px tile), in EPSG:3857, below maxzoom
      min_size: 1          # drop features whose bounding box is narrower AND lower than this many pixels
      max_features: 8000   # per tile; the largest (bounding-box area) are kept
      where: {valid_to: null}   # only these features (field: value, null = IS NULL, list = any of)
      bounds: [lon_min, lat_min, lon_max, lat_max]   # for metadata; default: the province

Tiles up to zoom 16 are kept in a disk cache keyed by the layer's last ETL run when ``GISPLATFORM_TILE_CACHE``
is set (``gisplatform serve`` sets it): :mod:`gisplatform.publish.tilecache`.

Empty tiles (below minzoom, or nothing there) are returned as ``None``: pygeoapi answers HTTP 204 No Content,
which MapLibre (>= 4) and Mapbox GL treat as an empty tile, as do OpenLayers and QGIS. Requests outside the
tile matrix (negative, too large for the zoom, deeper than maxzoom) raise ``ProviderTileNotFoundError``
(pygeoapi: 404); non-integer indexes raise ``ProviderInvalidQueryError`` (400); another tile matrix set than
WebMercatorQuad raises ``ProviderTilesetIdNotFoundError`` (404).

``tile_provider_definition(layer)`` is the provider block of the pygeoapi configuration; everything this
provider needs from the configuration is decided there.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from pygeoapi.models.provider.base import TileMatrixSetEnum
from pygeoapi.provider.base import ProviderConnectionError, ProviderInvalidQueryError, ProviderQueryError
from pygeoapi.provider.base_mvt import BaseMVTProvider
from pygeoapi.provider.tile import ProviderTileNotFoundError, ProviderTilesetIdNotFoundError
from pygeoapi.util import url_join

from gisplatform.layers import Layer, LayerDefinitionError, get_layer
from gisplatform.publish.connection import api_engine
from gisplatform.publish.tilecache import tile_cache
from gisplatform.publish.views import API_SCHEMA

LOGGER = logging.getLogger(__name__)

PROVIDER_NAME = "gisplatform.publish.tiles.TileProvider"
MVT_FORMAT = {"name": "mvt", "mimetype": "application/vnd.mapbox-vector-tile"}
TILE_MATRIX_SET = "WebMercatorQuad"
TMS = next(e.value for e in TileMatrixSetEnum if e.value.tileMatrixSet == TILE_MATRIX_SET)
TMS_MAX_ZOOM = len(TMS.tileMatrices) - 1  # 24

EXTENT = 4096  # MVT coordinate units per tile side
BUFFER = 64  # units of extra geometry around the tile, so strokes and labels do not break at tile edges
TILE_PIXELS = 256  # the "pixel" of the per-zoom rules: a 256-px web-map tile
WORLD_M = 2 * 20037508.342789244  # EPSG:3857 width of the world
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

# The province's storage bounds (gisplatform.crs.PROVINCE_BOUNDS, EPSG:9215) in WGS84, rounded outward. Every
# feature passes the inside_province rule, so this is a safe tileset extent without asking the database; it is
# deliberately wider than EPSG:9215's area of use (PROVINCE_BBOX_WGS84), which clips features near the border.
PROVINCE_TILE_BOUNDS = (106.0, 21.2, 107.5, 22.6)

_INTEGER = re.compile(r"-?[0-9]{1,9}")
_SETTINGS_KEYS = {"minzoom", "maxzoom", "properties", "simplify", "min_size", "max_features", "where",
                  "bounds"}
_MVT_TYPES = {"text": "String", "integer": "Number", "number": "Number", "date": "String",
              "boolean": "Boolean"}
_JSON_TYPES = {"text": "string", "integer": "integer", "number": "number", "date": "string",
               "boolean": "boolean"}


class TileSettingsError(LayerDefinitionError):
    """A ``tiles:`` section (or provider option) that cannot be used; names the layer file and the key."""


@dataclass(frozen=True)
class TileSettings:
    layer: str
    minzoom: int
    maxzoom: int
    properties: tuple[str, ...]
    simplify: float
    min_size: float
    max_features: int
    where: dict[str, Any] = field(default_factory=dict)
    bounds: tuple[float, float, float, float] = PROVINCE_TILE_BOUNDS
    points: bool = False  # point layers: no size filter and no simplification

    def as_options(self) -> dict[str, Any]:
        return {"minzoom": self.minzoom, "maxzoom": self.maxzoom, "properties": list(self.properties),
                "simplify": self.simplify, "min_size": self.min_size, "max_features": self.max_features,
                "where": dict(self.where), "bounds": list(self.bounds)}


def tile_settings(layer: Layer, overrides: dict[str, Any] | None = None) -> TileSettings:
    """The layer's ``tiles:`` section with defaults, then ``overrides`` (provider options) on top, checked."""
    raw = dict(layer.tiles or {})
    raw.update({k: v for k, v in (overrides or {}).items() if k in _SETTINGS_KEYS})
    where = f"{layer.path or layer.name} (tiles)"
    unknown = set(layer.tiles or {}) - _SETTINGS_KEYS
    if unknown:
        raise TileSettingsError(f"{where}: unknown key(s) {sorted(unknown)}; "
                                f"allowed: {sorted(_SETTINGS_KEYS)}")
    points = layer.geometry_type in ("Point", "MultiPoint")
    public = {f.name: f for f in layer.public_fields}
    default_props = [k for k in layer.natural_key if k in public]
    props = tuple(raw.get("properties") or default_props)
    bad = [p for p in props if p not in public]
    if bad:
        raise TileSettingsError(f"{where}: properties {bad} are not public fields of the layer")
    try:
        minzoom, maxzoom = int(raw.get("minzoom", 0)), int(raw.get("maxzoom", 18))
        simplify = float(raw.get("simplify", 0.0 if points else 0.5))
        min_size = float(raw.get("min_size", 0.0 if points else 1.0))
        max_features = int(raw.get("max_features", 10000))
        bounds = tuple(float(v) for v in raw.get("bounds", PROVINCE_TILE_BOUNDS))
    except (TypeError, ValueError) as exc:
        raise TileSettingsError(f"{where}: {exc}") from None
    if not 0 <= minzoom <= maxzoom <= TMS_MAX_ZOOM:
        raise TileSettingsError(f"{where}: need 0 <= minzoom <= maxzoom <= {TMS_MAX_ZOOM}, "
                                f"got {minzoom}, {maxzoom}")
    if simplify < 0 or min_size < 0 or max_features < 1 or len(bounds) != 4:
        raise TileSettingsError(f"{where}: simplify and min_size must be >= 0, max_features >= 1, "
                                "bounds 4 numbers")
    filters = dict(raw.get("where") or {})
    bad = [k for k in filters if k not in public]
    if bad:
        raise TileSettingsError(f"{where}: 'where' names {bad}, which are not public fields of the layer")
    return TileSettings(layer=layer.name, minzoom=minzoom, maxzoom=maxzoom, properties=props,
                        simplify=0.0 if points else simplify, min_size=0.0 if points else min_size,
                        max_features=max_features, where=filters,
                        bounds=bounds, points=points)  # type: ignore[arg-type]


def tile_provider_definition(layer: Layer) -> dict[str, Any]:
    """The pygeoapi provider block serving ``layer`` as vector tiles (for ``resources.<layer>.providers``).

    pygeoapi reads ``options.zoom`` (tile matrix range it accepts and shows), ``options.schemes`` and
    ``format`` (``f=mvt``; the tile URL is ``/collections/{id}/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt``).
    Tiles below ``minzoom`` are served (empty, 204), so the accepted range starts at 0. The layer's resolved
    settings are written into the options so the configuration shows exactly what is served.
    """
    settings = tile_settings(layer)
    return {
        "type": "tile",
        "name": PROVIDER_NAME,
        "data": f"{API_SCHEMA}.{layer.name}",
        "options": {
            "layer": layer.name,
            "zoom": {"min": 0, "max": settings.maxzoom},
            "schemes": [TILE_MATRIX_SET],
            **settings.as_options(),
        },
        "format": dict(MVT_FORMAT),
    }


# --------------------------------------------------------------------------------------------- tile maths
def tile_bounds_lonlat(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(lon_min, lat_min, lon_max, lat_max) of a WebMercatorQuad tile."""
    n = 2 ** z

    def lat(row: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


def tile_index(lon: float, lat: float, z: int) -> tuple[int, int]:
    """(x, y) of the WebMercatorQuad tile holding a WGS84 point at zoom z."""
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def pixel_metres(z: int) -> float:
    """Size in EPSG:3857 metres of one pixel of a 256-px tile at zoom z."""
    return WORLD_M / (TILE_PIXELS * 2 ** z)


def _int_index(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ProviderInvalidQueryError(user_msg=f"{name} must be an integer")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not _INTEGER.fullmatch(text):
        raise ProviderInvalidQueryError(user_msg=f"{name} must be an integer, got {value!r}")
    return int(text)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------------------------- SQL
def tile_query(settings: TileSettings, z: int, x: int, y: int) -> tuple[str, dict[str, Any]]:
    """One statement producing the tile's bytes (empty when no feature), and its parameters."""
    params: dict[str, Any] = {"z": z, "x": x, "y": y, "margin": BUFFER / EXTENT, "layer": settings.layer,
                              "max_features": settings.max_features}
    props = "".join(f", {_q(p)}" for p in settings.properties)
    conditions = ["geom_wgs84 && ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :margin), 4326)"]
    size_x = "(ST_XMax(Box2D(geom_wgs84)) - ST_XMin(Box2D(geom_wgs84)))"
    size_y = "(ST_YMax(Box2D(geom_wgs84)) - ST_YMin(Box2D(geom_wgs84)))"
    if settings.min_size > 0:
        # Bounding box (cached in the geometry header) against the pixel size in degrees at the tile latitude.
        lon_min, lat_min, lon_max, lat_max = tile_bounds_lonlat(z, x, y)
        min_dx = settings.min_size * 360.0 / (TILE_PIXELS * 2 ** z)
        params["min_dx"] = min_dx
        params["min_dy"] = min_dx * math.cos(math.radians((lat_min + lat_max) / 2))
        conditions.append(f"({size_x} >= :min_dx OR {size_y} >= :min_dy)")
    for i, (name, value) in enumerate(sorted(settings.where.items())):
        if value is None:
            conditions.append(f"{_q(name)} IS NULL")
        elif isinstance(value, (list, tuple)):
            conditions.append(f"{_q(name)} = ANY(:w{i})")
            params[f"w{i}"] = list(value)
        else:
            conditions.append(f"{_q(name)} = :w{i}")
            params[f"w{i}"] = value
    geom = "ST_Transform(c.geom_wgs84, 3857)"
    if settings.simplify > 0 and z < settings.maxzoom:
        params["tolerance"] = settings.simplify * pixel_metres(z)
        geom = f"ST_Simplify({geom}, :tolerance, true)"
    order = f"{size_x} * {size_y} DESC, id" if not settings.points else "id"
    c_props = "".join(f", c.{_q(p)}" for p in settings.properties)
    sql = (
        # One simple-protocol message = one round trip and one implicit transaction, so SET LOCAL holds for
        # the SELECT only. JIT compiles these plans (PostGIS functions are costed high) for ~0.1-0.8 s, longer
        # than the query itself.
        "SET LOCAL jit = off;\n"
        "SELECT ST_AsMVT(t.*, :layer, 4096, 'geom', 'id') FROM (\n"
        f"  SELECT c.id{c_props},\n"
        f"         ST_AsMVTGeom({geom}, ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true) AS geom\n"
        "  FROM (\n"
        f"    SELECT id{props}, geom_wgs84 FROM {API_SCHEMA}.{_q(settings.layer)}\n"
        f"    WHERE {' AND '.join(conditions)}\n"
        f"    ORDER BY {order} LIMIT :max_features\n"
        "  ) c\n"
        ") t WHERE t.geom IS NOT NULL"
    )
    return sql, params


# --------------------------------------------------------------------------------------------- provider
class TileProvider(BaseMVTProvider):
    """Vector tiles of one layer (``options.layer``) from ``api.<layer>``, WebMercatorQuad only."""

    def __init__(self, provider_def: dict):
        super().__init__(provider_def)
        options = self.options or {}
        name = options.get("layer") or str(self.data).rsplit(".", 1)[-1]
        try:
            self.layer = get_layer(name)
            self.settings = tile_settings(self.layer, options)
        except LayerDefinitionError as exc:
            raise ProviderConnectionError(user_msg=str(exc)) from exc
        # what pygeoapi itself reads (HTML viewer, is_in_limits)
        zoom = options.get("zoom") or {}
        self.options = {**options, "zoom": {"min": int(zoom.get("min", 0)),
                                            "max": int(zoom.get("max", self.settings.maxzoom))}}
        self.schemes = [TILE_MATRIX_SET]
        self._service_url = None
        self._service_metadata_url = None

    def __repr__(self) -> str:
        return f"<TileProvider> {self.layer.name}"

    # ----------------------------------------------------------------------------------------- description
    def get_layer(self) -> str:
        return self.layer.name

    def get_fields(self) -> dict[str, dict[str, str]]:
        fields = {"id": {"type": "integer"}}
        for name in self.settings.properties:
            f = self.layer.field(name)
            fields[name] = {"type": _JSON_TYPES[f.type], **({"format": "date"} if f.type == "date" else {})}
        return fields

    def get_tiling_schemes(self) -> list:
        return [TMS]

    def get_tiles_service(self, baseurl=None, servicepath=None, dirpath=None, tile_type=None) -> dict:
        """Links for the collection's tiles list: the tile URL template and the TileJSON document."""
        servicepath = servicepath or (f"{baseurl or ''}/collections/{self.layer.name}/tiles/"
                                      "{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"
                                      f"?f={self.format_type}")
        self._service_url = servicepath.replace("{tileMatrixSetId}", TILE_MATRIX_SET)
        tileset = self._service_url.split("/{tileMatrix}/{tileRow}/{tileCol}")[0]
        self._service_metadata_url = url_join(tileset, "metadata")
        return {"links": [
            {"type": self.mimetype, "rel": "item", "href": self._service_url, "templated": True,
             "title": f"{TILE_MATRIX_SET} vector tiles ({self.layer.name})"},
            {"type": "application/json", "rel": "describedby", "title": "TileJSON",
             "href": f"{self._service_metadata_url}?f=tilejson"},
        ]}

    # ----------------------------------------------------------------------------------------- tiles
    def check_tile(self, tileset: str | None, z: Any, y: Any, x: Any) -> tuple[int, int, int]:
        """Validated (z, y, x); raises the pygeoapi error for each kind of bad request."""
        if tileset != TILE_MATRIX_SET:
            raise ProviderTilesetIdNotFoundError(user_msg=f"tile matrix set {tileset!r} is not served; "
                                                          f"use {TILE_MATRIX_SET}")
        z, y, x = _int_index(z, "tileMatrix"), _int_index(y, "tileRow"), _int_index(x, "tileCol")
        zoom = self.options["zoom"]
        if not (max(0, zoom["min"]) <= z <= min(zoom["max"], TMS_MAX_ZOOM)) or not (
                0 <= x < 2 ** z and 0 <= y < 2 ** z):
            raise ProviderTileNotFoundError(user_msg=f"tile {z}/{y}/{x} is outside the tile matrix set")
        return z, y, x

    def get_tiles(self, layer=None, tileset=None, z=None, y=None, x=None, format_=None) -> bytes | None:
        """The tile's bytes, or None for an empty tile (pygeoapi then answers 204 No Content)."""
        z, y, x = self.check_tile(tileset, z, y, x)
        if z < self.settings.minzoom:
            return None
        cache = tile_cache()
        if cache is None or z > cache.max_zoom:
            return self._cut(z, x, y) or None
        try:
            version = cache.version(api_engine(), self.layer.name)
        except sa.exc.SQLAlchemyError as exc:
            LOGGER.error("tile %s %s/%s/%s: cannot read the layer's run: %s", self.layer.name, z, y, x, exc)
            raise ProviderQueryError() from exc
        if version is None:
            return self._cut(z, x, y) or None
        data = cache.get(self.layer.name, version, z, x, y)
        if data is None:
            data = self._cut(z, x, y)
            cache.put(self.layer.name, version, z, x, y, data)
        return data or None

    def _cut(self, z: int, x: int, y: int) -> bytes:
        """The tile's bytes from PostGIS (b"" when nothing is there)."""
        sql, params = tile_query(self.settings, z, x, y)
        try:
            with api_engine().connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")  # no BEGIN/ROLLBACK round trips
                data = conn.execute(sa.text(sql), params).scalar()
        except sa.exc.SQLAlchemyError as exc:
            LOGGER.error("tile %s %s/%s/%s failed: %s", self.layer.name, z, y, x, exc)
            raise ProviderQueryError() from exc
        return bytes(data) if data else b""

    # ----------------------------------------------------------------------------------------- metadata
    def get_metadata(self, dataset, server_url, layer=None, tileset=None, metadata_format=None, title=None,
                     description=None, keywords=None, **kwargs) -> dict:
        # pygeoapi 0.24 calls this outside any error handling (api/tiles.py get_collection_tiles_metadata), so
        # raising here, even ProviderTilesetIdNotFoundError, becomes a 500. An unknown tile matrix set id is
        # therefore answered with the description of the one tileset there is (WebMercatorQuad), whose links
        # and tileMatrixSetURI say which it is.
        if tileset is not None and tileset != TILE_MATRIX_SET:
            LOGGER.info("tile metadata asked for tile matrix set %r; describing %s", tileset, TILE_MATRIX_SET)
        fmt = (metadata_format or "json").upper()
        if fmt == "TILEJSON":
            return self.get_vendor_metadata(dataset, server_url, layer, tileset, title, description, keywords,
                                            **kwargs)
        if fmt == "HTML":
            return self.get_html_metadata(dataset, server_url, layer, tileset, title, description, keywords,
                                          **kwargs)
        return self.get_default_metadata(dataset, server_url, layer, tileset, title, description, keywords,
                                         **kwargs)

    def _lang(self, kwargs: dict) -> str:
        language = kwargs.get("language")
        return "en" if getattr(language, "language", language) == "en" else "vi"

    def _tile_url(self, server_url: str, dataset: str, xyz: bool = False) -> str:
        cells = "{z}/{y}/{x}" if xyz else "{tileMatrix}/{tileRow}/{tileCol}"
        return url_join(server_url, f"collections/{dataset}/tiles/{TILE_MATRIX_SET}",
                        f"{cells}?f={self.format_type}")

    def properties_schema(self, lang: str = "vi") -> dict:
        props = {"id": {"type": "integer", "title": "ID", "x-ogc-role": "id"}}
        for name in self.settings.properties:
            f = self.layer.field(name)
            props[name] = {"type": _JSON_TYPES[f.type], "title": f.title.get(lang)}
            if f.type == "date":
                props[name]["format"] = "date"
            if f.domain:
                props[name]["enum"] = list(f.domain)
        return {"type": "object", "properties": props}

    def get_default_metadata(self, dataset, server_url, layer, tileset, title, description, keywords,
                             **kwargs) -> dict:
        """OGC API - Tiles tileset metadata (2D Tile Matrix Set and Tileset Metadata), one vector layer."""
        lang = self._lang(kwargs)
        s = self.settings
        lon_min, lat_min, lon_max, lat_max = s.bounds
        limits = []
        for z in range(s.minzoom, s.maxzoom + 1):
            x0, y0 = tile_index(lon_min, lat_max, z)
            x1, y1 = tile_index(lon_max, lat_min, z)
            limits.append({"tileMatrix": str(z), "minTileRow": y0, "maxTileRow": y1, "minTileCol": x0,
                           "maxTileCol": x1})
        box = {"lowerLeft": [lon_min, lat_min], "upperRight": [lon_max, lat_max], "crs": CRS84}
        return {
            "title": title or self.layer.title.get(lang),
            "description": description or self.layer.description.get(lang),
            "keywords": list(keywords or self.layer.keywords.get(lang, ())),
            "dataType": "vector",
            "crs": TMS.crs,
            "tileMatrixSetURI": TMS.tileMatrixSetURI,
            "tileMatrixSetLimits": limits,
            "boundingBox": box,
            "mediaTypes": [self.mimetype],
            "layers": [{
                "id": self.layer.name,
                "title": self.layer.title.get(lang),
                "description": self.layer.description.get(lang),
                "dataType": "vector",
                "geometryDimension": 0 if s.points else (1 if "Line" in self.layer.geometry_type else 2),
                "minTileMatrix": str(s.minzoom),
                "maxTileMatrix": str(s.maxzoom),
                "boundingBox": box,
                "propertiesSchema": self.properties_schema(lang),
            }],
            "links": [
                {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", "type": "application/json",
                 "title": f"{TILE_MATRIX_SET} tile matrix set definition",
                 "href": url_join(server_url, "TileMatrixSets", TILE_MATRIX_SET)},
                {"rel": "item", "type": self.mimetype, "href": self._tile_url(server_url, dataset),
                 "templated": True, "title": f"{TILE_MATRIX_SET} vector tiles for {dataset}"},
                {"rel": "alternate", "type": "application/json", "title": "TileJSON",
                 "href": url_join(server_url, f"collections/{dataset}/tiles/{TILE_MATRIX_SET}/metadata")
                 + "?f=tilejson"},
            ],
        }

    def get_vendor_metadata(self, dataset, server_url, layer, tileset, title, description, keywords,
                            **kwargs) -> dict:
        """TileJSON 3.0.0 with one vector layer and its fields (MapLibre/Mapbox ``url:`` sources)."""
        lang = self._lang(kwargs)
        s = self.settings
        lon_min, lat_min, lon_max, lat_max = s.bounds
        return {
            "tilejson": "3.0.0",
            "name": title or self.layer.title.get(lang),
            "description": description or self.layer.description.get(lang),
            "scheme": "xyz",
            "tiles": [self._tile_url(server_url, dataset, xyz=True)],
            "minzoom": s.minzoom,
            "maxzoom": s.maxzoom,
            "bounds": [lon_min, lat_min, lon_max, lat_max],
            "center": [round((lon_min + lon_max) / 2, 5), round((lat_min + lat_max) / 2, 5), s.minzoom],
            "vector_layers": [{
                "id": self.layer.name,
                "description": self.layer.title.get(lang),
                "minzoom": s.minzoom,
                "maxzoom": s.maxzoom,
                "fields": {name: _MVT_TYPES[self.layer.field(name).type] for name in s.properties},
            }],
        }

    def get_html_metadata(self, dataset, server_url, layer, tileset, title, description, keywords,
                          **kwargs) -> dict:
        base = url_join(server_url, f"collections/{dataset}/tiles/{TILE_MATRIX_SET}/metadata")
        return {
            "id": dataset,
            "title": title or self.layer.title.get(self._lang(kwargs)),
            "tileset": TILE_MATRIX_SET,
            "collections_path": self._tile_url(server_url, dataset),
            "json_url": f"{base}?f=json",
            "tilejson_url": f"{base}?f=tilejson",
            "metadata": {"minzoom": self.settings.minzoom, "maxzoom": self.settings.maxzoom,
                         "properties": ", ".join(self.settings.properties)},
        }
