"""Raster ETL: GeoTIFF -> validated COG in the managed store, through the run log; bad files keep the published one."""
from __future__ import annotations

import numpy as np
import pytest
import rasterio
import sqlalchemy as sa

from gisplatform import crs as vncrs
from gisplatform.etl.runner import EtlError, run_job
from gisplatform.layers import LayerDefinitionError, load_layers, load_raster_layers
from gisplatform.raster import store
from gisplatform.raster.etl import raster_history
from gisplatform.raster.ingest import check_cog
from gisplatform.raster.layers import get_raster_layer, parse_raster_layer
from gisplatform.sample import rasters as sample_rasters
from tests.conftest import SAMPLE
from tests.raster.conftest import from_origin, raster_job, write_tif

DEM = SAMPLE / sample_rasters.DEM_FILE
PLANNING = SAMPLE / sample_rasters.PLANNING_FILE
# shared/domain §1.6: EPSG:9215 -> EPSG:4326 through EPSG:6960 (PROJ 9.5.1)
LANG_SON_POINTS = [
    (450_000.000, 2_420_000.000, 21.875849983, 106.768059047),
    (400_000.000, 2_380_000.000, 21.512486741, 106.286673196),
    (480_000.000, 2_460_000.000, 22.237714529, 107.057867808),
    (430_000.000, 2_410_000.000, 21.784855715, 106.574959540),
]


def _run_log(db, layer: str) -> list[tuple]:
    with db.connect() as c:
        return c.execute(sa.text("SELECT status, read, inserted, unchanged, error, report -> 'raster' ->> 'version' "
                                 "FROM etl.runs WHERE layer = :l ORDER BY run_id"), {"l": layer}).all()


def test_raster_layers_are_kept_apart_from_vector_stages():
    assert set(load_raster_layers()) == {"elevation", "planning_map"}
    assert not set(load_raster_layers()) & set(load_layers())  # tables, views, tiles, catalogue stay vector-only
    elevation, planning = get_raster_layer("elevation"), get_raster_layer("planning_map")
    assert (elevation.resampling, planning.resampling) == ("bilinear", "nearest")
    assert planning.category(5).code == "RPH" and planning.category(5).title.en == "Protection forest"


def test_a_categorical_layer_cannot_be_resampled_bilinearly(tmp_path):
    raw = {"name": "plan", "kind": "raster", "title": {"vi": "a", "en": "a"}, "description": {"vi": "a", "en": "a"},
           "raster": {"type": "categorical", "crs": "EPSG:9215", "resolution": 10, "dtype": "uint8", "nodata": 0,
                      "resampling": "bilinear"},
           "categories": [{"value": 1, "code": "LUC", "title": {"vi": "a", "en": "a"}, "colour": "#FFFFFF"}]}
    with pytest.raises(LayerDefinitionError, match="nearest"):
        parse_raster_layer(raw, tmp_path / "plan.yml")


def test_sample_dem_becomes_a_valid_cog_in_vn2000_with_bilinear_heights(db, raster_dir):
    report = run_job(raster_job("elevation", DEM))
    assert (report.status, report.read, report.inserted) == ("succeeded", 1, 1)
    current = store.current_version("elevation")
    assert current.path.parent == raster_dir / "elevation" and current.path.name != "current.tif"
    layer = get_raster_layer("elevation")
    assert check_cog(current.path, layer) == []
    with rasterio.open(store.current_path("elevation")) as cog:
        assert cog.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert cog.block_shapes[0] == (256, 256) and cog.overviews(1)[0] == 2
        assert max(cog.width, cog.height) / cog.overviews(1)[-1] <= 256  # down to one tile
        assert cog.crs.to_epsg() == 9215 and cog.res == (20.0, 20.0) and cog.dtypes[0] == "float32"
        assert cog.tags()["SOURCE_CRS"] == "EPSG:32648" and cog.tags()["RESAMPLING"] == "bilinear"
        # heights against the terrain function the DEM was made from (30 m int16 source, 20 m bilinear target)
        rng = np.random.default_rng(1)
        e = rng.uniform(sample_rasters.WINDOW[0] + 100, sample_rasters.WINDOW[2] - 100, 400)
        n = rng.uniform(sample_rasters.WINDOW[1] + 100, sample_rasters.WINDOW[3] - 100, 400)
        got = np.array([v[0] for v in cog.sample(zip(e, n))], dtype="float64")
    expected = sample_rasters.height(e, n, sample_rasters.terrain(20251127))
    error = np.abs(got - expected)
    assert np.median(error) < 1.5 and np.percentile(error, 90) < 6, (np.median(error), error.max())
    assert _run_log(db, "elevation") == [("succeeded", 1, 1, 0, None, current.version)]


