"""The feature provider (gisplatform.publish.features), called directly and through pygeoapi's own API
functions, on the published sample as the read-only API role; "as of" queries on a scratch database."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg2
import pytest
import sqlalchemy as sa
from pygeoapi.crs import create_crs_transform_spec
from pygeofilter.parsers.cql2_text import parse as parse_text

from gisplatform import crs
from gisplatform.db import engine as db_engine
from gisplatform.layers import LayerDefinitionError, get_layer, load_layers
from gisplatform.publish import connection, features
from gisplatform.publish.features import FeatureProvider, feature_provider_definition
from pygeoapi.provider.base import ProviderInvalidQueryError, ProviderItemNotFoundError

PROJECT = Path(__file__).resolve().parents[2]
LAYER = "cadastral_parcels"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"


@contextmanager
def api_database(url: sa.engine.URL):
    """Point api_engine() at a database as the API role; restore the environment afterwards."""
    before = os.environ.get("GISPLATFORM_API_DATABASE_URL")
    os.environ["GISPLATFORM_API_DATABASE_URL"] = url.set(username="gisplatform_api", password=None) \
        .render_as_string(hide_password=False)
    connection.reset()
    features._COUNTS.clear()
    try:
        yield connection.api_engine()
    finally:
        connection.reset()
        features._COUNTS.clear()
        if before is None:
            os.environ.pop("GISPLATFORM_API_DATABASE_URL", None)
        else:
            os.environ["GISPLATFORM_API_DATABASE_URL"] = before


@pytest.fixture(scope="module")
def engine(published_database):
    with api_database(published_database) as eng:
        yield eng


def sql(engine, query: str, **params):
    with engine.connect() as c:
        return c.execute(sa.text(query), params).all()


def definition(layer: str = LAYER, **overrides) -> dict:
    return {**feature_provider_definition(get_layer(layer)), **overrides}


def provider(layer: str = LAYER, **overrides) -> FeatureProvider:
    return FeatureProvider(definition(layer, **overrides))


def spec(uri: str | None, layer: str = LAYER):
    """What pygeoapi passes for a `crs` parameter (None: no parameter)."""
    return create_crs_transform_spec(definition(layer), uri)


# --- configuration and fields ------------------------------------------------------------------------------
def test_provider_definition():
    assert feature_provider_definition(get_layer(LAYER)) == {
        "type": "feature",
        "name": "gisplatform.publish.features.FeatureProvider",
        "data": {"layer": LAYER},
        "id_field": "id",
        "storage_crs": EPSG.format(9215),
        "crs": [CRS84, EPSG.format(4326), EPSG.format(9215), EPSG.format(3857)],
        "include_extra_query_parameters": True,
    }
    layer = get_layer(LAYER)
    titled = dataclasses.replace(layer, publish={"title_field": "parcel_no"})
    assert feature_provider_definition(titled)["title_field"] == "parcel_no"
    with pytest.raises(LayerDefinitionError):
        feature_provider_definition(dataclasses.replace(layer, publish={"title_field": "user_name"}))


def test_field_schemas_are_made_on_demand_and_never_shared():
    """pygeoapi makes a provider per request and edits the fields it reads (the schema endpoint pops ``format``,
    sets ``x-ogc-role``): each provider has its own copy, made only when pygeoapi asks for it."""
    first, second = provider(), provider()
    assert first._field_copy is None  # building a provider (every request) copies nothing
    original = second.get_fields()
    assert first.fields == original and first.fields is first._fields  # pygeoapi's two ways in: one copy
    first.fields["parcel_no"]["x-ogc-role"] = "id"
    first.fields["record_date"].pop("format")
    domain = next(name for name, schema in first.fields.items() if "enum" in schema)
    first.fields[domain]["enum"].append("not a code")
    assert second.fields == original and provider().fields == original and first.get_fields() == original
    assert features._field_schemas(LAYER)["parcel_no"] == original["parcel_no"]
    assert set(provider(properties=["parcel_no", "area_m2"]).fields) == {"parcel_no", "area_m2"}


@pytest.mark.parametrize("layer", list(load_layers()))
def test_fields_are_exactly_the_public_ones(layer):
    definition_ = get_layer(layer)
    fields = provider(layer).get_fields()
    assert list(fields) == [f.name for f in definition_.public_fields]
    text = json.dumps(fields, ensure_ascii=False)
    for personal in definition_.personal_fields:
        assert f'"{personal.name}"' not in text
    for f in definition_.public_fields:
        schema = fields[f.name]
        assert schema["title"] == f.title.vi and schema["x-title-en"] == f.title.en
        assert schema["type"] == {"text": "string", "integer": "integer", "number": "number",
                                  "boolean": "boolean", "date": "string"}[f.type]
        assert schema.get("format") == ("date" if f.type == "date" else None)
        assert schema.get("enum") == (list(f.domain) if f.domain else None)


def test_fields_need_no_database_and_are_not_shared_between_providers():
    a, b = provider(), provider()
    a.fields["parcel_no"]["x-ogc-role"] = "changed by pygeoapi"
    assert "x-ogc-role" not in b.fields["parcel_no"]


# --- counts, paging ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer", list(load_layers()))
def test_counts_equal_the_view(engine, layer):
    (total,), = sql(engine, f"SELECT count(*) FROM api.{layer}")
    p = provider(layer)
    hits = p.query(resulttype="hits")
    assert hits["numberMatched"] == total and hits["features"] == [] and hits["numberReturned"] == 0
    everything = p.query(limit=10000, skip_geometry=True)
    assert everything["numberMatched"] == everything["numberReturned"] == total
    (recorded,), = sql(engine, "SELECT features FROM api.catalogue WHERE layer = :l", l=layer)
    assert recorded == total  # what the unfiltered numberMatched reads


def test_default_order_is_by_id_and_offset_pages(engine):
    p = provider()
    ids = [r.id for r in sql(engine, f"SELECT id FROM api.{LAYER} ORDER BY id LIMIT 30")]
    assert [f["id"] for f in p.query(limit=10)["features"]] == ids[:10]
    assert [f["id"] for f in p.query(offset=20, limit=10)["features"]] == ids[20:30]
    assert "links" not in p.query(limit=10)  # no pygeoapi request: no links of our own


def test_keyset_cursor_pages_through_the_whole_layer(engine):
    p = provider()
    expected = [r.id for r in sql(engine, f"SELECT id FROM api.{LAYER} ORDER BY id")]
    seen, after, offset = [], None, 0
    while True:
        props = [("after", str(after))] if after is not None else []
        page = p.query(offset=offset, limit=700, properties=props, skip_geometry=True)
        seen += [f["id"] for f in page["features"]]
        if len(page["features"]) < 700:
            break
        after, offset = page["features"][-1]["id"], offset + 700
    assert seen == expected


def test_keyset_cursor_with_filters_and_as_of(engine):
    p = provider()
    expected = [r.id for r in sql(engine, f"SELECT id FROM api.{LAYER} WHERE map_sheet_no > 1 ORDER BY id")]
    first = p.query(limit=100, filterq=parse_text("map_sheet_no > 1"), skip_geometry=True)
    rest = p.query(limit=10000, filterq=parse_text("map_sheet_no > 1"), skip_geometry=True,
                   properties=[("after", str(first["features"][-1]["id"]))])
    assert [f["id"] for f in first["features"] + rest["features"]] == expected
    assert first["numberMatched"] == rest["numberMatched"] == len(expected)  # all, not what is left
    now = datetime.now().astimezone().isoformat()
    as_of = p.query(limit=5, datetime_=now, properties=[("after", str(expected[0]))], skip_geometry=True)
    assert [f["id"] for f in as_of["features"]][0] > expected[0]


def test_bad_cursors_are_refused():
    p = provider()
    for value in ("abc", "1.5", "", "99999999999999999999999"):
        with pytest.raises(ProviderInvalidQueryError, match="after"):
            p.query(properties=[("after", value)])
    with pytest.raises(ProviderInvalidQueryError, match="default order by id"):
        p.query(properties=[("after", "5")], sortby=[{"property": "area_m2", "order": "+"}])
    with pytest.raises(ProviderInvalidQueryError, match="default order by id"):
        p.query(properties=[("after", "5")], datetime_="2020-01-01/..")


# --- bbox, CRS ---------------------------------------------------------------------------------------------
def test_bbox_in_the_storage_crs(engine):
    box = (419000.0, 2461500.0, 421000.0, 2463000.0)
    (expected,), = sql(engine, f"SELECT count(*) FROM api.{LAYER} WHERE ST_Intersects(geom, "
                               "ST_MakeEnvelope(:a, :b, :c, :d, 9215))",
                       a=box[0], b=box[1], c=box[2], d=box[3])
    assert expected > 10
    result = provider().query(bbox=list(box), limit=10000, skip_geometry=True)
    assert result["numberMatched"] == result["numberReturned"] == expected
    with_heights = provider().query(bbox=[box[0], box[1], 0, box[2], box[3], 100], resulttype="hits")
    assert with_heights["numberMatched"] == expected  # 6 numbers: heights ignored
    for bad in ([float("inf"), 1, 2, 3], [3, 1, 2, 3], [1, 2, 3], ["a", 1, 2, 3]):
        with pytest.raises(ProviderInvalidQueryError, match="bbox"):
            provider().query(bbox=bad)


@pytest.fixture(scope="module")
def stored(engine):
    """The first 20 parcels' stored EPSG:9215 coordinates, by id."""
    import shapely

    rows = sql(engine, f"SELECT id, ST_AsBinary(geom) AS wkb FROM api.{LAYER} ORDER BY id LIMIT 20")
    return {r.id: shapely.get_coordinates(shapely.from_wkb(bytes(r.wkb))) for r in rows}


