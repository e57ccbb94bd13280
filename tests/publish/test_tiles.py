"""Vector tiles (gisplatform.publish.tiles) on the published sample: what is in a tile, per-zoom rules, errors.

Tiles are decoded with a small protobuf reader below (mapbox_vector_tile is not installed) and compared with
PostGIS. The pygeoapi side is exercised in-process: pygeoapi's own API functions with a configuration holding
our provider blocks, so status codes (200 / 204 / 400 / 404) are the ones a client would get.
"""
from __future__ import annotations

import dataclasses
import math
import os
import struct

import pytest
import sqlalchemy as sa
from pygeoapi.provider.base import ProviderInvalidQueryError
from pygeoapi.provider.tile import ProviderTileNotFoundError, ProviderTilesetIdNotFoundError

from gisplatform.layers import get_layer, load_layers
from gisplatform.publish import connection
from gisplatform.publish import tiles as T

WMQ = "WebMercatorQuad"


# --- a minimal Mapbox Vector Tile (protobuf) reader ------------------------------------------------------


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes):
    """(field number, wire type, value) of a protobuf message; length-delimited values as bytes."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield number, wire, value


def _packed(buf: bytes) -> list[int]:
    out, i = [], 0
    while i < len(buf):
        v, i = _varint(buf, i)
        out.append(v)
    return out


def _value(buf: bytes):
    for number, _, v in _fields(buf):
        if number == 1:
            return v.decode()
        if number == 2:
            return struct.unpack("<f", v)[0]
        if number == 3:
            return struct.unpack("<d", v)[0]
        if number in (4, 5):
            return v
        if number == 6:
            return (v >> 1) ^ -(v & 1)
        if number == 7:
            return bool(v)
    return None


def _geometry(commands: list[int]) -> list[tuple[int, int]]:
    """Vertices of a feature geometry (tile coordinates), ClosePath adds none."""
    x = y = 0
    points, i = [], 0
    while i < len(commands):
        cmd, count = commands[i] & 7, commands[i] >> 3
        i += 1
        if cmd in (1, 2):
            for _ in range(count):
                dx, dy = commands[i], commands[i + 1]
                i += 2
                x += (dx >> 1) ^ -(dx & 1)
                y += (dy >> 1) ^ -(dy & 1)
                points.append((x, y))
    return points


def decode_mvt(data: bytes | None) -> dict[str, dict]:
    """{layer name: {extent, features: [{id, type, properties, points}]}}."""
    layers = {}
    for number, _, layer_buf in _fields(data or b""):
        if number != 3:
            continue
        name, keys, values, raw, extent = None, [], [], [], 4096
        for n, _, v in _fields(layer_buf):
            if n == 1:
                name = v.decode()
            elif n == 2:
                raw.append(v)
            elif n == 3:
                keys.append(v.decode())
            elif n == 4:
                values.append(_value(v))
            elif n == 5:
                extent = v
        features = []
        for fbuf in raw:
            feature = {"id": None, "type": None, "properties": {}, "points": []}
            for n, _, v in _fields(fbuf):
                if n == 1:
                    feature["id"] = v
                elif n == 2:
                    tags = _packed(v)
                    feature["properties"] = {keys[tags[k]]: values[tags[k + 1]] for k in range(0, len(tags), 2)}
                elif n == 3:
                    feature["type"] = v
                elif n == 4:
                    feature["points"] = _geometry(_packed(v))
            features.append(feature)
        layers[name] = {"extent": extent, "features": features}
    return layers


# --- WebMercator (independent of the module under test) -----------------------------------------------------


def lonlat_to_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = math.floor((lon + 180.0) / 360.0 * n)
    lat_r = math.radians(lat)
    y = math.floor((1.0 - math.log(math.tan(lat_r) + 1.0 / math.cos(lat_r)) / math.pi) / 2.0 * n)
    return x, y


# --- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_db(published_database):
    """The API connection (read-only role) pointed at the published sample, restored afterwards."""
    saved = os.environ.get("GISPLATFORM_API_DATABASE_URL")
    connection.reset()
    os.environ["GISPLATFORM_API_DATABASE_URL"] = published_database.set(
        username="gisplatform_api", password=None).render_as_string(hide_password=False)
    yield published_database
    connection.reset()
    if saved is None:
        os.environ.pop("GISPLATFORM_API_DATABASE_URL", None)
    else:
        os.environ["GISPLATFORM_API_DATABASE_URL"] = saved


@pytest.fixture(scope="module")
def pg(api_db):
    engine = sa.create_engine(api_db)
    yield engine
    engine.dispose()


def provider(layer: str, **options) -> T.TileProvider:
    definition = T.tile_provider_definition(get_layer(layer))
    definition["options"].update(options)
    return T.TileProvider(definition)


@pytest.fixture(scope="module")
def parcel_spot(pg) -> tuple[float, float]:
    """A point in the middle of the sample's parcels (a parcel's interior point)."""
    with pg.connect() as c:
        return tuple(c.execute(sa.text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom_wgs84) AS p FROM api.cadastral_parcels "
            "ORDER BY id OFFSET (SELECT count(*) / 2 FROM api.cadastral_parcels) LIMIT 1) t")).one())


class StatementCounter:
    """Counts the SQL statements the API engine sends (pool pre-ping is not one of them)."""

    def __init__(self):
        self.statements: list[str] = []

    def __enter__(self):
        sa.event.listen(connection.api_engine(), "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        sa.event.remove(connection.api_engine(), "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(statement)


def _ids_intersecting(pg, layer: str, z: int, x: int, y: int, margin: float, where: str = "TRUE") -> set[int]:
    with pg.connect() as c:
        return set(c.execute(sa.text(
            f"SELECT id FROM api.{layer} WHERE ST_Intersects(ST_Transform(geom_wgs84, 3857), "
            f"ST_TileEnvelope(:z, :x, :y, margin => :m)) AND {where}"), {"z": z, "x": x, "y": y, "m": margin}
        ).scalars())


# --- configuration ----------------------------------------------------------------------------------------------


def minimal_pygeoapi_config(resources: dict) -> dict:
    return {
        "server": {"bind": {"host": "127.0.0.1", "port": 5000}, "url": "http://localhost:5000/ogc",
                   "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8", "languages": ["vi", "en"],
                   "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"},
                   "limits": {"default_items": 10, "max_items": 100}},
        "logging": {"level": "ERROR"},
        "metadata": {"identification": {"title": "t", "description": "d", "keywords": ["k"], "url": "http://x"},
                     "license": {"name": "CC-BY-4.0"}, "provider": {"name": "p"}, "contact": {"name": "c"}},
        "resources": resources,
    }


def layer_resource(name: str) -> dict:
    layer = get_layer(name)
    return {"type": "collection", "title": {"vi": layer.title.vi, "en": layer.title.en},
            "description": {"vi": layer.description.vi, "en": layer.description.en},
            "keywords": {k: list(v) for k, v in layer.keywords.items()},
            "extents": {"spatial": {"bbox": list(T.PROVINCE_TILE_BOUNDS)}},
            "providers": [T.tile_provider_definition(layer)]}


def test_provider_definitions_are_valid_pygeoapi_configuration():
    from pygeoapi.config import validate_config

    for layer in load_layers().values():
        d = T.tile_provider_definition(layer)
        assert d["type"] == "tile" and d["name"] == "gisplatform.publish.tiles.TileProvider"
        assert d["format"] == {"name": "mvt", "mimetype": "application/vnd.mapbox-vector-tile"}
        assert d["options"]["schemes"] == [WMQ] and d["options"]["layer"] == layer.name
        assert d["options"]["zoom"] == {"min": 0, "max": layer.tiles["maxzoom"]}  # below minzoom: 204, not 404
        assert d["options"]["properties"] == layer.tiles["properties"]
        public = {f.name for f in layer.public_fields}
        assert set(d["options"]["properties"]) <= public
    resources = {name: layer_resource(name) for name in load_layers()}
    assert validate_config(minimal_pygeoapi_config(resources))


def test_bad_tiles_sections_are_refused():
    parcels = get_layer("cadastral_parcels")
    for tiles, message in [
        ({"minzoom": 14, "colour": "red"}, "unknown key"),
        ({"properties": ["parcel_id", "holder_name"]}, "not public"),  # not a field, and never personal ones
        ({"minzoom": 15, "maxzoom": 12}, "minzoom"),
        ({"where": {"no_such_field": None}}, "where"),
    ]:
        with pytest.raises(T.TileSettingsError, match=message):
            T.tile_settings(dataclasses.replace(parcels, tiles=tiles))
    for f in parcels.personal_fields:
        with pytest.raises(T.TileSettingsError):
            T.tile_settings(dataclasses.replace(parcels, tiles={"properties": [f.name]}))


# --- tile content -------------------------------------------------------------------------------------------------


def test_parcel_tile_holds_exactly_the_parcels_of_the_tile(api_db, pg, parcel_spot):
    z = 17
    x, y = lonlat_to_tile(*parcel_spot, z)
    data = provider("cadastral_parcels").get_tiles(layer="cadastral_parcels", tileset=WMQ, z=z, y=y, x=x)
    assert isinstance(data, bytes) and data
    decoded = decode_mvt(data)
    assert list(decoded) == ["cadastral_parcels"]
    features = decoded["cadastral_parcels"]["features"]
    ids = [f["id"] for f in features]
    assert len(ids) == len(set(ids)) and len(ids) >= 3
    inside = _ids_intersecting(pg, "cadastral_parcels", z, x, y, 0.0)
    with_buffer = _ids_intersecting(pg, "cadastral_parcels", z, x, y, T.BUFFER / T.EXTENT)
    assert inside <= set(ids) <= with_buffer
    assert all(f["type"] == 3 for f in features)  # polygons
    # coordinates in tile units, within the buffer
    for f in features:
        assert all(-T.BUFFER <= px <= T.EXTENT + T.BUFFER and -T.BUFFER <= py <= T.EXTENT + T.BUFFER
                   for px, py in f["points"])


def test_tile_attributes_are_the_configured_public_fields_with_database_values(api_db, pg, parcel_spot):
    layer = get_layer("cadastral_parcels")
    z = 17
    x, y = lonlat_to_tile(*parcel_spot, z)
    features = decode_mvt(provider("cadastral_parcels").get_tiles(tileset=WMQ, z=z, y=y, x=x))[
        "cadastral_parcels"]["features"]
    configured = set(layer.tiles["properties"])
    keys = set().union(*(f["properties"] for f in features))
    assert keys <= configured and {"parcel_id", "parcel_no", "land_use_code"} <= keys
    assert not keys & {f.name for f in layer.personal_fields}
    assert not keys & {"geom", "geom_wgs84", "version", "updated", "id", "organisation_name", "parcel_address"}
    with pg.connect() as c:
        rows = {r["id"]: r for r in c.execute(sa.text(
            "SELECT id, parcel_id, commune_code, map_sheet_no, parcel_no, land_use_code, area_m2 "
            "FROM api.cadastral_parcels WHERE id = ANY(:ids)"), {"ids": [f["id"] for f in features]}).mappings()}
    for f in features:
        row = rows[f["id"]]
        for key, value in f["properties"].items():
            assert value == pytest.approx(row[key]) if isinstance(value, float) else value == row[key]


def test_below_minzoom_the_tile_is_empty_without_a_query(api_db, parcel_spot):
    p = provider("cadastral_parcels")
    assert p.settings.minzoom == 14
    with StatementCounter() as counter:
        for z in (0, 5, 10, 13):
            x, y = lonlat_to_tile(*parcel_spot, z)
            assert p.get_tiles(tileset=WMQ, z=z, y=y, x=x) is None
    assert counter.statements == []


def test_one_statement_per_tile(api_db, parcel_spot):
    p = provider("cadastral_parcels")
    x, y = lonlat_to_tile(*parcel_spot, 16)
    with StatementCounter() as counter:
        assert p.get_tiles(tileset=WMQ, z=16, y=y, x=x)
    assert len(counter.statements) == 1


def test_empty_tile_is_none(api_db):
    x, y = lonlat_to_tile(105.85, 21.03, 16)  # Hà Nội, outside the province
    assert provider("cadastral_parcels").get_tiles(tileset=WMQ, z=16, y=y, x=x) is None


def test_zoom_10_over_the_sample_is_cheap_and_limited(api_db, pg, parcel_spot):
    z = 10
    x, y = lonlat_to_tile(*parcel_spot, z)
    # parcels: below their minzoom
    assert provider("cadastral_parcels").get_tiles(tileset=WMQ, z=z, y=y, x=x) is None
    # admin units: only the units in force (valid_to IS NULL), small
    data = provider("admin_units").get_tiles(tileset=WMQ, z=z, y=y, x=x)
    assert data and len(data) < 100_000
    features = decode_mvt(data)["admin_units"]["features"]
    current = _ids_intersecting(pg, "admin_units", z, x, y, T.BUFFER / T.EXTENT, "valid_to IS NULL")
    retired = _ids_intersecting(pg, "admin_units", z, x, y, T.BUFFER / T.EXTENT, "valid_to IS NOT NULL")
    ids = {f["id"] for f in features}
    assert ids and ids <= current and not ids & retired
    assert all("valid_to" not in f["properties"] for f in features)  # NULL values are not encoded
    assert {"code", "name", "level"} <= set(features[0]["properties"])


def test_sub_pixel_features_are_dropped_and_the_largest_kept(api_db, pg, parcel_spot):
    """Parcels forced down to z12 with a cap: only parcels at least a pixel wide or high, the largest first."""
    z, cap = 12, 25
    x, y = lonlat_to_tile(*parcel_spot, z)
    p = provider("cadastral_parcels", minzoom=z, max_features=cap)
    features = decode_mvt(p.get_tiles(tileset=WMQ, z=z, y=y, x=x))["cadastral_parcels"]["features"]
    assert 0 < len(features) <= cap
    px_deg = 360.0 / (256 * 2 ** z)
    with pg.connect() as c:
        rows = c.execute(sa.text(
            "SELECT id, ST_XMax(b) - ST_XMin(b) AS dx, ST_YMax(b) - ST_YMin(b) AS dy "
            "FROM (SELECT id, Box2D(geom_wgs84) AS b FROM api.cadastral_parcels "
            "WHERE geom_wgs84 && ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :m), 4326)) t"),
            {"z": z, "x": x, "y": y, "m": T.BUFFER / T.EXTENT}).mappings().all()
    lat = math.radians(parcel_spot[1])
    big = {r["id"]: r["dx"] * r["dy"] for r in rows if r["dx"] >= px_deg or r["dy"] >= px_deg * math.cos(lat) * 0.999}
    small = {r["id"] for r in rows} - set(big)
    assert len(small) > 0 and len(big) > cap  # the sample has both, and more than the cap
    ids = {f["id"] for f in features}
    assert not ids & small
    kept = [big[i] for i in ids]
    left_out = [a for i, a in big.items() if i not in ids]
    assert min(kept) >= max(left_out) * 0.999  # the cap keeps the largest (bounding-box area)


def test_simplification_reduces_vertices_at_low_zoom(api_db, pg):
    with pg.connect() as c:
        lon, lat = c.execute(sa.text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(ST_Union(geom_wgs84)) AS p "
            "FROM api.admin_units WHERE valid_to IS NULL) t")).one()
    z = 8
    x, y = lonlat_to_tile(lon, lat, z)

    def vertices(**options) -> int:
        data = provider("admin_units", **options).get_tiles(tileset=WMQ, z=z, y=y, x=x)
        return sum(len(f["points"]) for f in decode_mvt(data)["admin_units"]["features"])

    assert 0 < vertices(simplify=2.0) < vertices(simplify=0)


def test_point_layer_tile(api_db, pg):
    with pg.connect() as c:
        lon, lat, fid = c.execute(sa.text(
            "SELECT ST_X(geom_wgs84), ST_Y(geom_wgs84), id FROM api.water_licences ORDER BY id LIMIT 1")).one()
    x, y = lonlat_to_tile(lon, lat, 14)
    p = provider("water_licences")
    assert p.settings.points and p.settings.min_size == 0 and p.settings.simplify == 0
    features = decode_mvt(p.get_tiles(tileset=WMQ, z=14, y=y, x=x))["water_licences"]["features"]
    assert fid in {f["id"] for f in features}
    assert all(f["type"] == 1 for f in features)
    assert set(features[0]["properties"]) <= {"licence_no", "water_type", "status"}


def test_tile_filter_uses_the_spatial_index(api_db, pg, parcel_spot):
    settings = T.tile_settings(get_layer("cadastral_parcels"))
    x, y = lonlat_to_tile(*parcel_spot, 16)
    sql, params = T.tile_query(settings, 16, x, y)
    select = sql.split(";", 1)[1]
    with connection.api_engine().connect() as c:
        c.execute(sa.text("SET LOCAL enable_seqscan = off"))  # the sample is small: make the planner show it can
        plan = "\n".join(r[0] for r in c.execute(sa.text("EXPLAIN " + select), params))
    assert "cadastral_parcels_geom_wgs84_idx" in plan
    assert "st_transform(geom_wgs84, 'EPSG" not in plan.lower()  # integer SRIDs only
    assert "'EPSG:" not in sql and "CRS84" not in sql


# --- bad requests ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("z, y, x, error", [
    ("a", 0, 0, ProviderInvalidQueryError),
    (10, "1.5", 0, ProviderInvalidQueryError),
    (10, 0, "", ProviderInvalidQueryError),
    (10, "--5", 0, ProviderInvalidQueryError),
    ("1e3", 0, 0, ProviderInvalidQueryError),
    (10, 0, "99999999999999999999", ProviderInvalidQueryError),
    (-1, 0, 0, ProviderTileNotFoundError),
    (10, -1, 0, ProviderTileNotFoundError),
    (10, 0, 1024, ProviderTileNotFoundError),  # x beyond 2^z - 1
    (3, 8, 0, ProviderTileNotFoundError),
    (19, 0, 0, ProviderTileNotFoundError),  # deeper than the layer's maxzoom (18)
    (25, 0, 0, ProviderTileNotFoundError),  # deeper than WebMercatorQuad
])
def test_invalid_tile_indexes_are_client_errors(api_db, z, y, x, error):
    with pytest.raises(error) as info:
        provider("cadastral_parcels").get_tiles(tileset=WMQ, z=z, y=y, x=x)
    assert 400 <= info.value.http_status_code < 500


def test_other_tile_matrix_sets_are_not_found(api_db):
    with pytest.raises(ProviderTilesetIdNotFoundError):
        provider("cadastral_parcels").get_tiles(tileset="WorldCRS84Quad", z=1, y=0, x=0)


# --- metadata ----------------------------------------------------------------------------------------------------------


def test_tilejson_and_tileset_metadata_list_the_fields(api_db):
    p = provider("cadastral_parcels")
    layer = get_layer("cadastral_parcels")
    tj = p.get_metadata("cadastral_parcels", "http://h/ogc", layer="cadastral_parcels", tileset=WMQ,
                        metadata_format="tilejson")
    assert tj["tilejson"] == "3.0.0"
    assert tj["tiles"] == ["http://h/ogc/collections/cadastral_parcels/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt"]
    assert (tj["minzoom"], tj["maxzoom"]) == (14, 18)
    [vl] = tj["vector_layers"]
    assert vl["id"] == "cadastral_parcels"
    assert vl["fields"] == {"parcel_id": "String", "commune_code": "String", "map_sheet_no": "Number",
                            "parcel_no": "String", "land_use_code": "String", "area_m2": "Number"}
    west, south, east, north = tj["bounds"]
    assert west < 106.2 and east > 107.3 and south < 21.35 and north > 22.45  # the province, generously

    md = p.get_metadata("cadastral_parcels", "http://h/ogc", layer="cadastral_parcels", tileset=WMQ,
                        metadata_format="json", title="Thửa đất địa chính")
    assert md["dataType"] == "vector" and md["tileMatrixSetURI"].endswith("/WebMercatorQuad")
    [ml] = md["layers"]
    assert list(ml["propertiesSchema"]["properties"]) == ["id", *layer.tiles["properties"]]
    assert ml["propertiesSchema"]["properties"]["parcel_no"]["title"] == "Số thứ tự thửa"
    assert (ml["minTileMatrix"], ml["maxTileMatrix"]) == ("14", "18")
    assert [lim["tileMatrix"] for lim in md["tileMatrixSetLimits"]] == [str(z) for z in range(14, 19)]
    item = [link for link in md["links"] if link["rel"] == "item"]
    assert item and item[0]["type"] == "application/vnd.mapbox-vector-tile"
    en = p.get_metadata("cadastral_parcels", "http://h/ogc", tileset=WMQ, metadata_format="json",
                        language="en")
    assert en["layers"][0]["propertiesSchema"]["properties"]["parcel_no"]["title"] == "Parcel no."
    # pygeoapi has no error path around the provider's metadata: never raise, describe the one tileset there is
    other = p.get_metadata("cadastral_parcels", "http://h/ogc", tileset="WorldCRS84Quad", metadata_format="json")
    assert other["tileMatrixSetURI"].endswith("/WebMercatorQuad")
    assert p.get_metadata("cadastral_parcels", "http://h/ogc", tileset=WMQ, metadata_format=None)["layers"]


# --- through pygeoapi --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pygeoapi_api(api_db):
    from pygeoapi.api import API

    config = minimal_pygeoapi_config({name: layer_resource(name) for name in load_layers()})
    return API(config, {})


def call(api, function, path: str, query: str = "", **kwargs):
    from pygeoapi.api import APIRequest
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    request = Request(EnvironBuilder(path=path, query_string=query).get_environ())
    return function(api, APIRequest(request, api.locales), **kwargs)


def test_pygeoapi_serves_tiles_with_the_right_status_codes(pygeoapi_api, parcel_spot):
    from pygeoapi.api import tiles as tiles_api

    def tile(z, y, x, dataset="cadastral_parcels", tms=WMQ):
        return call(pygeoapi_api, tiles_api.get_collection_tiles_data, f"/collections/{dataset}/tiles", "f=mvt",
                    dataset=dataset, matrix_id=tms, z_idx=str(z), y_idx=str(y), x_idx=str(x))

    x, y = lonlat_to_tile(*parcel_spot, 16)
    headers, status, content = tile(16, y, x)
    assert status == 200 and headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert decode_mvt(content)["cadastral_parcels"]["features"]
    x, y = lonlat_to_tile(*parcel_spot, 10)
    headers, status, content = tile(10, y, x)
    assert status == 204 and not content
    assert tile(10, "abc", x)[1] == 400
    assert tile(10, -3, x)[1] == 404
    assert tile(10, y, 5000)[1] == 404
    assert tile(30, 0, 0)[1] == 404
    assert tile(10, y, x, tms="WorldCRS84Quad")[1] == 404


def test_pygeoapi_tiles_list_and_metadata(pygeoapi_api):
    import json

    from pygeoapi.api import tiles as tiles_api

    headers, status, content = call(pygeoapi_api, tiles_api.get_collection_tiles, "/collections/admin_units/tiles",
                                    "f=json", dataset="admin_units")
    assert status == 200
    doc = json.loads(content)
    assert [t["tileMatrixSetURI"] for t in doc["tilesets"]] == [T.TMS.tileMatrixSetURI]
    items = [link for link in doc["links"] if link["rel"] == "item"]
    assert items[0]["href"].endswith("/collections/admin_units/tiles/WebMercatorQuad/"
                                     "{tileMatrix}/{tileRow}/{tileCol}?f=mvt")
    for fmt, key in (("tilejson", "vector_layers"), ("json", "layers")):
        headers, status, content = call(pygeoapi_api, tiles_api.get_collection_tiles_metadata,
                                        "/collections/admin_units/tiles/WebMercatorQuad/metadata", f"f={fmt}",
                                        dataset="admin_units", matrix_id=WMQ)
        assert status == 200, content
        doc = json.loads(content)
        assert doc[key][0]["id"] == "admin_units"
    headers, status, content = call(pygeoapi_api, tiles_api.get_collection_tiles_metadata,
                                    "/collections/admin_units/tiles/WebMercatorQuad/metadata", "f=json&lang=en",
                                    dataset="admin_units", matrix_id=WMQ)
    assert json.loads(content)["title"] == "Communes and wards"
    for matrix_id in ("0", "WorldCRS84Quad"):  # found by schemathesis: these were 500s
        for fmt in ("json", "jsonld", "html", "tilejson"):
            headers, status, content = call(pygeoapi_api, tiles_api.get_collection_tiles_metadata,
                                            f"/collections/admin_units/tiles/{matrix_id}/metadata", f"f={fmt}",
                                            dataset="admin_units", matrix_id=matrix_id)
            assert status == 200, (matrix_id, fmt)


def test_pygeoapi_collection_description_links_the_tiles(pygeoapi_api):
    import json

    from pygeoapi.api import describe_collections

    headers, status, content = call(pygeoapi_api, describe_collections, "/collections/water_sources", "f=json",
                                    dataset="water_sources")
    assert status == 200
    rels = {link["rel"] for link in json.loads(content)["links"]}
    assert "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector" in rels
