"""Geometry from the CRS the source states to the layer's storage CRS, at millimetre precision."""
from __future__ import annotations

import numpy as np
import shapely

from gisplatform import crs

_MULTI = {"Polygon": "MultiPolygon", "LineString": "MultiLineString", "Point": "MultiPoint"}
_MULTI_BUILDERS = {
    "MultiPolygon": shapely.multipolygons,
    "MultiLineString": shapely.multilinestrings,
    "MultiPoint": shapely.multipoints,
}


def to_storage(geoms: np.ndarray, stated: np.ndarray, target_srid: int) -> np.ndarray:
    """Reproject each row from its stated EPSG code (0 = unknown → None) to the storage CRS."""
    out = np.full(len(geoms), None, dtype=object)
    for srid in np.unique(stated):
        rows = np.flatnonzero(stated == srid)
        if srid == 0:
            continue
        out[rows] = crs.transform_geometries(geoms[rows], int(srid), target_srid)
    return out


def round_mm(geoms: np.ndarray) -> np.ndarray:
    """Round coordinates to the millimetre: survey data carries no more, and it makes hashes stable.

    Only the geometries with a coordinate off the millimetre are rebuilt (a survey file's are nearly all on it
    already: a check of the coordinates costs a quarter of rebuilding every geometry), and those with Z or M,
    which the rounding drops (storage is 2D)."""
    out = geoms.copy()
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    off = shapely.has_z(geoms) | shapely.has_m(geoms)
    off[index[(np.round(coords, 3) != coords).any(axis=1)]] = True  # NaN too: as before, through the rounding
    if off.any():
        out[off] = shapely.transform(geoms[off], lambda c: np.round(c, 3))
    return out


def representative_xy(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A point per geometry for plausibility checks: the bounding-box centre (defined even for invalid ones)."""
    bounds = shapely.bounds(geoms)
    return (bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2


def promote_to_multi(geoms: np.ndarray, geometry_type: str) -> np.ndarray:
    """Single parts to the layer's multi type (Polygon → MultiPolygon); other types are left for validation."""
    if geometry_type not in _MULTI_BUILDERS:
        return geoms
    single = geometry_type.removeprefix("Multi")
    types = shapely.get_type_id(geoms)
    wanted_single = {"Polygon": 3, "LineString": 1, "Point": 0}[single]
    out = geoms.copy()
    rows = np.flatnonzero(types == wanted_single)
    if len(rows):
        out[rows] = _MULTI_BUILDERS[geometry_type](geoms[rows].reshape(-1, 1))
    return out


def polygonal_part(geom) -> shapely.Geometry | None:
    """The polygons of a geometry (make_valid may return a collection with stray lines or points)."""
    if geom is None:
        return None
    parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) in (3, 6)]
    polygons = []
    for p in parts:
        polygons.extend(shapely.get_parts(p) if shapely.get_type_id(p) == 6 else [p])
    return shapely.multipolygons(polygons) if polygons else None