@pytest.mark.parametrize("source_epsg", [4326, 32648, 3405])
def test_reprojection_puts_known_points_where_they_belong(db, raster_dir, tmp_path, source_epsg):
    """A height plane defined on EPSG:9215 coordinates, delivered in another CRS, must come back as the plane.

    A transformation without the EPSG:6960 datum shift moves it ~225 m, i.e. 0.3·195 + 0.2·111 ≈ 80 m of height.
    """
    for e0, n0, lat, lon in LANG_SON_POINTS:  # our pyproj chain agrees with the domain's regression vectors
        e, n = vncrs.transform_xy([lon], [lat], 4326, 9215)
        assert abs(e[0] - e0) < 0.01 and abs(n[0] - n0) < 0.01
    layer = get_raster_layer("elevation")
    for i, (e0, n0, _lat, _lon) in enumerate(LANG_SON_POINTS):
        path = _plane_tif(tmp_path / f"plane{i}_{source_epsg}.tif", e0, n0, source_epsg)
        run_job(raster_job("elevation", path))
        with rasterio.open(store.current_path("elevation")) as cog:
            points = [(e0 + dx, n0 + dy) for dx in (-150, 10, 170) for dy in (-130, 10, 190)]
            got = np.array([v[0] for v in cog.sample(points)])
        expected = np.array([_plane(x, y, e0, n0) for x, y in points])
        # GDAL's warper approximates the transformation to 1/8 pixel: well under a metre here, vs 80 m
        assert np.abs(got - expected).max() < 0.25, (source_epsg, i, got - expected)
    assert len(store.versions(layer.name)) == len(LANG_SON_POINTS)


def _plane(e, n, e0, n0):
    return 500 + 0.3 * (e - e0) - 0.2 * (n - n0)


def _plane_tif(path, e0, n0, epsg):
    """1.2 km around (e0, n0), pixel values = the plane at each pixel centre's exact EPSG:9215 position."""
    half = 600
    xs, ys = vncrs.transform_xy([e0 - half, e0 + half, e0 - half, e0 + half],
                                [n0 - half, n0 - half, n0 + half, n0 + half], 9215, epsg)
    res = 0.00005 if epsg == 4326 else 5.0
    left, top = min(xs), max(ys)
    width, height = int((max(xs) - left) / res) + 1, int((top - min(ys)) / res) + 1
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    e, n = vncrs.transform_xy((left + cols * res).ravel(), (top - rows * res).ravel(), epsg, 9215)
    data = _plane(e, n, e0, n0).reshape(height, width).astype("float32")
    return write_tif(path, data, from_origin(left, top, res, res), epsg, nodata=-9999)


def test_planning_map_in_vn2000_keeps_its_pixels_and_colours(db, raster_dir):
    run_job(raster_job("planning_map", PLANNING))
    with rasterio.open(PLANNING) as src, rasterio.open(store.current_path("planning_map")) as cog:
        assert np.array_equal(src.read(1), cog.read(1)) and src.transform == cog.transform
        assert cog.colormap(1)[5][:3] == get_raster_layer("planning_map").category(5).rgb
        assert cog.tags()["RESAMPLING"].startswith("none") and cog.overviews(1) == [2, 4]
        assert check_cog(store.current_path("planning_map"), get_raster_layer("planning_map")) == []


def test_planning_map_in_utm_is_resampled_by_nearest_class(db, raster_dir, tmp_path):
    """Reprojected, a class map keeps only real classes (bilinear would average 1 and 5 into 3)."""
    with rasterio.open(PLANNING) as src:
        data, nodata = src.read(1), src.nodata
        box = rasterio.warp.transform_bounds(src.crs, rasterio.crs.CRS.from_epsg(3405), *src.bounds)
    utm = np.zeros((1010, 1010), dtype="uint8")
    rasterio.warp.reproject(data, utm, src_transform=src.transform, src_crs=src.crs, src_nodata=nodata,
                            dst_transform=from_origin(box[0], box[3], 10, 10), dst_crs="EPSG:3405", dst_nodata=0,
                            resampling=rasterio.enums.Resampling.nearest)
    path = write_tif(tmp_path / "plan_utm.tif", utm, from_origin(box[0], box[3], 10, 10), 3405, nodata=0)
    run_job(raster_job("planning_map", path))
    with rasterio.open(store.current_path("planning_map")) as cog:
        classes = np.unique(cog.read(1))
        assert cog.tags()["RESAMPLING"] == "nearest"
    assert set(classes.tolist()) == set(range(0, 11))  # every class kept, none invented, nodata 0 at the edges


