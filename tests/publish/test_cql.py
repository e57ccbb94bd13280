"""CQL2 → SQL (gisplatform.publish.cql): every translated filter counts the same rows as hand-written SQL on
the published sample; anything unsupported or not public is a ValueError with a message for the user."""
from __future__ import annotations

import json
import os
from datetime import date

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from pygeofilter.parsers.cql2_json import parse as parse_json
from pygeofilter.parsers.cql2_text import parse as parse_text

from gisplatform import crs
from gisplatform.layers import get_layer
from gisplatform.publish import connection
from gisplatform.publish.cql import CONFORMANCE_CLASSES, to_sql

LAYER = "cadastral_parcels"
FIELDS = {f.name: f for f in get_layer(LAYER).public_fields}
TEMPORAL = {"updated": '"updated"'}
EPSG_9215 = "http://www.opengis.net/def/crs/EPSG/0/9215"


@pytest.fixture(scope="module")
def engine(published_database):
    """api_engine() as the read-only API role on the published sample (the environment restored after)."""
    before = os.environ.get("GISPLATFORM_API_DATABASE_URL")
    url = published_database.set(username="gisplatform_api", password=None)
    os.environ["GISPLATFORM_API_DATABASE_URL"] = url.render_as_string(hide_password=False)
    connection.reset()
    yield connection.api_engine()
    connection.reset()
    if before is None:
        os.environ.pop("GISPLATFORM_API_DATABASE_URL", None)
    else:
        os.environ["GISPLATFORM_API_DATABASE_URL"] = before


def count(engine, where: str, params: dict | None = None) -> int:
    with engine.connect() as c:
        return c.execute(sa.text(f"SELECT count(*) FROM api.{LAYER} WHERE {where}"), params or {}).scalar()


def cql_count(engine, node, **options) -> int:
    if isinstance(node, str):
        node = parse_text(node)
    sql, params = to_sql(node, FIELDS, "geom", 9215, temporal_columns=TEMPORAL, **options)
    return count(engine, sql, params)


@pytest.fixture(scope="module")
def parcel(engine):
    """One parcel (id, WKT in EPSG:9215, a point inside it) to build spatial literals from."""
    with engine.connect() as c:
        row = c.execute(sa.text(f"SELECT id, ST_AsText(geom) AS wkt, "
                                f"ST_AsText(ST_PointOnSurface(geom)) AS inside "
                                f"FROM api.{LAYER} ORDER BY id LIMIT 1")).one()
    return row


# --- comparisons, logic ------------------------------------------------------------------------------------
COMPARISONS = [
    ("map_sheet_no = 3", "map_sheet_no = 3"),
    ("map_sheet_no <> 3", "map_sheet_no <> 3"),
    ("map_sheet_no < 3", "map_sheet_no < 3"),
    ("map_sheet_no <= 3", "map_sheet_no <= 3"),
    ("map_sheet_no > 3", "map_sheet_no > 3"),
    ("map_sheet_no >= 3", "map_sheet_no >= 3"),
    ("3 < map_sheet_no", "map_sheet_no > 3"),  # literal on the left
    ("area_m2 > 800.5", "area_m2 > 800.5"),
    ("area_m2 BETWEEN 500 AND 800", "area_m2 BETWEEN 500 AND 800"),
    ("area_m2 NOT BETWEEN 500 AND 800", "area_m2 NOT BETWEEN 500 AND 800"),
    ("land_use_code IN ('ONT', 'CLN')", "land_use_code IN ('ONT', 'CLN')"),
    ("land_use_code NOT IN ('ONT', 'CLN')", "land_use_code NOT IN ('ONT', 'CLN')"),
    ("map_sheet_no IN (1, 2)", "map_sheet_no IN (1, 2)"),
    ("organisation_name IS NULL", "organisation_name IS NULL"),
    ("organisation_name IS NOT NULL", "organisation_name IS NOT NULL"),
    ("commune_code = '06040'", "commune_code = '06040'"),
    ("parcel_address LIKE 'Thôn Nà%'", "parcel_address LIKE 'Thôn Nà%'"),
    ("parcel_address NOT LIKE 'Thôn Nà%'", "parcel_address NOT LIKE 'Thôn Nà%'"),
    ("parcel_no LIKE '1_'", "parcel_no LIKE '1_'"),  # CQL2's single-character wildcard
    ("CASEI(parcel_address) LIKE CASEI('THÔN NÀ%')", "lower(parcel_address) LIKE lower('THÔN NÀ%')"),
    ("CASEI(land_use_code) = CASEI('ont')", "land_use_code = 'ONT'"),
    ("land_use_code = 'ONT' AND area_m2 > 500", "land_use_code = 'ONT' AND area_m2 > 500"),
    ("land_use_code = 'ONT' OR map_sheet_no = 2", "land_use_code = 'ONT' OR map_sheet_no = 2"),
    ("NOT (land_use_code = 'ONT')", "NOT (land_use_code = 'ONT')"),
    ("map_sheet_no = 1 AND (land_use_code = 'ONT' OR land_use_code = 'LUC')",
     "map_sheet_no = 1 AND (land_use_code = 'ONT' OR land_use_code = 'LUC')"),
    ("legal_area_m2 = area_m2", "legal_area_m2 = area_m2"),  # property against property
    ("area_m2 > map_sheet_no", "area_m2 > map_sheet_no"),
    ("record_date > DATE('2023-01-01')", "record_date > DATE '2023-01-01'"),
    ("record_date = DATE('2023-01-20')", "record_date = DATE '2023-01-20'"),
    ("record_date >= TIMESTAMP('2023-01-01T00:00:00Z')", "record_date >= DATE '2023-01-01'"),
    ("record_date BETWEEN DATE('2022-01-01') AND DATE('2022-12-31')",
     "record_date BETWEEN DATE '2022-01-01' AND DATE '2022-12-31'"),
    ("INCLUDE", "TRUE"),
    ("EXCLUDE", "FALSE"),
]


