"""The analyses behind the processes, run as the read-only API role on constructed data: licence pre-check in
every CRS, parcel report, land statistics that add up to each commune's area."""
from __future__ import annotations

import datetime as dt
import io

import numpy as np
import openpyxl
import pytest
import shapely
import sqlalchemy as sa

from gisplatform import crs
from gisplatform.analysis import inputs as I
from gisplatform.analysis.precheck import Proposal, precheck
from gisplatform.analysis.report import Subject, parcel_report
from gisplatform.analysis.statistics import land_statistics, to_xlsx
from gisplatform.publish.processes.land_statistics import options_from
from gisplatform.publish.processes.licence_precheck import proposal_from
from gisplatform.publish.processes.parcel_report import subject_from

# shared/domain §3.3: a ~12.07 ha quarry near Hữu Lũng, in EPSG:9215 and EPSG:3405 (X = northing, Y = easting)
QUARRY_9215 = [("1", "2.380.800,00", "404.490,00"), ("2", "2.380.835,00", "404.890,00"),
               ("3", "2.381.135,00", "404.870,00"), ("4", "2.381.100,00", "404.470,00")]
QUARRY_3405 = [("1", "2 380 388.74", "637 549.58"), ("2", "2 380 429.50", "637 948.97"),
               ("3", "2 380 729.12", "637 924.65"), ("4", "2 380 688.37", "637 525.27")]


@pytest.fixture
def api_role(world):
    """A transaction as gisplatform_api, the role the processes run as."""
    with world.engine.connect() as connection:
        with connection.begin():
            connection.execute(sa.text("SET LOCAL ROLE gisplatform_api"))
            yield connection


def quarry_world(world):
    world.add("admin_units", shapely.box(400_000, 2_375_000, 410_000, 2_385_000).wkt, code="06385",
              name="Hữu Lũng", level="xa", valid_from=dt.date(2025, 7, 1))
    world.parcel("1", shapely.box(404_600, 2_380_900, 404_700, 2_381_000).wkt, "RPH", commune_code="06385",
                 sheet_commune_code="06385")  # 1 ha of protection forest inside the quarry
    world.parcel("2", shapely.box(404_850, 2_381_000, 405_000, 2_381_100).wkt, "ONT", commune_code="06385",
                 sheet_commune_code="06385")  # residential land across the east edge
    world.licence("GP-OLD", shapely.box(404_300, 2_380_700, 404_520, 2_380_900).wkt, commune_code="06385",
                  area_ha=4.4)


def corner_rows(table):
    return [{"point": p, "x": x, "y": y} for p, x, y in table]


def geojson_quarry() -> dict:
    x = np.array([float(r[2].replace(".", "").replace(",", ".")) for r in QUARRY_9215])
    y = np.array([float(r[1].replace(".", "").replace(",", ".")) for r in QUARRY_9215])
    lon, lat = crs.transform_xy(x, y, 9215, 4326)
    ring = [[float(a), float(b)] for a, b in zip(lon, lat)]
    return {"type": "Polygon", "coordinates": [ring + ring[:1]]}


def summary(result) -> dict[tuple, float | None]:
    return {(c["rule"], c["check"], (c["feature_b"] or {}).get("key")): c["overlap_area_m2"]
            for c in result["conflicts"]}


def test_precheck_gives_the_same_conflicts_in_every_crs(world, api_role):
    quarry_world(world)
    requests = [
        {"crs": "EPSG:9215", "corners": corner_rows(QUARRY_9215), "area_ha": "12,07", "commune_code": "6385"},
        {"crs": "VN-2000 KTT 105° múi chiếu 6°", "corners": corner_rows(QUARRY_3405), "area_ha": "12.07",
         "commune_code": "06385"},
        {"geometry": geojson_quarry(), "area_ha": 12.07, "commune_code": "06385"},  # CRS84 by default
    ]
    results = []
    for request in requests:
        proposal, crossings = proposal_from(request)
        results.append(precheck(api_role, proposal, crossings))
    expected = {("R01", "forest", "06385/3/1"), ("R06", "licence_overlap", "GP-OLD"),
                ("R07", "residential", "06385/3/2"), ("R08", "not_mining_land", "06385/3/1"),
                ("R08", "not_mining_land", "06385/3/2")}
    first = summary(results[0])
    assert set(first) == expected
    assert first[("R01", "forest", "06385/3/1")] == pytest.approx(10_000, abs=0.01)
    for other in results[1:]:
        assert set(summary(other)) == expected
        for key, area in summary(other).items():
            assert area == pytest.approx(first[key], abs=2.0)  # the §3.3 table is rounded to the centimetre
        assert other["area_ha"] == pytest.approx(results[0]["area_ha"], abs=0.001)
    assert results[0]["errors"] == 2 and results[0]["warnings"] == 3  # R01, R06 / R07, R08 ×2


