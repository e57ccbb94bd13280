"""Sample rasters: a synthetic karst DEM (in UTM 48N, as elevation products come) and a planning map (EPSG:9215).

Both cover the same 10 km square around Lạng Sơn city, where the sample's survey communes 06187 and 06188 lie,
so every parcel there has heights, slopes and a planning class. The terrain is an analytic function of the
EPSG:9215 coordinates (:func:`height`): tests can compare the reprojected DEM with the function itself.

    - the Kỳ Cùng-like valley floor at ~250 m, rising gently to the north, with rolling undulation;
    - tower karst: steep-sided limestone hills (``h / (1 + (d / r)^4)``), 80-300 m high, 150-400 m across;
    - the DEM is int16 metres, nodata -32768 outside the square (the UTM grid is turned against TM-3);
    - the planning map is uint8 classes of layers/planning_map.yml with its colour table, nodata 0 where the
      scanned sheet ends (its south-west corner), drawn from the same terrain: protection forest on the karst,
      production forest on the slopes, rice on the valley floor, the town, an industrial zone, a road, the river.

Deterministic: the numbers come from ``rand.rng(seed, "raster", ...)`` and GDAL writes no time stamps into a
GeoTIFF; PAM side-car files (.aux.xml) are switched off while writing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.warp
from rasterio.crs import CRS
from rasterio.transform import from_origin

from gisplatform import crs as vncrs
from gisplatform.sample.rand import rng

DEM_FILE = "rasters/dem_utm48n.tif"
PLANNING_FILE = "rasters/quy_hoach_sdd.tif"
WINDOW = (441_000.0, 2_415_000.0, 451_000.0, 2_425_000.0)  # E min, N min, E max, N max in EPSG:9215
DEM_EPSG, DEM_RES, DEM_NODATA = 32648, 30.0, -32768
PLAN_RES, PLAN_NODATA = 10.0, 0
CITY = (447_500.0, 2_420_500.0)
VALLEY_FLOOR = 250.0


@dataclass(frozen=True)
class Terrain:
    waves: np.ndarray  # (k, 4): direction (rad), wavelength (m), amplitude (m), phase
    towers: np.ndarray  # (k, 4): E, N, radius (m), height (m)
    river: np.ndarray  # (k, 3): sinuosity amplitude (m), wavelength (m), phase of the river's centre line


def terrain(seed: int) -> Terrain:
    r = rng(seed, "raster", "terrain")
    waves = np.column_stack([r.uniform(0, np.pi, 6), r.uniform(1500, 5000, 6), r.uniform(8, 25, 6),
                             r.uniform(0, 2 * np.pi, 6)])
    n = 70
    towers = np.column_stack([r.uniform(WINDOW[0], WINDOW[2], n), r.uniform(WINDOW[1], WINDOW[3], n),
                              r.uniform(150, 400, n), r.uniform(80, 300, n)])
    # no towers in the town or on the river: keep those that are far enough from both
    keep = (np.hypot(towers[:, 0] - CITY[0], towers[:, 1] - CITY[1]) > 1800) & \
        (np.abs(towers[:, 1] - river_line(towers[:, 0], None)) > towers[:, 2] + 300)
    river = np.array([[250.0, 4000.0, r.uniform(0, 2 * np.pi)]])
    return Terrain(waves, towers[keep], river)


def river_line(e: np.ndarray, t: Terrain | None) -> np.ndarray:
    """Northing of the river's centre line at easting ``e`` (W-E through the city, gently meandering)."""
    amp, wavelength, phase = (t.river[0] if t is not None else (250.0, 4000.0, 0.0))
    return CITY[1] - 300 + 0.15 * (e - CITY[0]) + amp * np.sin(2 * np.pi * e / wavelength + phase)


def height(e: np.ndarray, n: np.ndarray, t: Terrain) -> np.ndarray:
    """Terrain height (m) at EPSG:9215 coordinates."""
    e, n = np.asarray(e, dtype="float64"), np.asarray(n, dtype="float64")
    z = VALLEY_FLOOR + 0.004 * (n - WINDOW[1])
    for direction, wavelength, amplitude, phase in t.waves:
        along = e * np.cos(direction) + n * np.sin(direction)
        z = z + amplitude * np.sin(2 * np.pi * along / wavelength + phase)
    distance = np.abs(n - river_line(e, t))
    z = z - 25 * np.exp(-((distance / 500) ** 2))  # the valley
    for te, tn, radius, h in t.towers:
        d2 = ((e - te) ** 2 + (n - tn) ** 2) / radius**2
        z = z + h / (1 + d2 * d2)
    return z