def _coordinates(feature) -> np.ndarray:
    import shapely.geometry

    return shapely.get_coordinates(shapely.geometry.shape(feature["geometry"]))


def test_storage_crs_output_is_exactly_the_stored_geometry(stored):
    # pygeoapi passes no transform spec when crs= is the storage CRS
    assert spec(EPSG.format(9215)) is None
    result = provider().query(limit=20, crs_transform_spec=None)
    for feature in result["features"]:
        assert np.array_equal(_coordinates(feature), stored[feature["id"]])
        assert "crs" not in feature["geometry"]


def test_crs84_output_matches_pyproj_with_epsg_6960_within_a_centimetre(stored):
    default = spec(None)  # no crs parameter: pygeoapi asks for CRS84
    assert default.target_crs_uri == CRS84
    for uri in (None, CRS84):
        result = provider().query(limit=20, crs_transform_spec=spec(uri))
        for feature in result["features"]:
            got = _coordinates(feature)
            xy = stored[feature["id"]]
            lon, lat = crs.transform_xy(xy[:, 0], xy[:, 1], 9215, 4326)
            east = (got[:, 0] - lon) * 111_320 * np.cos(np.radians(lat))
            north = (got[:, 1] - lat) * 110_574
            assert np.hypot(east, north).max() < 0.01, feature["id"]
            assert 106 < got[0, 0] < 108 and 21 < got[0, 1] < 23  # longitude first


