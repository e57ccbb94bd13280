"""Zonal statistics against values computed by hand on tiny rasters, then over HTTP as the pygeoapi process."""
from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
import shapely
from shapely.geometry import box, mapping

from gisplatform.raster import ingest, store
from gisplatform.raster.layers import get_raster_layer
from gisplatform.raster.zonal import ZonalError, zonal_statistics
from tests.raster.conftest import from_origin, write_tif

E0, N0 = 450_000.0, 2_420_120.0  # top-left corner of the test grids (EPSG:9215)
PLANE_SLOPE = round(math.degrees(math.atan(math.hypot(10 / 20, 5 / 20))), 2)  # 29.21°: 10 m per column, 5 per row


def _centre(row: int, col: int, res: float) -> tuple[float, float]:
    return E0 + (col + 0.5) * res, N0 - (row + 0.5) * res


@pytest.fixture
def plane_dem(raster_dir, tmp_path):
    """6×6 pixels of 20 m: z = 300 + 10·col − 5·row (rises east and north), pixel (3, 1) nodata."""
    rows, cols = np.mgrid[0:6, 0:6]
    z = (300 + 10 * cols - 5 * rows).astype("float32")
    z[3, 1] = -9999
    ingest.ingest(write_tif(tmp_path / "dem.tif", z, from_origin(E0, N0, 20, 20), 9215, nodata=-9999),
                  get_raster_layer("elevation"))
    return z


@pytest.fixture
def small_plan(raster_dir, tmp_path):
    classes = np.array([[1, 1, 5, 5],
                        [1, 1, 5, 5],
                        [2, 2, 0, 5],
                        [2, 2, 2, 5]], dtype="uint8")
    ingest.ingest(write_tif(tmp_path / "plan.tif", classes, from_origin(E0, N0, 10, 10), 9215, nodata=0),
                  get_raster_layer("planning_map"))
    return classes


def test_heights_and_slopes_by_hand(plane_dem):
    # pixels (rows 1-3, cols 1-2): 305 315 / 300 310 / nodata 305 -> min 300, mean 1535 / 5 = 307, max 315
    polygon = box(E0 + 25, N0 - 75, E0 + 55, N0 - 25)
    [result] = zonal_statistics("elevation", [polygon])
    assert result == {"pixels": 6, "coverage": 0.8333, "elevation_min": 300.0, "elevation_mean": 307.0,
                      "elevation_max": 315.0, "slope_min": PLANE_SLOPE, "slope_mean": PLANE_SLOPE,
                      "slope_max": PLANE_SLOPE, "method": "pixel_centres"}


def test_a_polygon_smaller_than_a_pixel_takes_the_pixel_under_it(plane_dem):
    tiny = box(E0 + 82, N0 - 58, E0 + 86, N0 - 54)  # inside pixel (row 2, col 4): 300 + 40 - 10 = 330
    [result] = zonal_statistics("elevation", [tiny])
    assert (result["method"], result["pixels"], result["elevation_mean"]) == ("representative_point", 1, 330.0)


def test_overlapping_polygons_each_get_all_their_pixels(plane_dem):
    a = box(E0, N0 - 20, E0 + 40, N0)  # row 0, cols 0-1: 300, 310
    b = box(E0 + 20, N0 - 20, E0 + 60, N0)  # row 0, cols 1-2: 310, 320 (shares pixel (0, 1) with a)
    c = box(E0 + 80, N0 - 120, E0 + 120, N0 - 100)  # row 5, cols 4-5: 315, 325 (alone)
    results = zonal_statistics("elevation", [a, b, c])
    assert [(r["pixels"], r["elevation_mean"]) for r in results] == [(2, 305.0), (2, 315.0), (2, 320.0)]


def test_multipolygons_and_other_crs(plane_dem):
    parts = shapely.MultiPolygon([box(E0, N0 - 20, E0 + 20, N0), box(E0 + 100, N0 - 120, E0 + 120, N0 - 100)])
    [result] = zonal_statistics("elevation", [parts])  # 300 and 300 + 50 - 25 = 325
    assert (result["pixels"], result["elevation_min"], result["elevation_max"]) == (2, 300.0, 325.0)
    from gisplatform import crs as vncrs

    in_degrees = vncrs.transform_geometries(np.array([parts], dtype=object), 9215, 4326)[0]
    [again] = zonal_statistics("elevation", [in_degrees], crs=4326)
    assert (again["pixels"], again["elevation_min"], again["elevation_max"]) == (2, 300.0, 325.0)


