"""PNG map tiles of raster layers for the portal: ``/rasters/<layer>/tiles/WebMercatorQuad/{z}/{y}/{x}.png``.

Why our own small WSGI route and not pygeoapi: pygeoapi 0.24's map provider (``WMSFacade``) only forwards to an
external WMS, and its tile providers serve pre-rendered tile folders or vector tiles; nothing renders a
GeoTIFF into styled PNG tiles. The rendering needs our styles anyway: hillshade computed from the DEM and the
planning classes painted with their colours from ``layers/planning_map.yml``.

Each tile is warped from the published COG (``current.tif``; GDAL reads only the blocks it needs, from the
overview matching the zoom) into the tile's EPSG:3857 grid — with a one-pixel border for elevation, so the
hillshade has no seams — bilinear for heights, nearest for classes. Outside the raster a tile is transparent.
The answer carries the version as ETag: a new version is a new tile for caches.
"""
from __future__ import annotations

import json
import math
import re
import struct
import zlib
from functools import lru_cache

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_bounds
from rasterio.warp import reproject, transform_bounds

from gisplatform.raster import store
from gisplatform.raster.layers import RasterLayer

TILE = 256
WEB_MERCATOR_HALF = 20037508.342789244
TILE_PATH = re.compile(r"^/(?P<layer>[a-z][a-z0-9_]*)/tiles/WebMercatorQuad/(?P<z>\d{1,2})/(?P<y>\d+)/(?P<x>\d+)"
                       r"(?:\.png)?$")
SUN_AZIMUTH, SUN_ALTITUDE = 315.0, 45.0  # the cartographic convention: light from the north-west
MERCATOR = CRS.from_epsg(3857)


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    size = 2 * WEB_MERCATOR_HALF / 2**z
    left, top = -WEB_MERCATOR_HALF + x * size, WEB_MERCATOR_HALF - y * size
    return left, top - size, left + size, top


def png_rgba(rgba: np.ndarray) -> bytes:
    """A PNG of an (h, w, 4) uint8 array (zlib only: no imaging library needed for four channels)."""
    h, w, _ = rgba.shape
    raw = b"".join(b"\x00" + rgba[row].tobytes() for row in range(h))  # filter type 0 on every scanline

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


@lru_cache(maxsize=1)
def empty_tile() -> bytes:
    return png_rgba(np.zeros((TILE, TILE, 4), dtype="uint8"))


def _warp(src, layer: RasterLayer, bounds, border: int) -> np.ndarray:
    """The layer's values on the tile grid (plus ``border`` pixels each side) in EPSG:3857; nodata as NaN/0."""
    size = (bounds[2] - bounds[0]) / TILE
    grid = from_bounds(bounds[0] - border * size, bounds[1] - border * size, bounds[2] + border * size,
                       bounds[3] + border * size, TILE + 2 * border, TILE + 2 * border)
    out = np.full((TILE + 2 * border, TILE + 2 * border), layer.nodata, dtype="float32")
    reproject(rasterio.band(src, 1), out, dst_transform=grid, dst_crs=MERCATOR, dst_nodata=layer.nodata,
              resampling=Resampling.nearest if layer.categorical else Resampling.bilinear, num_threads=1)
    return out


def hillshade(z: np.ndarray, ground_res: float) -> np.ndarray:
    """Shaded relief in [0, 1] of a height grid (metres, north up) with ``ground_res`` metres per pixel."""
    dz_dy, dz_dx = np.gradient(z, ground_res)  # rows run south, so dz_dy is -∂z/∂north
    slope = np.arctan(np.hypot(dz_dx, dz_dy))
    aspect = np.arctan2(dz_dy, -dz_dx)
    zenith, azimuth = math.radians(90 - SUN_ALTITUDE), math.radians(360 - SUN_AZIMUTH + 90)
    shade = np.cos(zenith) * np.cos(slope) + np.sin(zenith) * np.sin(slope) * np.cos(azimuth - aspect)
    return np.clip(shade, 0, 1)