def test_epsg_4326_output_is_latitude_first():
    crs84 = provider().query(limit=5, crs_transform_spec=spec(CRS84))["features"]
    epsg4326 = provider().query(limit=5, crs_transform_spec=spec(EPSG.format(4326)))["features"]
    for a, b in zip(crs84, epsg4326):
        assert np.array_equal(_coordinates(a)[:, ::-1], _coordinates(b))
        assert 21 < _coordinates(b)[0, 0] < 23


def test_web_mercator_output(stored):
    result = provider().query(limit=5, crs_transform_spec=spec(EPSG.format(3857)))
    for feature in result["features"]:
        xy = stored[feature["id"]]
        x, y = crs.transform_xy(xy[:, 0], xy[:, 1], 9215, 3857)
        assert np.abs(_coordinates(feature) - np.column_stack([x, y])).max() < 0.05


def test_get_in_every_crs(stored):
    fid = next(iter(stored))
    assert np.array_equal(_coordinates(provider().get(fid)), stored[fid])  # no spec: storage CRS
    lat_first = _coordinates(provider().get(str(fid), crs_transform_spec=spec(EPSG.format(4326))))
    lon_first = _coordinates(provider().get(str(fid), crs_transform_spec=spec(None)))
    assert np.array_equal(lat_first[:, ::-1], lon_first)


