"""Geometries given to the analysis processes: GeoJSON or a licence corner table, in a stated CRS, to EPSG:9215.

Every problem is an :class:`InputError` with a message for a person (the processes turn it into HTTP 400).
Messages quote only what the caller sent and never database values.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape

from gisplatform import crs
from gisplatform.sources.corner_tables import Corner, build_licence

STORAGE_SRID = crs.STORAGE_SRID
MAX_VERTICES = 100_000
_URI = re.compile(r"^https?://www\.opengis\.net/def/crs/(?:EPSG/0/(\d{4,5})|OGC/1\.3/CRS84)$")


class InputError(ValueError):
    """Bad input to a process; the message says what is wrong and what is accepted."""


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_crs(value: Any, default: int = 4326) -> int:
    """EPSG code of a CRS given as EPSG:n, an OGC URI, CRS84 or a Vietnamese statement ('VN-2000 KTT 107°15′ …')."""
    if value in (None, ""):
        return default
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise InputError(f"crs must be a string such as 'EPSG:9215', not {_show(value)}")
    text = str(value).strip()
    uri = _URI.match(text)
    if uri:
        return int(uri.group(1)) if uri.group(1) else 4326
    if text.upper() in ("CRS84", "OGC:CRS84", "WGS84", "WGS 84"):
        return 4326
    try:
        return crs.parse_crs_statement(text)
    except ValueError as exc:
        raise InputError(f"crs: {exc}") from None


def to_storage(geometry: shapely.Geometry, src: int) -> shapely.Geometry:
    """Reproject to EPSG:9215 (VN-2000 datum shift included) and check the result lies in the province."""
    try:
        out = crs.transform_geometries(np.array([geometry], dtype=object), src, STORAGE_SRID)[0]
    except Exception as exc:  # noqa: BLE001 - pyproj: unknown or impossible transformation
        raise InputError(f"cannot transform from EPSG:{src} to EPSG:{STORAGE_SRID}: {exc}") from None
    if out is None or out.is_empty or not np.isfinite(shapely.bounds(out)).all():
        raise InputError(f"the geometry could not be transformed from EPSG:{src}; check the CRS and coordinates")
    xmin, ymin, xmax, ymax = shapely.bounds(out)
    e0, n0, e1, n1 = crs.PROVINCE_BOUNDS
    if xmin < e0 or ymin < n0 or xmax > e1 or ymax > n1:
        raise InputError(
            f"the geometry lies outside Lạng Sơn province once read as EPSG:{src} (VN-2000 E {xmin:.0f}–{xmax:.0f}, "
            f"N {ymin:.0f}–{ymax:.0f}); check the CRS, and that X is the northing and Y the easting")
    return out


def geometry_from_geojson(value: Any, src: int, allowed: tuple[str, ...]) -> shapely.Geometry:
    """A GeoJSON geometry (or Feature) of one of the ``allowed`` types, in EPSG:9215."""
    if isinstance(value, dict) and value.get("type") == "Feature":
        value = value.get("geometry")
    if not isinstance(value, dict) or "type" not in value:
        raise InputError("geometry must be a GeoJSON geometry object, e.g. "
                         "{\"type\": \"Polygon\", \"coordinates\": [[[106.76, 21.85], ...]]}")
    if value["type"] not in allowed:
        raise InputError(f"geometry type {_show(value['type'])} is not accepted here; use {', '.join(allowed)}")
    try:
        geometry = shape(value)
    except Exception as exc:  # noqa: BLE001 - shapely's messages about malformed coordinates
        raise InputError(f"geometry is not valid GeoJSON: {exc}") from None
    if geometry.is_empty:
        raise InputError("geometry is empty")
    if shapely.get_num_coordinates(geometry) > MAX_VERTICES:
        raise InputError(f"geometry has more than {MAX_VERTICES} vertices")
    return to_storage(geometry, src)


def geometry_from_corners(rows: Any, src: int) -> tuple[shapely.Geometry, list[str]]:
    """A licence area from its corner table (X = northing, Y = easting, Vietnamese number formats allowed).

    Returns the area in EPSG:9215 and the problems of the table that are conflicts rather than input errors
    (a boundary that crosses itself). Rows: ``{"point": "1", "x": "2.380.800,00", "y": "404 490", "area": "I"}``
    or ``[x, y]`` pairs.
    """
    if not isinstance(rows, list) or len(rows) < 3:
        raise InputError("corners must be a list of at least 3 corner points: "
                         "[{\"point\": \"1\", \"x\": <northing>, \"y\": <easting>}, ...] or [[x, y], ...]")
    if len(rows) > MAX_VERTICES:
        raise InputError(f"corners: more than {MAX_VERTICES} points")
    corners = []
    for i, row in enumerate(rows, start=1):
        if isinstance(row, (list, tuple)) and len(row) == 2:
            row = {"x": row[0], "y": row[1]}
        if not isinstance(row, dict) or "x" not in row or "y" not in row:
            raise InputError(f"corners: row {i} must have x (northing) and y (easting), not {_show(row)}")
        corners.append(Corner(i, str(row.get("area") or ""), str(row.get("point") or i), row["x"], row["y"]))
    area, problems = build_licence(corners, "corner table", "x", "y")
    crossing = [message for message, _ in problems if "crosses itself" in message]
    if area is None or len(crossing) < len(problems):
        raise InputError("; ".join(message for message, _ in problems if message not in crossing))
    return to_storage(area, src), crossing
