"""The analysis results over HTTP on the published sample: the conflicts collection and the three processes."""
from __future__ import annotations

import io
import json

import openpyxl
import pytest
import sqlalchemy as sa

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def execute(http, api, process: str, inputs: dict, **kwargs):
    return http.post(f"{api}/processes/{process}/execution", json={"inputs": inputs}, timeout=300, **kwargs)


def wait_for_job(http, job: str, timeout: float = 300) -> None:
    """Poll an asynchronous process job until it ends; it must end successfully."""
    import time

    deadline = time.monotonic() + timeout
    while (status := http.get(job, params={"f": "json"}).json()["status"]) in ("accepted", "running"):
        assert time.monotonic() < deadline, f"{job} still {status} after {timeout} s"
        time.sleep(0.5)
    assert status == "successful"


def one(engine, sql: str, **params):
    with engine.connect() as connection:
        return connection.execute(sa.text(sql), params).one()


def test_the_sample_has_conflicts_and_the_collection_serves_them(http, api, published_engine):
    with published_engine.connect() as connection:
        open_count = connection.execute(sa.text("SELECT count(*) FROM analysis.conflicts WHERE resolved_at IS NULL")
                                        ).scalar()
        rules = set(connection.execute(sa.text("SELECT DISTINCT rule_id FROM analysis.conflicts")).scalars())
    assert open_count > 0 and len(rules) >= 3, rules
    page = http.get(f"{api}/collections/conflicts/items", params={"limit": 10000}).json()
    assert page["numberMatched"] == open_count == len(page["features"])
    feature = page["features"][0]
    assert {"rule", "severity", "rule_title", "rule_title_en", "feature_a", "first_seen"} <= set(feature["properties"])
    errors = http.get(f"{api}/collections/conflicts/items",
                      params={"filter": "severity = 'error'", "resulttype": "hits"}).json()
    assert 0 < errors["numberMatched"] <= open_count
    as_of = http.get(f"{api}/collections/conflicts/items", params={"datetime": "2000-01-01T00:00:00Z"}).json()
    assert as_of["features"] == []  # nothing was known then
    assert http.get(f"{api}/collections/conflicts/items", params={"filter": "user_name = 'x'"}).status_code == 400


def test_processes_are_listed(http, api):
    processes = {p["id"] for p in http.get(f"{api}/processes").json()["processes"]}
    assert {"parcel-report", "licence-precheck", "land-statistics"} <= processes
    description = http.get(f"{api}/processes/licence-precheck").json()
    assert {"corners", "geometry", "crs"} <= set(description["inputs"])


def test_parcel_report_over_http(http, api, published_engine):
    parcel_id, commune, sheet, no, area = one(published_engine, """
        SELECT parcel_id, sheet_commune_code, map_sheet_no, parcel_no, ST_Area(geom) FROM api.cadastral_parcels
        WHERE parcel_id IS NOT NULL ORDER BY id LIMIT 1""")
    by_id = execute(http, api, "parcel-report", {"parcel_id": parcel_id})
    assert by_id.status_code == 200, by_id.text
    report = by_id.json()
    assert [p["parcel_id"] for p in report["parcels"]] == [parcel_id]
    assert report["area_m2"] == pytest.approx(area, abs=0.01)
    assert any(layer["layer"] == "admin_units" for layer in report["layers"])
    by_triple = execute(http, api, "parcel-report", {"commune_code": commune, "map_sheet_no": str(sheet),
                                                     "parcel_no": no}).json()
    assert by_triple["parcels"] == report["parcels"]