def test_one_item_is_read_through_a_statement_prepared_once_per_connection(stored):
    ids = sorted(stored)[:3]
    before = [provider().get(fid) for fid in ids]
    with connection.api_engine().connect() as conn:  # the pool's connection: what the provider left there
        prepared = conn.execute(sa.text(
            "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'gp_%'")).scalar()
    assert prepared >= 1
    again = [provider().get(str(fid)) for fid in ids]  # same statement, same answers
    assert again == before and [f["id"] for f in again] == ids
    assert before[1]["prev"] == ids[0] and before[1]["next"] == ids[2]
    with pytest.raises(ProviderItemNotFoundError):
        provider().get(2**62)


# --- filters, sorting, selection ---------------------------------------------------------------------------
def test_property_filters_are_typed(engine):
    p = provider()
    for name, value, where in [("map_sheet_no", "3", "map_sheet_no = 3"),
                               ("land_use_code", "ONT", "land_use_code = 'ONT'"),
                               ("commune_code", "06040", "commune_code = '06040'"),
                               ("record_date", "2023-01-20", "record_date = DATE '2023-01-20'")]:
        (expected,), = sql(engine, f"SELECT count(*) FROM api.{LAYER} WHERE {where}")
        assert expected > 0, where
        result = p.query(properties=[(name, value)], limit=10000, skip_geometry=True)
        assert result["numberMatched"] == result["numberReturned"] == expected, where
        assert all(str(f["properties"][name]) == value for f in result["features"])
    both = p.query(properties=[("map_sheet_no", "3"), ("land_use_code", "ONT")], resulttype="hits")
    (expected,), = sql(engine, f"SELECT count(*) FROM api.{LAYER} "
                               "WHERE map_sheet_no = 3 AND land_use_code = 'ONT'")
    assert both["numberMatched"] == expected


@pytest.mark.parametrize("name, value, fragment", [
    ("map_sheet_no", "abc", "map_sheet_no must be compared with an integer, got 'abc'"),
    ("map_sheet_no", "1.5", "map_sheet_no must be compared with an integer"),
    ("area_m2", "big", "area_m2 must be compared with a number"),
    ("record_date", "20/01/2023", "record_date must be compared with a date"),
])
def test_property_filter_values_that_do_not_parse_are_400(name, value, fragment):
    with pytest.raises(ProviderInvalidQueryError) as info:
        provider().query(properties=[(name, value)])
    assert fragment in info.value.message  # the message pygeoapi shows


@pytest.mark.parametrize("name", ["user_name", "user_id_number", "certificate_serial", "no_such_field"])
def test_unknown_and_personal_names_are_refused_without_telling_them_apart(name):
    strict = provider(include_extra_query_parameters=False)
    messages = []
    for call in (lambda: strict.query(properties=[(name, "x")]),
                 lambda: provider().query(sortby=[{"property": name, "order": "+"}]),
                 lambda: provider().query(select_properties=[name]),
                 lambda: provider().query(filterq=parse_text(f"{name} = 'x'"))):
        with pytest.raises(ProviderInvalidQueryError) as info:
            call()
        message = info.value.message
        assert f"unknown property '{name}'" in message
        assert "personal" not in message and "private" not in message
        messages.append(message.replace(name, "NAME"))
    reference = []
    for call in (lambda: strict.query(properties=[("zzz", "x")]),
                 lambda: provider().query(sortby=[{"property": "zzz", "order": "+"}]),
                 lambda: provider().query(select_properties=["zzz"]),
                 lambda: provider().query(filterq=parse_text("zzz = 'x'"))):
        with pytest.raises(ProviderInvalidQueryError) as info:
            call()
        reference.append(info.value.message.replace("zzz", "NAME"))
    assert messages == reference