def test_an_unchanged_source_publishes_no_new_version(db, raster_dir):
    first = run_job(raster_job("planning_map", PLANNING))
    second = run_job(raster_job("planning_map", PLANNING))
    assert (first.inserted, second.inserted, second.unchanged) == (1, 0, 1)
    assert len(store.versions("planning_map")) == 1
    history = raster_history("planning_map")
    assert [h["new_version"] for h in history] == [False, True]
    assert history[0]["version"] == history[1]["version"] == store.current_version("planning_map").version


# --- bad files: a clear reason, a failed run in the log, the published version untouched -------------------


def _truncated(tmp_path):
    path = tmp_path / "cut.tif"
    path.write_bytes(DEM.read_bytes()[:5000])
    return path


def _not_a_tiff(tmp_path):
    path = tmp_path / "dem.tif"
    path.write_bytes(b"<html>404 Not Found</html>")  # a download that went wrong
    return path


def _utm_labelled_as_tm3(tmp_path):
    with rasterio.open(DEM) as src:  # UTM 48N coordinates (E ≈ 680 km) under an EPSG:9215 label
        return write_tif(tmp_path / "mislabelled.tif", src.read(1), src.transform, 9215, nodata=src.nodata)


def _no_crs(tmp_path):
    with rasterio.open(DEM) as src:
        return write_tif(tmp_path / "no_crs.tif", src.read(1), src.transform, None, nodata=src.nodata)


def _no_nodata(tmp_path):
    with rasterio.open(DEM) as src:
        return write_tif(tmp_path / "no_nodata.tif", src.read(1), src.transform, 32648)


def _in_feet(tmp_path):
    with rasterio.open(DEM) as src:
        data = src.read(1)
        feet = np.where(data == src.nodata, data, (data * 3.2808).astype("int16"))
        return write_tif(tmp_path / "feet.tif", feet, src.transform, 32648, nodata=src.nodata)


def _rgb_scan(tmp_path):
    with rasterio.open(PLANNING) as src:
        return write_tif(tmp_path / "scan_rgb.tif", np.stack([src.read(1)] * 3), src.transform, 9215, nodata=0)


def _unknown_classes(tmp_path):
    with rasterio.open(PLANNING) as src:
        data = src.read(1)
        data[:50, :50] = 42
        return write_tif(tmp_path / "classes.tif", data, src.transform, 9215, nodata=0)


BAD_FILES = {
    "truncated": ("elevation", _truncated, "cut.tif: is damaged: the block at row .* probably truncated"),
    "not_a_tiff": ("elevation", _not_a_tiff, "dem.tif: is not a readable GeoTIFF"),
    "misplaced": ("elevation", _utm_labelled_as_tm3, "mislabelled.tif: lies outside Lạng Sơn.*UTM 48N"),
    "no_crs": ("elevation", _no_crs, "no_crs.tif: has no coordinate reference system.*crs: EPSG:9215"),
    "no_nodata": ("elevation", _no_nodata, "no_nodata.tif: declares no nodata value.*nodata:"),
    "feet": ("elevation", _in_feet, "feet.tif: has values from .* outside the plausible .*unit"),
    "rgb": ("planning_map", _rgb_scan, "scan_rgb.tif: has 3 band\\(s\\); layer planning_map expects 1"),
    "classes": ("planning_map", _unknown_classes, "classes.tif: has pixel values \\[42\\]"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_is_rejected_with_its_reason_and_the_published_version_stays(db, raster_dir, tmp_path, case):
    layer, make, message = BAD_FILES[case]
    run_job(raster_job(layer, DEM if layer == "elevation" else PLANNING))
    published = store.current_version(layer)
    with pytest.raises(EtlError, match=message) as failure:
        run_job(raster_job(layer, make(tmp_path)))
    assert store.current_version(layer).path == published.path
    assert [p.name for p in (raster_dir / layer).iterdir() if p.name.startswith(".")] == []  # no staging left
    log = _run_log(db, layer)
    assert [r[0] for r in log] == ["succeeded", "failed"] and log[1][4] == str(failure.value)


def test_the_job_can_declare_what_the_file_does_not(db, raster_dir, tmp_path):
    run_job(raster_job("elevation", _no_crs(tmp_path), crs="EPSG:32648"))
    report = run_job(raster_job("elevation", _no_nodata(tmp_path), nodata=-32768))
    assert report.inserted == 1
    with rasterio.open(store.current_path("elevation")) as cog:
        assert cog.tags()["SOURCE_CRS"] == "EPSG:32648"
        assert cog.read(1, masked=True).min() > 100  # the -32768 corners became nodata, not heights
