"""Raster layers over HTTP: OGC API - Coverages subsets equal the stored pixels; PNG map tiles; the portal style.

The server is ``api_server`` (``gisplatform serve`` on the published sample, whose `demo` run also published the
sample DEM and planning map into the session's raster store).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from rasterio.io import MemoryFile
from rasterio.windows import Window

from gisplatform.layers import get_layer, load_raster_layers
from gisplatform.raster import store
from gisplatform.raster.layers import get_raster_layer
from gisplatform.raster.tiles import hillshade
from gisplatform.sample import rasters as sample_rasters
from tests.conftest import SAMPLE
from tests.publish.conftest import api, api_server, api_server_log, http, published_engine  # noqa: F401

EPSG_9215 = "http://www.opengis.net/def/crs/EPSG/0/9215"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def _tif(content: bytes):
    memory = MemoryFile(content)
    return memory.open()


def _stored(layer: str, box):
    """The published COG's pixels covering ``box`` (EPSG:9215), on its own grid."""
    with rasterio.open(store.current_path(layer)) as cog:
        left, top, res = cog.transform.c, cog.transform.f, cog.transform.a
        col0, col1 = int(np.floor((box[0] - left) / res)), int(np.ceil((box[2] - left) / res))
        row0, row1 = int(np.floor((top - box[3]) / res)), int(np.ceil((top - box[1]) / res))
        window = Window(col0, row0, col1 - col0, row1 - row0)
        return cog.read(1, window=window), cog.window_transform(window)


def test_raster_layers_are_coverage_collections(http, api):
    collections = {c["id"]: c for c in http.get(f"{api}/collections", params={"f": "json"}).json()["collections"]}
    for name in load_raster_layers():
        assert name in collections, name
        links = {link["rel"] for link in collections[name]["links"]}
        assert any("coverage" in rel for rel in links), links
    elevation = http.get(f"{api}/collections/elevation", params={"f": "json", "lang": "en"}).json()
    assert elevation["title"] == "Digital elevation model (DEM)"
    west, south, east, north = elevation["extent"]["spatial"]["bbox"][0]
    assert 106.6 < west < east < 106.9 and 21.8 < south < north < 22.0


@pytest.mark.parametrize("layer", ["elevation", "planning_map"])
def test_a_bbox_subset_in_vn2000_is_the_stored_pixels(http, api, layer):
    box = (445_010.0, 2_420_020.0, 445_530.0, 2_420_290.0)
    r = http.get(f"{api}/collections/{layer}/coverage",
                 params={"bbox": ",".join(map(str, box)), "bbox-crs": EPSG_9215, "f": "GTiff"})
    assert r.status_code == 200, r.text[:300]
    expected, transform = _stored(layer, box)
    with _tif(r.content) as got:
        assert got.crs.to_epsg() == 9215 and got.transform == transform
        assert np.array_equal(got.read(1), expected)
        assert got.nodata == get_raster_layer(layer).nodata
    assert expected.shape == ((14, 27) if layer == "elevation" else (27, 52))  # whole pixels covering the box
    if layer == "planning_map":  # delivered in EPSG:9215, so also exactly the pixels of the department's file
        with rasterio.open(SAMPLE / sample_rasters.PLANNING_FILE) as source, _tif(r.content) as got:
            window = rasterio.windows.from_bounds(*got.bounds, transform=source.transform)
            assert np.array_equal(source.read(1, window=window.round_offsets().round_lengths()), got.read(1))


def test_a_bbox_in_degrees_gives_every_stored_pixel_it_covers(http, api):
    box = (106.740, 21.870, 106.745, 21.874)  # CRS84: a rotated quadrilateral in TM-3, densified before cutting
    r = http.get(f"{api}/collections/planning_map/coverage", params={"bbox": ",".join(map(str, box)),
                                                                    "bbox-crs": CRS84, "f": "GTiff"})
    assert r.status_code == 200, r.text[:300]
    with _tif(r.content) as got:
        corners = rasterio.warp.transform("EPSG:4326", "EPSG:9215", [box[0], box[2], box[0], box[2]],
                                          [box[1], box[1], box[3], box[3]])
        left, bottom, right, top = got.bounds
        assert left <= min(corners[0]) and right >= max(corners[0]) and bottom <= min(corners[1]) \
            and top >= max(corners[1])
        assert right - max(corners[0]) < 10 and min(corners[0]) - left < 10  # no more than the covering pixels
        expected, _ = _stored("planning_map", got.bounds)
        assert np.array_equal(got.read(1), expected)


def test_coveragejson_has_the_pixel_values_at_pixel_centres(http, api):
    r = http.get(f"{api}/collections/elevation/coverage",
                 params={"subset": "x(446000:446100),y(2421000:2421060)", "f": "json"})
    assert r.status_code == 200, r.text[:300]
    coverage = r.json()
    axes = coverage["domain"]["axes"]
    assert (axes["x"]["start"], axes["x"]["num"], axes["y"]["start"], axes["y"]["num"]) == (446010, 5, 2421050, 3)
    assert coverage["domain"]["referencing"][0]["system"]["id"] == EPSG_9215
    expected, _ = _stored("elevation", (446000, 2421000, 446100, 2421060))
    values = np.array(coverage["ranges"]["1"]["values"], dtype="float32").reshape(3, 5)
    assert np.array_equal(values, expected)