def test_extra_query_parameters_that_are_not_fields_are_ignored(engine):
    """As pygeoapi ignores unknown parameters; a personal field's name is as unknown (no filter, no hint)."""
    total = provider().query(resulttype="hits")["numberMatched"]
    for name in ("user_name", "no_such_field", "token"):
        assert provider().query(properties=[(name, "x")], resulttype="hits")["numberMatched"] == total


def test_sortby(engine):
    p = provider()
    up = p.query(sortby=[{"property": "area_m2", "order": "+"}], limit=10000, skip_geometry=True)["features"]
    down = p.query(sortby=[{"property": "area_m2", "order": "-"}], limit=10000,
                   skip_geometry=True)["features"]
    keys = [(f["properties"]["area_m2"], f["id"]) for f in up]
    assert keys == sorted(keys)  # ties by id
    areas = [f["properties"]["area_m2"] for f in down]
    assert areas == sorted(areas, reverse=True)
    two = p.query(sortby=[{"property": "land_use_code", "order": "+"}, {"property": "area_m2", "order": "-"}],
                  limit=10000, skip_geometry=True)["features"]
    keys = [(f["properties"]["land_use_code"] or "", -f["properties"]["area_m2"], f["id"]) for f in two]
    assert keys == sorted(keys)


def test_select_properties_and_skip_geometry():
    result = provider().query(limit=3, select_properties=["parcel_no", "area_m2"], skip_geometry=True)
    for feature in result["features"]:
        assert set(feature["properties"]) == {"parcel_no", "area_m2"}
        assert feature["geometry"] is None and feature["type"] == "Feature" and isinstance(feature["id"], int)
    full = provider().query(limit=1)["features"][0]
    assert list(full["properties"]) == [f.name for f in get_layer(LAYER).public_fields]
    assert full["geometry"]["type"] == "MultiPolygon"


def test_cql_filters_through_the_provider(engine):
    (expected,), = sql(engine, f"SELECT count(*) FROM api.{LAYER} "
                               "WHERE land_use_code = 'ONT' AND area_m2 > 500")
    result = provider().query(filterq=parse_text("land_use_code = 'ONT' AND area_m2 > 500"), limit=5)
    assert result["numberMatched"] == expected > 5 and result["numberReturned"] == 5
    with pytest.raises(ProviderInvalidQueryError, match="filter: map_sheet_no must be compared with an int"):
        provider().query(filterq=parse_text("map_sheet_no = 'abc'"))


def test_filtered_counts_are_cached_per_run_and_inferred_from_short_pages(engine):
    features._COUNTS.clear()
    p = provider()
    first = p.query(filterq=parse_text("map_sheet_no > 1"), limit=10)
    assert len(features._COUNTS.items) == 1
    again = p.query(filterq=parse_text("map_sheet_no > 1"), limit=10, offset=10)
    assert again["numberMatched"] == first["numberMatched"] and len(features._COUNTS.items) == 1
    short = p.query(filterq=parse_text("map_sheet_no = 1"), limit=10000, skip_geometry=True)
    assert short["numberMatched"] == short["numberReturned"] and len(features._COUNTS.items) == 1


def test_a_count_the_planner_expects_to_be_large_is_left_out_and_not_retried(engine, monkeypatch):
    features._COUNTS.clear()
    monkeypatch.setattr(features, "COUNT_ESTIMATE_LIMIT", 0)  # on the sample every filter is "large" now
    p = provider()
    page = p.query(filterq=parse_text("map_sheet_no > 1"), limit=10)
    assert "numberMatched" not in page and page["numberReturned"] == 10
    assert list(features._COUNTS.items.values()) == [features.UNCOUNTED]
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        assert "numberMatched" not in p.query(filterq=parse_text("map_sheet_no > 1"), limit=10, offset=10)
        assert len(statements) == 1 and "EXPLAIN" not in statements[0]  # the page only: no second estimate
        # resulttype=hits asks for the number itself: it is counted, whatever the estimate
        hits = p.query(filterq=parse_text("map_sheet_no > 1"), resulttype="hits")["numberMatched"]
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert hits == sql(engine, f"SELECT count(*) FROM api.{LAYER} WHERE map_sheet_no > 1")[0][0]