def test_planning_class_shares_by_hand(small_plan):
    # 16 pixels, 1 nodata: class 5 ×6, class 2 ×5, class 1 ×4 of 15 -> 0.4 / 0.3333 / 0.2667, largest first
    [whole] = zonal_statistics("planning_map", [box(E0, N0 - 40, E0 + 40, N0)])
    assert whole["pixels"] == 16 and whole["coverage"] == 0.9375 and whole["dominant"] == "RPH"
    assert [(c["code"], c["share"]) for c in whole["classes"]] == [("RPH", 0.4), ("HNK", 0.3333), ("LUC", 0.2667)]
    assert whole["classes"][0]["vi"] == "Đất rừng phòng hộ" and whole["classes"][0]["en"] == "Protection forest"
    [tie] = zonal_statistics("planning_map", [box(E0 + 10, N0 - 40, E0 + 40, N0 - 20)])  # 2 0 5 / 2 2 5
    assert [(c["code"], c["share"]) for c in tie["classes"]] == [("HNK", 0.6), ("RPH", 0.4)]
    [corner] = zonal_statistics("planning_map", [box(E0 + 20, N0 - 20, E0 + 40, N0)])  # two RPH pixels
    assert corner["classes"] == [{"value": 5, "code": "RPH", "vi": "Đất rừng phòng hộ", "en": "Protection forest",
                                  "share": 1.0}]


def test_polygons_off_the_raster_and_bad_input(small_plan):
    [off] = zonal_statistics("planning_map", [box(E0 + 5000, N0, E0 + 5100, N0 + 100)])
    assert off["coverage"] == 0.0 and off["classes"] == [] and off["dominant"] is None
    assert off["method"] == "outside_raster"
    with pytest.raises(ZonalError, match="need polygons"):
        zonal_statistics("planning_map", [shapely.Point(E0, N0)])
    with pytest.raises(ValueError, match="unknown raster layer 'slope'"):
        zonal_statistics("slope", [box(E0, N0 - 40, E0 + 40, N0)])


def test_a_layer_without_a_published_version_says_so(raster_dir):
    with pytest.raises(ZonalError, match="no published version yet: run its ETL job"):
        zonal_statistics("elevation", [box(E0, N0 - 40, E0 + 40, N0)])


# --- the process over HTTP (the sample's DEM and planning map, published by the session's `demo` run) -------------

from tests.publish.conftest import api, api_server, api_server_log, http, published_engine  # noqa: E402,F401

PROCESS = "processes/zonal-statistics/execution"
SQUARE = {"type": "Polygon", "coordinates": [[[106.745, 21.870], [106.747, 21.870], [106.747, 21.872],
                                              [106.745, 21.872], [106.745, 21.870]]]}


def test_the_process_is_listed(http, api):
    processes = http.get(f"{api}/processes", params={"f": "json"}).json()["processes"]
    assert "zonal-statistics" in [p["id"] for p in processes]


@pytest.mark.parametrize("layer", ["elevation", "planning_map"])
def test_the_process_answers_like_the_function(http, api, layer):
    r = http.post(f"{api}/{PROCESS}", json={"inputs": {"layer": layer, "geometry": SQUARE}})
    assert r.status_code == 200, r.text[:500]
    [got] = r.json()["results"]
    [expected] = zonal_statistics(layer, [shapely.geometry.shape(SQUARE)], crs=4326)
    assert got == {"id": 0, **expected}
    assert got["pixels"] > 100 and got["coverage"] == 1.0


def test_the_process_reads_parcels_by_id(http, api, published_engine):
    import sqlalchemy as sa

    with published_engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT id, ST_AsBinary(geom) FROM api.cadastral_parcels WHERE commune_code = '06187' "
            "ORDER BY id LIMIT 5")).all()
    ids = [row[0] for row in rows]
    r = http.post(f"{api}/{PROCESS}", json={"inputs": {"layer": "planning_map", "collection": "cadastral_parcels",
                                                        "ids": ids + [999999999]}})
    assert r.status_code == 200, r.text[:500]
    results = r.json()["results"]
    expected = zonal_statistics("planning_map", [shapely.from_wkb(bytes(row[1])) for row in rows])
    assert results[:5] == [{"id": i, **e} for i, e in zip(ids, expected)]
    assert results[5] == {"id": 999999999, "error": "no such feature"}
    assert all(r["dominant"] for r in results[:5])  # every sample parcel of 06187 lies on the planning map


@pytest.mark.parametrize("inputs, message", [
    ({"layer": "slope", "geometry": SQUARE}, "unknown raster layer 'slope'"),
    ({"layer": "elevation"}, "give 'geometry'"),
    ({"layer": "elevation", "geometry": {"type": "Point", "coordinates": [106.7, 21.8]}}, "need polygons"),
    ({"layer": "elevation", "geometry": {"type": "Polygon", "coordinates": "x"}}, "not valid GeoJSON"),
    ({"layer": "elevation", "geometry": SQUARE, "crs": "EPSG:bad"}, "crs"),
    ({"layer": "elevation", "collection": "water_licences", "ids": [1]}, "not a polygon layer"),
    ({"layer": "elevation", "collection": "cadastral_parcels"}, "give 'ids'"),
])
def test_bad_process_inputs_are_400_with_the_reason(http, api, inputs, message):
    r = http.post(f"{api}/{PROCESS}", json={"inputs": inputs})
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert message in r.text, r.text[:300]