def test_precheck_reports_a_crossing_corner_table_and_checks_the_rest(world, api_role):
    quarry_world(world)
    bowtie = [QUARRY_9215[0], QUARRY_9215[2], QUARRY_9215[1], QUARRY_9215[3]]  # points out of order
    proposal, crossings = proposal_from({"crs": "EPSG:9215", "corners": corner_rows(bowtie)})
    result = precheck(api_role, proposal, crossings)
    invalid = [c for c in result["conflicts"] if c["check"] == "invalid_geometry"]
    assert len(invalid) == 1 and "crosses" in invalid[0]["detail"]


@pytest.mark.parametrize("inputs, message", [
    ({}, "exactly one of"),
    ({"corners": [[2380800, 404490], [2380835, 404890], [2381135, 404870]]}, "crs is required"),
    ({"crs": "EPSG:9215", "corners": [[404490, 2380800], [404890, 2380835], [404870, 2381135]]}, "X is the northing"),
    ({"crs": "EPSG:9215", "corners": [["abc", 1], [1, 2], [3, 4]]}, "not a coordinate"),
    ({"crs": "EPSG:9215", "corners": [[1, 2]]}, "at least 3"),
    ({"crs": "nowhere", "corners": corner_rows(QUARRY_9215)}, "crs"),
    ({"geometry": {"type": "Point", "coordinates": [106.7, 21.8]}}, "not accepted"),
    ({"geometry": geojson_quarry(), "area_ha": "twelve"}, "area_ha must be a number"),
    ({"geometry": geojson_quarry(), "holder_name": "x"}, "unknown input"),
])
def test_precheck_refuses_bad_input_with_a_reason(inputs, message):
    with pytest.raises(I.InputError, match=message):
        proposal_from(inputs)


def test_parcel_report_by_id_triple_point_and_polygon(world, api_role):
    quarry_world(world)
    world.recompute()
    by_triple = parcel_report(api_role, subject_from({"commune_code": "6385", "map_sheet_no": "3", "parcel_no": "1"}))
    assert [p["parcel_no"] for p in by_triple["parcels"]] == ["1"]
    assert "user_name" not in by_triple["parcels"][0]  # the API view has no personal fields
    assert by_triple["area_m2"] == pytest.approx(10_000)
    communes = next(l for l in by_triple["layers"] if l["layer"] == "admin_units")
    assert communes["features"][0]["key"] == "06385 Hữu Lũng" and communes["area_m2"] == pytest.approx(10_000)
    point = subject_from({"point": {"type": "Point", "coordinates": [404_650, 2_380_950]}, "crs": "EPSG:9215"})
    by_point = parcel_report(api_role, point)
    assert by_point["parcels"] == by_triple["parcels"]
    polygon = subject_from({"polygon": shapely.geometry.mapping(shapely.box(404_400, 2_380_800, 404_650, 2_381_000)),
                            "crs": "EPSG:9215"})
    by_polygon = parcel_report(api_role, polygon)
    assert [(p["parcel_no"], p["overlap_m2"]) for p in by_polygon["parcels"]] == [("1", 5000.0)]
    licences = next(l for l in by_polygon["layers"] if l["layer"] == "mining_licences")
    assert licences["features"][0]["key"] == "GP-OLD" and licences["area_m2"] == pytest.approx(120 * 100)
    with pytest.raises(I.InputError, match="exactly one"):
        subject_from({"parcel_id": "w7gumw6hh450", "point": {"type": "Point", "coordinates": [106.7, 21.8]}})