def test_a_slow_count_is_left_out(engine):
    p = provider()
    with p._connection() as c:
        assert p._count(c, "(SELECT pg_sleep(1) AS x) AS slow", "TRUE", {}, quick=True) is None
        assert p._count(c, f"api.{LAYER}", "map_sheet_no = :m", {"m": 3}, quick=True) > 0


def test_bad_paging_values_are_400():
    for kwargs in ({"offset": -1}, {"limit": 0}, {"offset": "x"}, {"resulttype": "everything"}):
        with pytest.raises(ProviderInvalidQueryError):
            provider().query(**kwargs)


# --- one feature -------------------------------------------------------------------------------------------
def test_get_by_id(engine):
    ids = [r.id for r in sql(engine, f"SELECT id FROM api.{LAYER} ORDER BY id LIMIT 3")]
    feature = provider().get(str(ids[1]))
    (row,) = sql(engine, f"SELECT parcel_no, area_m2 FROM api.{LAYER} WHERE id = :i", i=ids[1])
    assert feature["id"] == ids[1] and feature["properties"]["parcel_no"] == row.parcel_no
    assert feature["prev"] == ids[0] and feature["next"] == ids[2]  # pygeoapi's HTML prev/next item links
    assert "prev" not in provider().get(ids[0])
    assert list(feature["properties"]) == [f.name for f in get_layer(LAYER).public_fields]


@pytest.mark.parametrize("identifier", ["abc", "999999999", "1.5", "", "1' OR '1'='1", "-1",
                                        "99999999999999999999999", None, "1;DROP TABLE x"])
def test_unknown_ids_are_404(identifier):
    with pytest.raises(ProviderItemNotFoundError) as info:
        provider().get(identifier)
    assert info.value.message.startswith("no feature")


# --- datetime ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["garbage", "2024-13-01", "2025-01-01/2024-01-01", "..",
                                   "2024-01-01/2024-02-01/x", "2024-01-01T25:00:00Z", "01/02/2024"])
def test_invalid_datetimes_are_400(value):
    with pytest.raises(ProviderInvalidQueryError, match="datetime"):
        provider().query(datetime_=value)


def test_datetime_on_the_sample(engine):
    """The sample was loaded once: as of now all features are there, as of 2000 none, in "2000/..": all."""
    total = provider().query(resulttype="hits")["numberMatched"]
    now = provider().query(datetime_=datetime.now().astimezone().isoformat(), limit=2)
    assert now["numberMatched"] == total
    assert now["features"][0]["version"] == 1 and now["features"][0]["time"]["interval"][1] == ".."
    assert provider().query(datetime_="2000-01-01", resulttype="hits")["numberMatched"] == 0
    assert provider().query(datetime_="../..", resulttype="hits")["numberMatched"] == total
    assert provider().query(datetime_="2000-01-01T00:00:00Z/..", resulttype="hits")["numberMatched"] == total


AS_OF_SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from gisplatform.db.bootstrap import init_database
    from gisplatform.etl.jobs import one_off_job
    from gisplatform.etl.runner import run_job
    from tests.builders import parcel, parcels, write_parcels

    tmp = Path(sys.argv[1])
    init_database()
    load = lambda path: run_job(one_off_job("cadastral_parcels", path, None, "auto", "full"))
    first = load(write_parcels(tmp / "a.gpkg", parcels(3)))
    changed = parcels(3)
    changed[1] = parcel(1, MDSD="CLN")
    second = load(write_parcels(tmp / "b.gpkg", changed))
    print(json.dumps([first.status, first.inserted, second.status, second.updated]))