@pytest.mark.parametrize("text, sql", COMPARISONS, ids=[c[0] for c in COMPARISONS])
def test_comparison_counts_like_hand_written_sql(engine, text, sql):
    assert cql_count(engine, text) == count(engine, sql)


def test_the_sample_makes_the_comparisons_meaningful(engine):
    """The filters above select some parcels but not all (else equal counts would prove little)."""
    total = count(engine, "TRUE")
    for text in ("map_sheet_no = 3", "parcel_address LIKE 'Thôn Nà%'", "organisation_name IS NOT NULL",
                 "record_date > DATE('2023-01-01')", "CASEI(parcel_address) LIKE CASEI('THÔN NÀ%')",
                 "legal_area_m2 = area_m2", "parcel_no LIKE '1_'"):
        assert 0 < cql_count(engine, text) < total, text
    assert cql_count(engine, "parcel_address LIKE 'THÔN NÀ%'") == 0  # LIKE is case-sensitive


# --- temporal ----------------------------------------------------------------------------------------------
TEMPORAL_CASES = [
    ("record_date T_AFTER DATE('2023-01-01')", "record_date > DATE '2023-01-01'"),
    ("record_date T_BEFORE DATE('2023-01-01')", "record_date < DATE '2023-01-01'"),
    ("record_date T_EQUALS DATE('2023-01-20')", "record_date = DATE '2023-01-20'"),
    ("record_date T_AFTER TIMESTAMP('2022-12-31T12:00:00Z')", "record_date >= DATE '2023-01-01'"),
    ("record_date T_DURING INTERVAL('2022-01-01T00:00:00Z', '2022-12-31T00:00:00Z')",
     "record_date > DATE '2022-01-01' AND record_date < DATE '2022-12-31'"),
    ("record_date T_INTERSECTS INTERVAL('2022-01-01T00:00:00Z', '2022-12-31T00:00:00Z')",
     "record_date BETWEEN DATE '2022-01-01' AND DATE '2022-12-31'"),
    ("updated T_BEFORE TIMESTAMP('2999-01-01T00:00:00Z')", "TRUE"),
    ("updated T_AFTER TIMESTAMP('2999-01-01T00:00:00Z')", "FALSE"),
    ("updated T_AFTER DATE('2000-01-01')", "updated > TIMESTAMPTZ '2000-01-01 00:00:00+00'"),
]


@pytest.mark.parametrize("text, sql", TEMPORAL_CASES, ids=[c[0] for c in TEMPORAL_CASES])
def test_temporal_predicates_count_like_hand_written_sql(engine, text, sql):
    assert cql_count(engine, text) == count(engine, sql)