def render_elevation(values: np.ndarray, layer: RasterLayer, bounds) -> np.ndarray:
    valid = values != layer.nodata
    filled = np.where(valid, values, np.nanmean(values[valid]) if valid.any() else 0).astype("float64")
    lat = math.degrees(math.atan(math.sinh(((bounds[1] + bounds[3]) / 2) / 6378137.0)))
    ground = (bounds[2] - bounds[0]) / TILE * math.cos(math.radians(lat))  # Mercator metres are stretched
    shade = hillshade(filled, ground)
    # at the edge of the data the fill value would draw a false cliff: shade those pixels as flat ground
    inner = valid.copy()
    inner[1:, :] &= valid[:-1, :]
    inner[:-1, :] &= valid[1:, :]
    inner[:, 1:] &= valid[:, :-1]
    inner[:, :-1] &= valid[:, 1:]
    shade = np.where(inner, shade, math.sin(math.radians(SUN_ALTITUDE)))
    shade = (shade[1:-1, 1:-1] * 255).astype("uint8")
    rgba = np.empty((TILE, TILE, 4), dtype="uint8")
    rgba[..., 0] = rgba[..., 1] = rgba[..., 2] = shade
    rgba[..., 3] = np.where(valid[1:-1, 1:-1], 255, 0)
    return rgba


def render_categories(values: np.ndarray, layer: RasterLayer) -> np.ndarray:
    palette = np.zeros((256, 4), dtype="uint8")
    for c in layer.categories:
        palette[c.value] = (*c.rgb, 255)
    return palette[np.clip(values, 0, 255).astype("uint8")]


def render_tile(layer: RasterLayer, z: int, x: int, y: int) -> bytes | None:
    """The PNG tile, or None when the layer has no published version."""
    path = store.current_path(layer.name)
    if not path.exists():
        return None
    bounds = tile_bounds(z, x, y)
    with rasterio.open(path) as src:
        box = transform_bounds(src.crs, MERCATOR, *src.bounds)
        if bounds[0] >= box[2] or bounds[2] <= box[0] or bounds[1] >= box[3] or bounds[3] <= box[1]:
            return empty_tile()
        if layer.categorical:
            return png_rgba(render_categories(_warp(src, layer, bounds, 0), layer))
        return png_rgba(render_elevation(_warp(src, layer, bounds, 1), layer, bounds))


# --- WSGI ---------------------------------------------------------------------------------------------------


def _error(start_response, status: str, description: str):
    body = json.dumps({"code": "InvalidParameterValue" if status.startswith("400") else "NotFound",
                       "description": description}).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            ("Access-Control-Allow-Origin", "*")])
    return [body]


def _check_tile(layer: RasterLayer, z: int, x: int, y: int) -> str | None:
    minzoom, maxzoom = int(layer.render.get("minzoom", 0)), int(layer.render.get("maxzoom", 18))
    if not minzoom <= z <= maxzoom:
        return f"zoom {z} is outside {layer.name}'s tile zooms {minzoom}–{maxzoom}"
    if not (0 <= x < 2**z and 0 <= y < 2**z):
        return f"tile column {x} / row {y} does not exist at zoom {z} (0–{2**z - 1})"
    return None


class RasterTilesApp:
    """WSGI app mounted at ``/rasters`` by gisplatform.publish.server."""

    def __init__(self, layers: dict[str, RasterLayer] | None = None):
        from gisplatform.layers import load_raster_layers

        self.layers = layers if layers is not None else load_raster_layers()

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _error(start_response, "405 Method Not Allowed", "only GET and HEAD are allowed here")
        match = TILE_PATH.match(environ.get("PATH_INFO") or "")
        if not match:
            return _error(start_response, "404 Not Found", "raster tiles are at /rasters/<layer>/tiles/"
                                                           "WebMercatorQuad/{z}/{y}/{x}.png")
        layer = self.layers.get(match["layer"])
        if layer is None:
            return _error(start_response, "404 Not Found", f"no raster layer {match['layer']!r}; raster layers: "
                                                           f"{', '.join(self.layers)}")
        z, x, y = int(match["z"]), int(match["x"]), int(match["y"])
        problem = _check_tile(layer, z, x, y)
        if problem:
            return _error(start_response, "400 Bad Request", problem)
        body = render_tile(layer, z, x, y)
        if body is None:
            return _error(start_response, "404 Not Found", f"{layer.name} has no published version yet "
                                                           "(run its ETL job)")
        version = store.current_version(layer.name)
        start_response("200 OK", [("Content-Type", "image/png"), ("Content-Length", str(len(body))),
                                  ("Cache-Control", "public, max-age=300"), ("ETag", f'"{version.version}"'),
                                  ("Access-Control-Allow-Origin", "*")])
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]