""")


@pytest.fixture(scope="module")
def history_database(database_url, tmp_path_factory):
    """A scratch database of our own: three parcels loaded, then one of them changed (in a subprocess, so the
    process-wide settings the other tests use are not touched)."""
    url = database_url.set(database=f"gisplatform_test_asof_{os.getpid()}")
    admin = psycopg2.connect(db_engine.libpq_dsn(url.set(database="postgres")))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{url.database}"')
    env = {**os.environ, "GISPLATFORM_DATABASE_URL": url.render_as_string(hide_password=False)}
    result = subprocess.run([sys.executable, "-c", AS_OF_SCRIPT, str(tmp_path_factory.mktemp("asof"))],
                            env=env, cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["succeeded", 3, "succeeded", 1]
    try:
        yield url
    finally:
        connection.reset()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        admin.close()


def test_as_of_returns_each_feature_as_it_stood(history_database):
    with api_database(history_database) as eng:
        versions = sql(eng, "SELECT id, version, version_start, version_end, land_use_codes "
                            "FROM api.cadastral_parcels_versions WHERE parcel_no = '2' ORDER BY version")
        assert [(v.version, v.land_use_codes) for v in versions] == [(1, "ONT+CLN"), (2, "CLN")]
        old, new = versions
        assert old.version_end == new.version_start
        between = old.version_start + (new.version_start - old.version_start) / 2
        p = provider()
        parcel_2 = [("parcel_no", "2")]

        live = p.query(properties=parcel_2)
        assert [f["properties"]["land_use_codes"] for f in live["features"]] == ["CLN"]

        then = p.query(properties=parcel_2, datetime_=between.isoformat())
        (feature,) = then["features"]
        assert feature["id"] == old.id and feature["properties"]["land_use_codes"] == "ONT+CLN"
        assert feature["version"] == 1 and feature["time"]["interval"][1] != ".."
        assert p.query(datetime_=between.isoformat(), resulttype="hits")["numberMatched"] == 3

        after = p.query(properties=parcel_2, datetime_=(new.version_start + timedelta(seconds=1)).isoformat())
        assert [f["properties"]["land_use_codes"] for f in after["features"]] == ["CLN"]
        before = (old.version_start - timedelta(seconds=1)).isoformat()
        assert p.query(datetime_=before, resulttype="hits")["numberMatched"] == 0

        # an interval: every version valid at some time in it, each with its validity
        both = p.query(properties=parcel_2, datetime_=f"{before}/..")
        assert [(f["version"], f["properties"]["land_use_codes"]) for f in both["features"]] == \
            [(1, "ONT+CLN"), (2, "CLN")]
        assert both["features"][1]["time"]["interval"][1] == ".."
        assert p.query(datetime_=f"{before}/..", resulttype="hits")["numberMatched"] == 4
        assert p.query(datetime_=f"../{between.isoformat()}", resulttype="hits")["numberMatched"] == 3

        # the version time is queryable in CQL2 too
        assert p.query(filterq=parse_text("updated T_AFTER TIMESTAMP('{}')".format(
            between.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))), resulttype="hits")["numberMatched"] == 1


# --- through pygeoapi --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pygeoapi_api(engine):
    from pygeoapi.api import API

    config = {
        "server": {"url": "http://example.org/ogc", "mimetype": "application/json; charset=UTF-8",
                   "encoding": "utf-8", "languages": ["en"], "pretty_print": False,
                   "limits": {"default_items": 10, "max_items": 1000},
                   "map": {"url": "x", "attribution": "y"}},
        "logging": {"level": "ERROR"},
        "metadata": {"identification": {"title": "t", "description": "d", "keywords": [],
                                        "terms_of_service": "", "url": "x"},
                     "license": {"name": "x", "url": "x"}, "provider": {"name": "x", "url": "x"},
                     "contact": {"name": "x"}},
        "resources": {"parcels": {"type": "collection", "title": "Parcels", "description": "d",
                                  "keywords": [],
                                  "extents": {"spatial": {"bbox": [106, 21, 108, 23], "crs": CRS84}},
                                  "providers": [definition()]}},
    }
    return API(config, {})


def items(api, query: str):
    from werkzeug.test import EnvironBuilder

    from pygeoapi.api import APIRequest
    from pygeoapi.api.itemtypes import get_collection_items

    request = EnvironBuilder(path="/ogc/collections/parcels/items", query_string=query).get_request()
    headers, status, body = get_collection_items(api, APIRequest.from_flask(request, api.locales), "parcels")
    return headers, status, body


def _next(doc):
    links = [link for link in doc.get("links", []) if link["rel"] == "next"]
    return links[0]["href"] if links else None


@pytest.mark.parametrize("query, where", [
    ("f=json&limit=1000", "TRUE"),
    ("limit=700&filter=map_sheet_no>1&skipGeometry=true", "map_sheet_no > 1"),
    ("f=json&limit=400&bbox=106.4,22.2,106.6,22.3&crs=http://www.opengis.net/def/crs/EPSG/0/9215", None),
])
def test_following_next_links_returns_every_feature_once(engine, pygeoapi_api, query, where):
    headers, status, body = items(pygeoapi_api, query)
    assert status == 200, body
    doc = json.loads(body)
    ids = [f["id"] for f in doc["features"]]
    total = doc["numberMatched"]
    pages = 1
    href = _next(doc)
    while href:
        assert href.startswith("http://example.org/ogc/collections/parcels/items?")
        assert "after=" in href and "offset=" in href
        for part in query.split("&"):  # every other parameter is kept
            assert part.split("=")[0] in href
        status, body = items(pygeoapi_api, href.split("?", 1)[1])[1:]
        assert status == 200, body
        doc = json.loads(body)
        ids += [f["id"] for f in doc["features"]]
        pages += 1
        href = _next(doc)
    assert len(ids) == len(set(ids)) == total
    if where:
        expected = [r.id for r in sql(engine, f"SELECT id FROM api.{LAYER} WHERE {where} ORDER BY id")]
        assert ids == expected and pages > 1


def test_pygeoapi_requests_get_the_provider_links_and_errors(pygeoapi_api):
    headers, status, body = items(pygeoapi_api, "f=json&limit=5&offset=10")
    doc = json.loads(body)
    rels = [link["rel"] for link in doc["links"]]
    assert rels.count("next") == 1 and rels.count("prev") == 1  # ours: pygeoapi adds none of its own
    assert "offset=15&after=" in _next(doc) and "limit=5" in _next(doc)
    assert headers["Content-Crs"] == f"<{CRS84}>"
    html = items(pygeoapi_api, "f=html&limit=5&offset=10")
    assert html[1] == 200 and "after=" not in html[2]  # pages for people keep pygeoapi's offset links
    status, body = items(pygeoapi_api, "f=json&map_sheet_no=abc")[1:]
    assert status == 400 and "map_sheet_no must be compared with an integer" in body
    status, body = items(pygeoapi_api, "f=json&filter=user_name%3D'x'")[1:]
    assert status == 400 and "unknown property 'user_name'" in body
    status, body = items(pygeoapi_api, "f=json&datetime=yesterday")[1:]
    assert status == 400 and "datetime" in body


def test_bbox_literals_in_filters_follow_filter_crs(engine, pygeoapi_api):
    box = (419000.0, 2461500.0, 421000.0, 2463000.0)
    (expected,), = sql(engine, f"SELECT count(*) FROM api.{LAYER} WHERE ST_Intersects(geom, "
                               "ST_MakeEnvelope(:a, :b, :c, :d, 9215))",
                       a=box[0], b=box[1], c=box[2], d=box[3])
    query = ("f=json&limit=1&filter=S_INTERSECTS(geometry,BBOX({},{},{},{}))&filter-crs={}"
             .format(*box, EPSG.format(9215)))
    status, body = items(pygeoapi_api, query)[1:]
    assert status == 200, body
    assert json.loads(body)["numberMatched"] == expected > 10