def test_parcel_report_says_which_planning_zone_and_how_high(http, api, published_engine):
    """The raster layers' zonal statistics (issue 7) in the report of a parcel they cover."""
    parcel_id, lon, lat = one(published_engine, """
        SELECT parcel_id, ST_X(ST_PointOnSurface(geom_wgs84)), ST_Y(ST_PointOnSurface(geom_wgs84))
        FROM api.cadastral_parcels WHERE parcel_id IS NOT NULL AND ST_Area(geom) > 2000
        ORDER BY ST_Distance(geom, ST_Transform(ST_SetSRID(ST_MakePoint(106.7615, 21.8537), 4326), 9215)) LIMIT 1""")
    report = execute(http, api, "parcel-report", {"parcel_id": parcel_id}).json()
    rasters = {r["layer"]: r for r in report["rasters"]}
    assert set(rasters) == {"elevation", "planning_map"}, report["rasters"]
    planning = rasters["planning_map"]
    assert planning["dominant"] == planning["classes"][0]["code"] and planning["classes"][0]["vi"]
    assert sum(c["share"] for c in planning["classes"]) == pytest.approx(1.0, abs=0.01)
    assert 0 < rasters["elevation"]["elevation_min"] <= rasters["elevation"]["elevation_mean"] <= \
        rasters["elevation"]["elevation_max"] < 2000  # metres: Lạng Sơn's karst and valleys
    # the same answer as the zonal-statistics process on that parcel
    zonal = execute(http, api, "zonal-statistics", {"layer": "planning_map", "collection": "cadastral_parcels",
                                                    "ids": [report["parcels"][0]["id"]]}).json()
    [same] = zonal["results"]
    assert same["dominant"] == planning["dominant"] and same["classes"] == planning["classes"]


def test_licence_precheck_over_http_in_two_crs(http, api, published_engine):
    """An existing licence's own area, proposed again, overlaps that licence (R06) whatever CRS it is given in."""
    licence_no, geojson, corners = one(published_engine, """
        SELECT licence_no, ST_AsGeoJSON(geom_wgs84, 9)::json,
               (SELECT json_agg(json_build_array(round(ST_Y(p.geom)::numeric, 3)::text,
                                                 round(ST_X(p.geom)::numeric, 3)::text))
                FROM ST_DumpPoints(ST_ExteriorRing(ST_GeometryN(geom, 1))) p)
        FROM api.mining_licences WHERE status = 'con_hieu_luc' AND ST_NumGeometries(geom) = 1 ORDER BY id LIMIT 1""")
    answers = [execute(http, api, "licence-precheck", {"geometry": geojson}),
               execute(http, api, "licence-precheck", {"corners": corners, "crs": "EPSG:9215"})]
    results = []
    for answer in answers:
        assert answer.status_code == 200, answer.text
        results.append({(c["rule"], c["check"], (c["feature_b"] or {}).get("key")): c["overlap_area_m2"]
                        for c in answer.json()["conflicts"]})
    assert ("R06", "licence_overlap", licence_no) in results[0]
    assert set(results[0]) == set(results[1])