def test_temporal_intervals_are_meaningful_and_open_ends_work(engine):
    total = count(engine, "TRUE")
    during = cql_count(engine, "record_date T_DURING "
                               "INTERVAL('2022-01-01T00:00:00Z', '2022-12-31T00:00:00Z')")
    assert 0 < during < total
    open_end = parse_json({"op": "t_intersects",
                           "args": [{"property": "record_date"}, {"interval": ["2023-01-01", ".."]}]})
    assert cql_count(engine, open_end) == count(engine, "record_date >= DATE '2023-01-01'")
    open_start = parse_json({"op": "t_before",
                             "args": [{"property": "record_date"}, {"interval": ["..", "2023-01-01"]}]})
    assert cql_count(engine, open_start) == 0  # nothing lies before an interval open to the past


# --- spatial -----------------------------------------------------------------------------------------------
SPATIAL = ["S_INTERSECTS", "S_WITHIN", "S_CONTAINS", "S_DISJOINT", "S_EQUALS", "S_TOUCHES", "S_CROSSES",
           "S_OVERLAPS"]


@pytest.mark.parametrize("function", SPATIAL)
def test_spatial_functions_against_a_parcel(engine, parcel, function):
    st = "ST_" + function[2:].title()
    expected = count(engine, f"{st}(geom, ST_GeomFromText(:wkt, 9215))", {"wkt": parcel.wkt})
    assert cql_count(engine, f"{function}(geometry, {parcel.wkt})") == expected
    assert cql_count(engine, f"{function}(geom, {parcel.wkt})") == expected  # the real column name works too
    if function in ("S_INTERSECTS", "S_EQUALS", "S_WITHIN", "S_CONTAINS"):
        assert expected >= 1  # at least the parcel itself


def test_spatial_functions_with_lines_and_points(engine, parcel):
    shape = shapely.from_wkt(parcel.wkt)
    x0, y0, x1, y1 = shape.bounds
    line = f"LINESTRING({x0 - 50} {(y0 + y1) / 2}, {x1 + 50} {(y0 + y1) / 2})"
    crosses = count(engine, "ST_Crosses(geom, ST_GeomFromText(:w, 9215))", {"w": line})
    assert crosses >= 1
    assert cql_count(engine, f"S_CROSSES(geometry, {line})") == crosses
    assert cql_count(engine, f"S_INTERSECTS({parcel.inside}, geometry)") == 1  # literal first
    inside = shapely.geometry.mapping(shapely.from_wkt(parcel.inside))
    point = parse_json({"op": "s_intersects", "args": [{"property": "geometry"}, inside]})
    assert cql_count(engine, point) == 1


def test_bbox_literal_in_the_storage_crs(engine, parcel):
    x0, y0, x1, y1 = shapely.from_wkt(parcel.wkt).buffer(300).bounds
    expected = count(engine, "ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 9215))",
                     {"a": x0, "b": y0, "c": x1, "d": y1})
    assert expected > 1
    literal = f"S_INTERSECTS(geometry, BBOX({x0}, {y0}, {x1}, {y1}))"
    assert cql_count(engine, literal, envelope_crs=EPSG_9215) == expected
    assert cql_count(engine, f"BBOX(geometry, {x0}, {y0}, {x1}, {y1})", envelope_crs=EPSG_9215) == expected
    as_json = parse_json({"op": "s_intersects",
                          "args": [{"property": "geometry"}, {"bbox": [x0, y0, x1, y1]}]})
    assert cql_count(engine, as_json, envelope_crs=EPSG_9215) == expected


def test_bbox_literal_in_crs84_is_reprojected_with_the_vn2000_datum_shift(engine, parcel):
    """BBOX(lon/lat) is in filter-crs (CRS84 by default) and pygeoapi leaves it alone: the translator
    reprojects it with EPSG:6960, so it selects what the same box reprojected by gisplatform.crs selects
    (a box without the datum shift would be ~200 m off and select other parcels)."""
    cx, cy = shapely.from_wkt(parcel.inside).coords[0]
    lon, lat = crs.transform_xy(np.array([cx]), np.array([cy]), 9215, 4326)
    box = (lon[0] - 0.004, lat[0] - 0.004, lon[0] + 0.004, lat[0] + 0.004)
    ring = shapely.segmentize(shapely.box(*box), 0.0005)
    xs, ys = crs.transform_xy(*np.asarray(ring.exterior.coords).T, 4326, 9215)
    expected = count(engine, "ST_Intersects(geom, ST_GeomFromText(:w, 9215))",
                     {"w": shapely.Polygon(np.column_stack([xs, ys])).wkt})
    assert expected > 1
    assert cql_count(engine, "S_INTERSECTS(geometry, BBOX({}, {}, {}, {}))".format(*box)) == expected
    shifted = count(engine, "ST_Intersects(geom, ST_Translate(ST_GeomFromText(:w, 9215), 200, 0))",
                    {"w": shapely.Polygon(np.column_stack([xs, ys])).wkt})
    assert shifted != expected  # the check above would notice a missing datum shift