@pytest.mark.parametrize("params, message", [
    ({"bbox": "1,2,3"}, "four"),
    ({"bbox": "a,b,c,d"}, "four numbers"),
    ({"bbox": "107,22,106,21"}, "minx must be < maxx"),
    ({"bbox": "105.0,20.0,105.1,20.1"}, "does not overlap"),
    ({"bbox": "445000,2420000,445100,2420100", "bbox-crs": "not-a-crs"}, "bbox-crs"),
    ({"subset": "x(446100:446000)"}, "low must be smaller than high"),
    ({"bbox": "106.7,21.8,106.8,21.9", "subset": "x(446000:446100)"}, "cannot be combined"),
])
def test_bad_coverage_requests_are_4xx_with_the_reason(http, api, params, message):
    r = http.get(f"{api}/collections/elevation/coverage", params={**params, "f": "json"})
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert message in r.json()["description"], r.json()


def test_a_whole_coverage_too_large_for_json_is_413_but_comes_as_geotiff(http, api):
    r = http.get(f"{api}/collections/planning_map/coverage", params={"f": "json"})
    assert r.status_code == 413 and "f=GTiff" in r.json()["description"]
    r = http.get(f"{api}/collections/planning_map/coverage", params={"f": "GTiff"})
    assert r.status_code == 200
    with _tif(r.content) as got, rasterio.open(store.current_path("planning_map")) as cog:
        assert np.array_equal(got.read(1), cog.read(1)) and got.transform == cog.transform
    assert r.content == store.current_path("planning_map").read_bytes()  # the published COG itself


# --- map tiles -------------------------------------------------------------------------------------------------


def _tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * n)
    return x, y


def _png(content: bytes) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # a map tile has no CRS of its own
        with MemoryFile(content) as memory, memory.open() as png:
            return png.read()  # (4, 256, 256) RGBA


def test_elevation_tiles_are_hillshade(http, api_server):
    x, y = _tile_xy(106.745, 21.87, 13)
    r = http.get(f"{api_server}/rasters/elevation/tiles/WebMercatorQuad/13/{y}/{x}.png")
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    assert r.headers["ETag"].strip('"') == store.current_version("elevation").version
    rgba = _png(r.content)
    assert (rgba[3] == 255).mean() > 0.5 and np.array_equal(rgba[0], rgba[1])  # grey, mostly covered
    assert rgba[0][rgba[3] == 255].std() > 5  # relief, not a flat grey


def test_planning_tiles_use_the_class_colours(http, api_server):
    x, y = _tile_xy(106.745, 21.87, 14)
    r = http.get(f"{api_server}/rasters/planning_map/tiles/WebMercatorQuad/14/{y}/{x}.png")
    assert r.status_code == 200
    rgba = _png(r.content)
    colours = {tuple(int(c.colour[i:i + 2], 16) for i in (1, 3, 5)) for c in get_raster_layer("planning_map").categories}
    opaque = rgba[:3, rgba[3] == 255].T
    assert len(opaque) and {tuple(map(int, p)) for p in opaque} <= colours


def test_tile_requests_outside_the_layer_or_the_grid(http, api_server):
    base = f"{api_server}/rasters"
    far = _tile_xy(105.5, 21.0, 12)
    empty = http.get(f"{base}/elevation/tiles/WebMercatorQuad/12/{far[1]}/{far[0]}.png")
    assert empty.status_code == 200 and (_png(empty.content)[3] == 0).all()  # transparent, MapLibre draws nothing
    assert http.get(f"{base}/elevation/tiles/WebMercatorQuad/3/1/1.png").status_code == 400  # below minzoom
    r = http.get(f"{base}/elevation/tiles/WebMercatorQuad/12/99999/1.png")
    assert r.status_code == 400 and "does not exist" in r.json()["description"]
    assert http.get(f"{base}/cadastral_parcels/tiles/WebMercatorQuad/12/1/1.png").status_code == 404
    assert http.get(f"{base}/nothing").status_code == 404


def test_hillshade_lights_north_west_slopes():
    ground = 10.0
    rows, cols = np.mgrid[0:5, 0:5].astype("float64")
    facing_north_west = (cols + rows) * ground  # rows run south: height rises to the south-east, slope faces NW
    facing_south_east = -facing_north_west
    facing_north_east = (rows - cols) * ground
    assert hillshade(facing_north_west, ground).min() > 0.9  # towards the sun (315°, 45° high)
    assert hillshade(facing_south_east, ground).max() < 0.05  # in its own shadow
    assert 0.3 < hillshade(facing_north_east, ground).mean() < 0.5  # side-lit


# --- portal ----------------------------------------------------------------------------------------------------


def test_the_portal_style_draws_both_rasters_with_an_opacity(http, api_server):
    style = http.get(f"{api_server}/style.json").json()
    order = [layer["id"] for layer in style["layers"]]
    assert order.index("elevation-raster") < order.index("cadastral_parcels-fill") < order.index("planning_map-raster")
    assert style["sources"]["planning_map"]["tiles"] == ["rasters/planning_map/tiles/WebMercatorQuad/{z}/{y}/{x}.png"]
    entries = {e["id"]: e for e in style["metadata"]["gisplatform:portal"]["layers"]}
    assert entries["planning_map"]["raster"] and entries["planning_map"]["classes"][4]["code"] == "RPH"
    assert (entries["elevation"]["visible"], entries["planning_map"]["visible"]) == (True, False)
    hidden = {layer["id"]: layer.get("layout", {}).get("visibility") for layer in style["layers"]}
    assert (hidden["elevation-raster"], hidden["planning_map-raster"]) == ("visible", "none")
    assert "raster-opacity" in style["metadata"]["gisplatform:portal"]["opacityKeys"]
    assert get_layer("cadastral_parcels")  # the vector layers are still all there