def test_land_statistics_json_and_xlsx(http, api, published_engine):
    answer = execute(http, api, "land-statistics", {})
    assert answer.status_code == 200, answer.text
    table = answer.json()
    natural = dict(published_engine.connect().execute(sa.text(
        "SELECT code, ST_Area(geom) / 10000 FROM api.admin_units WHERE valid_to IS NULL")).all())
    assert {c["code"] for c in table["communes"]} == set(natural)
    parcels_ha = one(published_engine, "SELECT sum(ST_Area(geom)) / 10000 FROM api.cadastral_parcels")[0]
    leaves = sum(r["total"] for r in table["rows"] if r["level"] == 2)
    assert leaves == pytest.approx(parcels_ha, rel=0.01)  # overlapping sample parcels count once per parcel
    for commune in table["communes"]:
        column = sum(r["by_commune"][commune["code"]] for r in table["rows"] if r["level"] == 1)
        assert column == pytest.approx(natural[commune["code"]], abs=0.01)
    some = sorted(c["code"] for c in table["communes"])[:2]
    xlsx = execute(http, api, "land-statistics", {"communes": some, "format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.headers["Content-Type"].startswith(XLSX)
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert [str(c.value)[:5] for c in sheet[3]][5:] == some


@pytest.mark.parametrize("process, inputs, message", [
    ("parcel-report", {}, "exactly one of"),
    ("parcel-report", {"parcel_id": "zzzzzzzzzzzz"}, "no parcel matches"),
    ("parcel-report", {"point": {"type": "Point", "coordinates": [2.35, 48.85]}}, "outside Lạng Sơn"),
    ("parcel-report", {"polygon": {"type": "Polygon", "coordinates": [[[1, 2], [3]]]}}, "GeoJSON"),
    ("licence-precheck", {"corners": [[1, 2], [3, 4], [5, 6]]}, "crs is required"),
    ("licence-precheck", {"corners": "2380800 404490", "crs": "EPSG:9215"}, "list of at least 3"),
    ("licence-precheck", {"geometry": {"type": "Polygon"}, "crs": "EPSG:99999"}, "crs"),
    ("land-statistics", {"communes": ["99999"]}, "no commune 99999"),
    ("land-statistics", {"date": "yesterday"}, "YYYY-MM-DD"),
    ("land-statistics", {"format": "pdf"}, "json or xlsx"),
])
def test_bad_process_input_is_a_400_with_a_reason(http, api, process, inputs, message):
    answer = execute(http, api, process, inputs)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["description"]


def test_malformed_requests_are_400(http, api):
    bad_json = http.post(f"{api}/processes/parcel-report/execution", data=b"{not json",
                         headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400
    assert http.post(f"{api}/processes/no-such-process/execution", json={"inputs": {}}).status_code == 404


def test_large_inputs_can_run_as_a_job(http, api):
    """`Prefer: respond-async`: 201 with the job's address, then its status and results (the whole province)."""
    answer = execute(http, api, "land-statistics", {}, headers={"Prefer": "respond-async"})
    assert answer.status_code == 201, answer.text
    job = answer.headers["Location"]
    wait_for_job(http, job)
    table = http.get(f"{job}/results", params={"f": "json"}).json()
    assert table["rows"][0]["name_en"] == "Total natural area" and table["communes"]


def test_portal_style_draws_the_open_conflicts_from_the_api(http, api_server):
    from gisplatform.portal.style import portal_style

    style = portal_style()
    source = style["sources"]["conflicts"]
    assert source["type"] == "geojson" and source["data"].startswith("ogc/collections/conflicts/items")
    drawn = [layer for layer in style["layers"] if layer.get("source") == "conflicts"]
    assert {layer["type"] for layer in drawn} == {"fill", "line", "circle"}
    described = next(l for l in style["metadata"]["gisplatform:portal"]["layers"] if l["id"] == "conflicts")
    assert described["download"] is False and described["styleLayers"] == [layer["id"] for layer in drawn]
    data = http.get(f"{api_server}/{source['data']}", timeout=60)  # relative to the portal, as the page resolves it
    assert data.status_code == 200 and data.json()["features"]


def test_a_large_polygon_becomes_a_job_unless_the_client_waits(http, api, published_engine):
    (area,) = one(published_engine, """
        SELECT ST_AsGeoJSON(ST_Buffer(ST_Centroid(geom_wgs84), 0.03, 4), 7)::json FROM api.cadastral_parcels
        ORDER BY id LIMIT 1""")  # about 6 km across: over the 25 km² a synchronous report may cover
    answer = execute(http, api, "parcel-report", {"polygon": area})
    assert answer.status_code == 201, answer.text
    job = answer.headers["Location"]
    wait_for_job(http, job)
    report = http.get(f"{job}/results", params={"f": "json"}).json()
    assert report["area_m2"] > 25e6 and report["parcels"]
    waited = execute(http, api, "parcel-report", {"polygon": area}, headers={"Prefer": "wait"})
    assert waited.status_code == 200 and waited.json()["area_m2"] == report["area_m2"]
    small = execute(http, api, "land-statistics", {})  # the sample is small: a whole-province table is quick
    assert small.status_code == 200