def test_geometry_literals_pass_through_pygeoapis_reprojection(engine, parcel):
    """pygeoapi's modify_pygeofilter reprojects POINT(lon lat) from filter-crs to EPSG:9215 for us."""
    from pygeoapi.crs import modify_pygeofilter

    cx, cy = shapely.from_wkt(parcel.inside).coords[0]
    lon, lat = crs.transform_xy(np.array([cx]), np.array([cy]), 9215, 4326)
    node = modify_pygeofilter(parse_text(f"S_INTERSECTS(geometry, POINT({lon[0]} {lat[0]}))"),
                              filter_crs_uri="http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                              storage_crs_uri=EPSG_9215, geometry_column_name=None)
    sql, params = to_sql(node, FIELDS, "geom", 9215)
    (x, y), = shapely.get_coordinates(shapely.from_wkb(next(iter(params.values()))))
    assert abs(x - cx) < 0.01 and abs(y - cy) < 0.01  # now in metres, EPSG:9215
    assert count(engine, sql, params) == 1
    ewkt = parse_text(f"S_INTERSECTS(geometry, SRID=4326;POINT({lat[0]} {lon[0]}))")  # EPSG:4326 is lat/lon
    assert cql_count(engine, ewkt) == 1  # a literal with its own CRS, not reprojected by pygeoapi: we do it


# --- CQL2 JSON ---------------------------------------------------------------------------------------------
JSON_CASES = [
    ({"op": "and", "args": [{"op": "=", "args": [{"property": "land_use_code"}, "ONT"]},
                            {"op": ">", "args": [{"property": "area_m2"}, 500]}]},
     "land_use_code = 'ONT' AND area_m2 > 500"),
    ({"op": "in", "args": [{"property": "land_use_code"}, ["ONT", "CLN"]]},
     "land_use_code IN ('ONT', 'CLN')"),
    ({"op": "between", "args": [{"property": "area_m2"}, [500, 800]]}, "area_m2 BETWEEN 500 AND 800"),
    ({"op": "like", "args": [{"property": "parcel_address"}, "Thôn Nà%"]}, "parcel_address LIKE 'Thôn Nà%'"),
    ({"op": "like", "args": [{"op": "casei", "args": [{"property": "parcel_address"}]},
                             {"op": "casei", "args": ["THÔN NÀ%"]}]},
     "lower(parcel_address) LIKE lower('THÔN NÀ%')"),
    ({"op": "not", "args": [{"op": "isNull", "args": [{"property": "organisation_name"}]}]},
     "organisation_name IS NOT NULL"),
    ({"op": "or", "args": [{"op": "=", "args": [{"property": "map_sheet_no"}, 1]},
                           {"op": "<", "args": [{"property": "record_date"}, {"date": "2021-01-01"}]}]},
     "map_sheet_no = 1 OR record_date < DATE '2021-01-01'"),
    ({"op": "t_after", "args": [{"property": "record_date"}, {"timestamp": "2023-01-01T00:00:00Z"}]},
     "record_date > DATE '2023-01-01'"),
]


@pytest.mark.parametrize("expression, sql", JSON_CASES, ids=[json.dumps(c[0])[:60] for c in JSON_CASES])
def test_cql2_json_counts_like_hand_written_sql(engine, expression, sql):
    assert cql_count(engine, parse_json(expression)) == count(engine, sql)


# --- safety and errors -------------------------------------------------------------------------------------
def test_values_are_bound_never_written_into_the_sql(engine):
    node = parse_text("parcel_no = 'x; DROP TABLE api.cadastral_parcels --' OR map_sheet_no = 7")
    sql, params = to_sql(node, FIELDS, "geom", 9215)
    assert "DROP" not in sql and "7" not in sql
    assert set(params.values()) == {"x; DROP TABLE api.cadastral_parcels --", 7}
    assert count(engine, sql, params) == count(engine, "map_sheet_no = 7")


def test_literals_are_typed_after_the_field(engine):
    _, params = to_sql(parse_text("map_sheet_no = '3' AND area_m2 = '1.5' AND record_date = '2023-01-20'"),
                       FIELDS, "geom", 9215)
    assert sorted(map(repr, params.values())) == sorted(map(repr, [3, 1.5, date(2023, 1, 20)]))


def _error(text_or_node, **options) -> str:
    node = parse_text(text_or_node) if isinstance(text_or_node, str) else text_or_node
    with pytest.raises(ValueError) as info:
        to_sql(node, FIELDS, "geom", 9215, temporal_columns=TEMPORAL, **options)
    return str(info.value)


@pytest.mark.parametrize("name", ["user_name", "user_id_number", "no_such_field", "fid", "source_raw"])
def test_unknown_and_personal_names_get_the_same_answer(name):
    message = _error(f"{name} = 'x'")
    assert message.startswith(f"unknown property '{name}'; queryable properties: geometry, parcel_id")
    assert message.replace(name, "NAME") == _error("zzz_field = 'x'").replace("zzz_field", "NAME")
    assert not any(f.name in message for f in get_layer(LAYER).personal_fields if f.name != name)
    for text in (f"{name} IS NULL", f"{name} LIKE 'a%'", f"CASEI({name}) = 'a'", f"{name} IN ('a')",
                 f"{name} T_AFTER DATE('2020-01-01')"):
        assert _error(text).startswith(f"unknown property '{name}'"), text


@pytest.mark.parametrize("text, fragment", [
    ("map_sheet_no = 'abc'", "map_sheet_no must be compared with an integer"),
    ("map_sheet_no = 1.5", "map_sheet_no must be compared with an integer"),
    ("map_sheet_no = TRUE", "not a boolean"),
    ("commune_code = 6040", "commune_code is text: quote the value"),
    ("area_m2 = 'big'", "area_m2 must be compared with a number"),
    ("record_date = 'yesterday'", "record_date must be compared with a date"),
    ("record_date = DATE('2023-01-01') AND map_sheet_no LIKE '1%'", "LIKE needs a text property"),
    ("map_sheet_no + 1 > 2", "arithmetic"),
    ("ACCENTI(parcel_address) = ACCENTI('x')", "ACCENTI"),
    ("CASEI(map_sheet_no) = CASEI('1')", "CASEI needs a text property"),
    ("S_INTERSECTS(geometry, geometry)", "geometry literal"),
    ("S_INTERSECTS(parcel_no, POINT(1 1))", "geometry"),
    ("S_INTERSECTS(geometry, POLYGON((0 0, 10 10, 10 0, 0 10, 0 0)))", "not valid"),
    ("geometry = 'x'", "S_INTERSECTS"),
    ("map_sheet_no T_AFTER DATE('2020-01-01')", "temporal predicates need a date property"),
    ("record_date T_DURING INTERVAL('2023-01-01T00:00:00Z', '2022-01-01T00:00:00Z')", "must start before"),
    ("RELATE(geometry, POINT(1 1), 'T********')", "not supported"),
    ("S_INTERSECTS(geometry, BBOX(1, 2, 3))", "BBOX takes 4"),
    ("S_INTERSECTS(geometry, BBOX(3, 2, 1, 4))", "min <= max"),
])
def test_unsupported_or_mistyped_filters_say_why(text, fragment):
    assert fragment in _error(text)


def test_bbox_outside_the_crs_cannot_be_reprojected():
    assert "could not be reprojected" in _error("S_INTERSECTS(geometry, BBOX(-200, -100, 200, 100))")


def test_conformance_classes_are_the_ones_qgis_needs_and_no_more():
    spec = "http://www.opengis.net/spec"
    assert {f"{spec}/ogcapi-features-3/1.0/conf/filter", f"{spec}/ogcapi-features-3/1.0/conf/features-filter",
            f"{spec}/cql2/1.0/conf/cql2-text", f"{spec}/cql2/1.0/conf/basic-cql2",
            f"{spec}/cql2/1.0/conf/basic-spatial-functions"} <= set(CONFORMANCE_CLASSES)
    assert len(set(CONFORMANCE_CLASSES)) == len(CONFORMANCE_CLASSES)
    # not translated (or not reachable through pygeoapi's GET): must not be claimed
    for missing in ("temporal-functions", "array-functions", "property-property", "arithmetic", "functions",
                    "accent-insensitive-comparison", "cql2-json"):
        assert f"{spec}/cql2/1.0/conf/{missing}" not in CONFORMANCE_CLASSES