def _dem(t: Terrain) -> tuple[np.ndarray, object]:
    box = rasterio.warp.transform_bounds(CRS.from_epsg(9215), CRS.from_epsg(DEM_EPSG), *WINDOW, densify_pts=21)
    left, top = np.floor(box[0] / DEM_RES) * DEM_RES, np.ceil(box[3] / DEM_RES) * DEM_RES
    width = int(np.ceil((box[2] - left) / DEM_RES))
    height_px = int(np.ceil((top - box[1]) / DEM_RES))
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height_px) + 0.5)
    x, y = left + cols * DEM_RES, top - rows * DEM_RES
    e, n = vncrs.transform_xy(x.ravel(), y.ravel(), DEM_EPSG, 9215)
    z = np.rint(height(e, n, t)).astype("int16")
    inside = (e >= WINDOW[0]) & (e <= WINDOW[2]) & (n >= WINDOW[1]) & (n <= WINDOW[3])
    z[~inside] = DEM_NODATA
    return z.reshape(height_px, width), from_origin(left, top, DEM_RES, DEM_RES)


def planning_classes(e: np.ndarray, n: np.ndarray, t: Terrain, seed: int) -> np.ndarray:
    """The planning class (value of layers/planning_map.yml) at EPSG:9215 coordinates."""
    z = height(e, n, t)
    base = VALLEY_FLOOR + 0.004 * (n - WINDOW[1])
    relief = z - base
    river = np.abs(n - river_line(e, t))
    city = np.hypot(e - CITY[0], n - CITY[1])
    classes = np.where(relief > 40, 4, np.where(np.sin(e / 700.0) * np.cos(n / 900.0) > 0.2, 3, 2))  # RSX, CLN, HNK
    classes = np.where((river < 700) & (relief < 15), 1, classes)  # rice on the valley floor
    classes = np.where(relief > 90, 5, classes)  # protection forest on the karst towers
    r = rng(seed, "raster", "villages")
    for ve, vn, radius in zip(r.uniform(WINDOW[0], WINDOW[2], 8), r.uniform(WINDOW[1], WINDOW[3], 8),
                              r.uniform(120, 250, 8)):
        classes = np.where((np.hypot(e - ve, n - vn) < radius) & (relief < 40), 6, classes)  # villages
    classes = np.where(city < 1500, 7, classes)  # the town
    industrial = (city >= 1500) & (city < 2300) & (e > CITY[0]) & (n < CITY[1])
    classes = np.where(industrial, 8, classes)
    road = np.abs((n - CITY[1]) - 0.8 * (e - CITY[0])) / np.hypot(1, 0.8)
    classes = np.where(road < 12, 9, classes)  # the main road, NE-SW through the town
    classes = np.where(river < 40, 10, classes)  # the river
    outside = (e - WINDOW[0]) + (n - WINDOW[1]) < 2500  # the scanned sheet does not reach the SW corner
    return np.where(outside, PLAN_NODATA, classes).astype("uint8")


def _planning(t: Terrain, seed: int) -> tuple[np.ndarray, object]:
    width = int((WINDOW[2] - WINDOW[0]) / PLAN_RES)
    height_px = int((WINDOW[3] - WINDOW[1]) / PLAN_RES)
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height_px) + 0.5)
    e, n = WINDOW[0] + cols * PLAN_RES, WINDOW[3] - rows * PLAN_RES
    return planning_classes(e, n, t, seed), from_origin(WINDOW[0], WINDOW[3], PLAN_RES, PLAN_RES)


def _write(path: Path, data: np.ndarray, transform, epsg: int, nodata, colormap: dict | None = None,
           predictor: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype=data.dtype.name,
                   crs=CRS.from_epsg(epsg), transform=transform, nodata=nodata, tiled=True, blockxsize=256,
                   blockysize=256, compress="deflate", predictor=predictor)
    with rasterio.Env(GDAL_PAM_ENABLED="NO"):
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data, 1)
            if colormap:
                dst.write_colormap(1, colormap)


def write_rasters(out_dir: Path, seed: int) -> list[dict]:
    """Write both sample rasters; their manifest entries."""
    from gisplatform.layers import load_raster_layers

    t = terrain(seed)
    dem, dem_transform = _dem(t)
    _write(out_dir / DEM_FILE, dem, dem_transform, DEM_EPSG, DEM_NODATA, predictor=2)
    plan, plan_transform = _planning(t, seed)
    layer = load_raster_layers()["planning_map"]
    colours = {c.value: (*c.rgb, 255) for c in layer.categories} | {PLAN_NODATA: (0, 0, 0, 0)}
    _write(out_dir / PLANNING_FILE, plan, plan_transform, 9215, PLAN_NODATA, colours)
    return [
        dict(path=DEM_FILE, layer="elevation", format="GeoTIFF", rows=1, crs=f"EPSG:{DEM_EPSG}", dtype="int16",
             nodata=DEM_NODATA, size=[int(dem.shape[1]), int(dem.shape[0])], resolution=DEM_RES,
             note="synthetic karst DEM (metres), reprojected to EPSG:9215 by the ETL (bilinear)"),
        dict(path=PLANNING_FILE, layer="planning_map", format="GeoTIFF", rows=1, crs="EPSG:9215", dtype="uint8",
             nodata=PLAN_NODATA, size=[int(plan.shape[1]), int(plan.shape[0])], resolution=PLAN_RES,
             note="planning classes with a colour table; nodata in the SW corner (sheet edge)"),
    ]