def test_land_statistics_add_up_to_each_commune_area(world, api_role):
    world.communes()  # 05977: 20 km × 20 km, 05983: 10 km × 20 km
    world.parcel("1", shapely.box(450_000, 2_420_000, 450_100, 2_420_100).wkt, "LUC")  # 1 ha
    world.parcel("2", shapely.box(450_100, 2_420_000, 450_300, 2_420_100).wkt, "BHK+CLN")  # 2 ha, legacy code
    world.parcel("3", shapely.box(459_900, 2_420_000, 460_100, 2_420_050).wkt, "ONT")  # 1 ha across both communes
    table = land_statistics(api_role, dt.date.today())
    rows = {r["code"] or r["name_en"]: r for r in table["rows"]}
    assert [c["code"] for c in table["communes"]] == ["05977", "05983"]
    assert rows["LUC"]["by_commune"] == {"05977": 1.0, "05983": 0.0}
    assert rows["HNK"]["by_commune"]["05977"] == 2.0 and "BHK" not in rows  # reported under its successor
    assert rows["ONT"]["by_commune"] == {"05977": 0.5, "05983": 0.5}
    assert rows["NNP"]["total"] == 3.0 and rows["PNN"]["total"] == 1.0
    for commune in table["communes"]:
        code = commune["code"]
        leaves = sum(r["by_commune"][code] for r in table["rows"] if r["level"] == 2)
        groups = sum(r["by_commune"][code] for r in table["rows"] if r["level"] == 1)
        assert groups == pytest.approx(commune["natural_area_ha"], abs=1e-3)
        assert leaves + rows["Area not covered by cadastral maps"]["by_commune"][code] == pytest.approx(
            commune["natural_area_ha"], abs=1e-3)
    assert rows["Total natural area"]["total"] == pytest.approx(60_000.0)
    past = land_statistics(api_role, dt.date(2020, 1, 1))  # before anything was loaded: no communes yet
    assert past["communes"] == []
    sheet = openpyxl.load_workbook(io.BytesIO(to_xlsx(table))).active
    assert [c.value for c in sheet[3]][:6] == ["STT / No.", "Loại đất", "Land type", "Mã / Code", "Tổng / Total",
                                               "05977 Xã 05977"]
    import zipfile

    with zipfile.ZipFile(io.BytesIO(to_xlsx(table))) as archive:  # same table, same bytes: no save-time stamps
        assert {info.date_time[:3] for info in archive.infolist()} == {dt.date.today().timetuple()[:3]}
        assert f"<dcterms:modified xsi:type=\"dcterms:W3CDTF\">{dt.date.today().isoformat()}T00:00:00Z" in \
            archive.read("docProps/core.xml").decode()
    assert to_xlsx(table) == to_xlsx(table)


def test_land_statistics_options():
    assert options_from({"communes": "6040, 06041", "date": "2026-01-01", "format": "XLSX"}) == (
        dt.date(2026, 1, 1), ["06040", "06041"], "xlsx")
    for bad in ({"date": "01/01/2026"}, {"communes": ["Thất Khê"]}, {"format": "pdf"}, {"commune": "06040"}):
        with pytest.raises(I.InputError):
            options_from(bad)


def test_parcel_report_point_and_polygon_in_every_crs(world, api_role):
    quarry_world(world)
    e, n = np.array([404_650.0, 404_400.0, 404_650.0, 404_650.0]), np.array([2_380_950.0, 2_380_800.0, 2_380_800.0,
                                                                          2_381_000.0])
    answers = []
    for code, label in ((9215, "EPSG:9215"), (4326, None), (3405, "VN-2000 KTT 105° múi chiếu 6°"),
                        (5897, "http://www.opengis.net/def/crs/EPSG/0/5897")):
        x, y = crs.transform_xy(e, n, 9215, code)
        point = {"type": "Point", "coordinates": [float(x[0]), float(y[0])]}
        ring = [[float(a), float(b)] for a, b in zip(x[1:], y[1:])]
        polygon = {"type": "Polygon", "coordinates": [ring + ring[:1]]}
        by_point = parcel_report(api_role, subject_from({"point": point, "crs": label}))
        by_polygon = parcel_report(api_role, subject_from({"polygon": polygon, "crs": label}))
        answers.append(([p["parcel_no"] for p in by_point["parcels"]],
                        [(p["parcel_no"], round(p["overlap_m2"], 0)) for p in by_polygon["parcels"]],
                        round(by_polygon["area_m2"], 0)))
    assert answers[0] == (["1"], [("1", 4000.0)], 25000.0)  # a 250 m × 200 m right triangle; 4 000 m² on parcel 1
    assert all(a == answers[0] for a in answers[1:]), answers
