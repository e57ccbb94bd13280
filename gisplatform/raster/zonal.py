"""Zonal statistics of polygons over raster layers: heights and slopes, or the share of each planning class.

    from gisplatform.raster.zonal import zonal_statistics, zonal_statistics_for_features
    zonal_statistics("planning_map", [polygon])                     # shapely geometries in EPSG:9215
    zonal_statistics_for_features("planning_map", "cadastral_parcels", ids=[...])   # from the published layers

Which pixels belong to a polygon: those whose centre lies inside it (GDAL's rasterization rule). A polygon too
small to contain any pixel centre (a narrow strip, a parcel smaller than a DEM pixel) takes the one pixel under
its representative point; its ``method`` says so. Statistics ignore nodata pixels; ``coverage`` is the fraction
of the polygon's pixels that have data.

- elevation: ``elevation_min/mean/max`` (m) and ``slope_min/mean/max`` (degrees, from the height differences of
  neighbouring pixels, numpy.gradient over the pixel size; a pixel next to nodata has no slope);
- categorical layers (planning map): ``classes`` — each class present with its share of the polygon's pixels that
  have data, code and Vietnamese / English name — and ``dominant``, the class with the largest share.

All polygons are answered from one read of the raster window that covers them: one rasterization labels every
pixel with its polygon, and per-polygon statistics are grouped sums (``np.bincount``) and sorted runs. Polygons
that overlap another polygon (licences may) cannot share one label image; each of those is rasterized alone on
the same in-memory window. ``bench/zonal.py`` compares this with a plain rasterio read-and-mask per polygon.

The pygeoapi process ``zonal-statistics`` (:class:`ZonalStatisticsProcessor`) exposes the same function.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import rasterio
import shapely
from rasterio.features import rasterize
from rasterio.windows import Window

from gisplatform import crs as vncrs
from gisplatform.raster import store
from gisplatform.raster.store import pixel_coords as _pixel_coords
from gisplatform.raster.layers import RasterLayer, get_raster_layer

MAX_POLYGONS = 5_000  # per process request
MAX_WINDOW_PIXELS = 50_000_000  # one in-memory read (200 MB of float32)


class ZonalError(ValueError):
    """A request zonal statistics cannot answer (message says why and what to do)."""


@dataclass
class Grid:
    """The raster window covering the polygons, read once: values, slope (elevation), validity."""
    values: np.ndarray
    valid: np.ndarray
    slope: np.ndarray | None
    transform: Any

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape


def _read_grid(src, layer: RasterLayer, bounds) -> Grid | None:
    cols, rows = _pixel_coords(src.transform, bounds)
    # one pixel more each side: the slope needs neighbours, and representative points may sit on the edge
    col0, col1 = max(0, math.floor(min(cols)) - 1), min(src.width, math.ceil(max(cols)) + 1)
    row0, row1 = max(0, math.floor(min(rows)) - 1), min(src.height, math.ceil(max(rows)) + 1)
    if col0 >= col1 or row0 >= row1:
        return None
    if (col1 - col0) * (row1 - row0) > MAX_WINDOW_PIXELS:
        raise ZonalError(f"the polygons span {(col1 - col0) * (row1 - row0):,} pixels of {layer.name}, more than "
                         f"{MAX_WINDOW_PIXELS:,}: ask for fewer or closer polygons at a time")
    window = Window(col0, row0, col1 - col0, row1 - row0)
    values = src.read(1, window=window)
    valid = values != src.nodata if src.nodata is not None else np.ones(values.shape, bool)
    slope = _slope(values.astype("float64"), valid, src.res) if not layer.categorical else None
    return Grid(values, valid, slope, src.window_transform(window))


def _slope(z: np.ndarray, valid: np.ndarray, res: tuple[float, float]) -> np.ndarray:
    """Slope in degrees; NaN where the pixel or one of its four neighbours has no data."""
    if min(z.shape) < 2:
        return np.full(z.shape, np.nan)
    dz_dy, dz_dx = np.gradient(z, res[1], res[0])
    slope = np.degrees(np.arctan(np.hypot(dz_dx, dz_dy)))
    ok = valid.copy()
    ok[1:, :] &= valid[:-1, :]
    ok[:-1, :] &= valid[1:, :]
    ok[:, 1:] &= valid[:, :-1]
    ok[:, :-1] &= valid[:, 1:]
    return np.where(ok, slope, np.nan)


# --- labelling pixels ------------------------------------------------------------------------------------------


def _labels(geoms: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """(label image: polygon index + 1 or 0, indexes of polygons that overlap another and need their own mask)."""
    shapes = [(g, i + 1) for i, g in enumerate(geoms) if g is not None and not g.is_empty]
    if not shapes:
        return np.zeros(grid.shape, "int32"), np.zeros(0, int)
    labels = rasterize(shapes, out_shape=grid.shape, transform=grid.transform, fill=0, dtype="int32")
    counts = rasterize([(g, 1) for g, _ in shapes], out_shape=grid.shape, transform=grid.transform, fill=0,
                       dtype="int32", merge_alg=rasterio.enums.MergeAlg.add)
    shared = np.unique(labels[counts > 1])  # the last polygon drawn won those pixels; redo everyone involved
    overlapping = set(shared[shared > 0] - 1)
    if len(overlapping):
        tree = shapely.STRtree(geoms)
        for i in list(overlapping):
            overlapping.update(int(j) for j in tree.query(geoms[i], predicate="intersects"))
    return labels, np.array(sorted(overlapping), dtype=int)


def _pixels_of(geom, grid: Grid) -> np.ndarray:
    """Flat indexes of the pixels of one polygon (alone), for overlapping polygons."""
    mask = rasterize([(geom, 1)], out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint8")
    return np.flatnonzero(mask)


def _representative_pixel(geom, grid: Grid) -> np.ndarray:
    point = geom.representative_point()
    cols, rows = _pixel_coords(grid.transform, (point.x, point.y, point.x, point.y))
    col, row = cols[0], rows[0]
    row, col = int(math.floor(row)), int(math.floor(col))
    if 0 <= row < grid.shape[0] and 0 <= col < grid.shape[1]:
        return np.array([row * grid.shape[1] + col])
    return np.zeros(0, int)


# --- statistics --------------------------------------------------------------------------------------------------


def _round(v: float, digits: int = 2) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), digits)


def _continuous(values: np.ndarray, slopes: np.ndarray, total: int) -> dict[str, Any]:
    out: dict[str, Any] = {"pixels": int(total), "coverage": _round(len(values) / total, 4) if total else 0.0}
    names = ("elevation_min", "elevation_mean", "elevation_max", "slope_min", "slope_mean", "slope_max")
    if not len(values):
        return out | dict.fromkeys(names)
    slopes = slopes[np.isfinite(slopes)]
    stats = [values.min(), values.mean(), values.max()]
    stats += [slopes.min(), slopes.mean(), slopes.max()] if len(slopes) else [None] * 3
    return out | {name: _round(v) for name, v in zip(names, stats)}


def _categorical(values: np.ndarray, total: int, layer: RasterLayer) -> dict[str, Any]:
    out: dict[str, Any] = {"pixels": int(total), "coverage": _round(len(values) / total, 4) if total else 0.0}
    found, counts = np.unique(values, return_counts=True)
    classes = []
    for value, count in sorted(zip(found.tolist(), counts.tolist()), key=lambda vc: (-vc[1], vc[0])):
        category = layer.category(int(value))
        classes.append({"value": int(value), "code": category.code if category else None,
                        "vi": category.title.vi if category else None, "en": category.title.en if category else None,
                        "share": _round(count / len(values), 4)})
    return out | {"classes": classes, "dominant": classes[0]["code"] if classes else None}


def _summary(flat_idx: np.ndarray, grid: Grid, layer: RasterLayer) -> dict[str, Any]:
    valid = grid.valid.ravel()[flat_idx]
    values = grid.values.ravel()[flat_idx][valid]
    if layer.categorical:
        return _categorical(values, len(flat_idx), layer)
    return _continuous(values.astype("float64"), grid.slope.ravel()[flat_idx][valid], len(flat_idx))


def _grouped(labels: np.ndarray, n: int) -> list[np.ndarray]:
    """Flat pixel indexes per label 1..n, from one stable sort of the label image."""
    flat = labels.ravel()
    order = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[order], np.arange(1, n + 2))
    return [order[bounds[i]:bounds[i + 1]] for i in range(n)]


def _prepare(layer_name: str, geometries: Sequence, crs: int) -> tuple[RasterLayer, np.ndarray]:
    layer = get_raster_layer(layer_name)
    geoms = np.asarray(list(geometries), dtype=object)
    if len(geoms) > MAX_POLYGONS:
        raise ZonalError(f"{len(geoms)} polygons: at most {MAX_POLYGONS} per request")
    bad = [i for i, g in enumerate(geoms) if g is None or g.geom_type not in ("Polygon", "MultiPolygon")]
    if bad:
        raise ZonalError(f"geometry {bad[0]} is {getattr(geoms[bad[0]], 'geom_type', None)}: zonal statistics "
                         "need polygons (Polygon or MultiPolygon)")
    if crs != layer.storage_srid:
        geoms = vncrs.transform_geometries(geoms, crs, layer.storage_srid)
    return layer, geoms


def zonal_statistics(layer_name: str, geometries: Sequence, crs: int = vncrs.STORAGE_SRID) -> list[dict[str, Any]]:
    """Statistics of each polygon (shapely, in EPSG ``crs``) over the raster layer's published version."""
    layer, geoms = _prepare(layer_name, geometries, crs)
    path = store.current_path(layer.name)
    if not path.exists():
        raise ZonalError(f"raster layer {layer.name} has no published version yet: run its ETL job "
                         f"(gisplatform etl run {layer.name})")
    if not len(geoms):
        return []
    with rasterio.open(path) as src:
        grid = _read_grid(src, layer, shapely.total_bounds(geoms))
    if grid is None:  # no polygon overlaps the raster
        return [_summary(np.zeros(0, int), _empty_grid(layer), layer) | {"method": "outside_raster"}
                for _ in geoms]
    labels, overlapping = _labels(geoms, grid)
    groups = _grouped(labels, len(geoms))
    for i in overlapping:
        groups[i] = _pixels_of(geoms[i], grid)
    results = []
    for geom, pixels in zip(geoms, groups):
        method = "pixel_centres"
        if not len(pixels):
            pixels, method = _representative_pixel(geom, grid), "representative_point"
            if not len(pixels):
                method = "outside_raster"
        results.append(_summary(pixels, grid, layer) | {"method": method})
    return results


def _empty_grid(layer: RasterLayer) -> Grid:
    empty = np.zeros((1, 1), dtype=layer.dtype)
    return Grid(empty, np.zeros((1, 1), bool), np.full((1, 1), np.nan), rasterio.Affine.identity())


def zonal_statistics_for_features(layer_name: str, collection: str, ids: Sequence) -> list[dict[str, Any]]:
    """Statistics of features of a published vector layer (``api.<collection>``, by feature id), in id order given.

    For ``parcel-report``: ``zonal_statistics_for_features("planning_map", "cadastral_parcels", [parcel_id])``.
    """
    geoms = _feature_geometries(collection, list(ids))
    results = zonal_statistics(layer_name, [geoms[i] for i in ids if i in geoms])
    found = [i for i in ids if i in geoms]
    by_id = dict(zip(found, results))
    return [{"id": i, **by_id[i]} if i in by_id else {"id": i, "error": "no such feature"} for i in ids]


def _feature_geometries(collection: str, ids: list) -> dict[Any, Any]:
    import sqlalchemy as sa

    from gisplatform.layers import load_layers
    from gisplatform.publish.connection import api_engine
    from gisplatform.publish.views import API_SCHEMA

    layers = load_layers()
    if collection not in layers or layers[collection].geometry_type not in ("Polygon", "MultiPolygon"):
        polygons = [n for n, l in layers.items() if l.geometry_type in ("Polygon", "MultiPolygon")]
        raise ZonalError(f"collection {collection!r} is not a polygon layer; use one of {', '.join(polygons)}")
    if len(ids) > MAX_POLYGONS:
        raise ZonalError(f"{len(ids)} ids: at most {MAX_POLYGONS} per request")
    with api_engine().connect() as connection:
        rows = connection.execute(sa.text(
            f'SELECT id, ST_AsBinary(geom) FROM {API_SCHEMA}."{collection}" WHERE id::text = ANY(:ids)'),
            {"ids": [str(i) for i in ids]}).all()
    geoms = {str(i): shapely.from_wkb(bytes(g)) for i, g in rows}
    return {i: geoms[str(i)] for i in ids if str(i) in geoms}


# --- the pygeoapi process ------------------------------------------------------------------------------------------

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError  # noqa: E402

PROCESS_ID = "zonal-statistics"
PROCESS_METADATA = {
    "version": "1.0.0",
    "id": PROCESS_ID,
    "title": {"en": "Zonal statistics over raster layers", "vi": "Thống kê vùng trên lớp ảnh (raster)"},
    "description": {
        "en": "For polygons (GeoJSON) or features of a published polygon layer (parcels, licences, ...): min/mean/max "
              "elevation and slope, or the share of each land-use planning class. Pixels whose centre lies inside "
              "the polygon count; a polygon containing no pixel centre takes the pixel under its representative "
              "point.",
        "vi": "Cho các vùng (GeoJSON) hoặc đối tượng của lớp vùng đã công bố (thửa đất, giấy phép, ...): độ cao và "
              "độ dốc nhỏ nhất / trung bình / lớn nhất, hoặc tỷ lệ từng loại đất quy hoạch.",
    },
    "jobControlOptions": ["sync-execute"],
    "keywords": ["zonal statistics", "elevation", "slope", "land-use planning", "thống kê vùng"],
    "links": [],
    "inputs": {
        "layer": {"title": "Raster layer (elevation | planning_map)", "minOccurs": 1, "maxOccurs": 1,
                  "schema": {"type": "string", "enum": ["elevation", "planning_map"]}},
        "geometry": {"title": "Polygon or MultiPolygon (GeoJSON geometry, Feature or FeatureCollection)",
                     "minOccurs": 0, "maxOccurs": 1, "schema": {"type": "object"}},
        "crs": {"title": "CRS of the GeoJSON coordinates (default CRS84 lon/lat; or EPSG:9215 ...)",
                "minOccurs": 0, "maxOccurs": 1, "schema": {"type": "string"}},
        "collection": {"title": "A published polygon layer (e.g. cadastral_parcels), with ids",
                       "minOccurs": 0, "maxOccurs": 1, "schema": {"type": "string"}},
        "ids": {"title": "Feature ids of the collection", "minOccurs": 0, "maxOccurs": 1,
                "schema": {"type": "array", "items": {"type": ["integer", "string"]}}},
    },
    "outputs": {"statistics": {"title": "Statistics per polygon, in input order",
                               "schema": {"type": "object", "contentMediaType": "application/json"}}},
    "example": {"inputs": {"layer": "planning_map", "geometry": {
        "type": "Polygon", "coordinates": [[[106.745, 21.87], [106.746, 21.87], [106.746, 21.871],
                                            [106.745, 21.871], [106.745, 21.87]]]}}},
}


def _bad(message: str) -> ProcessorExecuteError:
    return ProcessorExecuteError(user_msg=message)


def _geojson_polygons(value: Any) -> tuple[list, list]:
    """(geometries, ids) from a GeoJSON geometry, Feature or FeatureCollection."""
    if not isinstance(value, dict) or "type" not in value:
        raise _bad("'geometry' must be a GeoJSON object (Polygon, MultiPolygon, Feature or FeatureCollection)")
    if value["type"] == "FeatureCollection":
        features = value.get("features") or []
    elif value["type"] == "Feature":
        features = [value]
    else:
        features = [{"geometry": value}]
    geoms, ids = [], []
    for i, feature in enumerate(features):
        try:
            geom = shapely.geometry.shape(feature.get("geometry") or {})
        except Exception as exc:  # noqa: BLE001 - shapely raises several types for bad GeoJSON
            raise _bad(f"geometry {i} is not valid GeoJSON: {exc}") from None
        geoms.append(geom)
        ids.append(feature.get("id", i))
    return geoms, ids


def _crs_code(value: Any) -> int:
    from gisplatform.raster.coverages import parse_crs

    from pygeoapi.provider.base import ProviderInvalidQueryError

    try:
        return parse_crs(value or "CRS84").to_epsg()
    except ProviderInvalidQueryError as exc:
        raise _bad(str(exc.message).replace("bbox-crs", "crs")) from None


class ZonalStatisticsProcessor(BaseProcessor):
    """``zonal-statistics``: :func:`zonal_statistics` as an OGC API - Processes process."""

    def __init__(self, processor_def: dict):
        super().__init__(processor_def, PROCESS_METADATA)

    def execute(self, data: dict, outputs: dict | None = None):
        layer = data.get("layer")
        try:
            if data.get("collection"):
                ids = data.get("ids")
                if not isinstance(ids, list) or not ids:
                    raise _bad("with 'collection', give 'ids': a non-empty list of feature ids")
                results = zonal_statistics_for_features(layer, data["collection"], ids)
            elif data.get("geometry") is not None:
                geoms, ids = _geojson_polygons(data["geometry"])
                results = [{"id": i, **r} for i, r in zip(ids, zonal_statistics(layer, geoms,
                                                                                  _crs_code(data.get("crs"))))]
            else:
                raise _bad("give 'geometry' (GeoJSON polygons) or 'collection' with 'ids'")
        except ZonalError as exc:
            raise _bad(str(exc)) from None
        except ValueError as exc:  # unknown layer (LayerDefinitionError), bad coordinates
            raise _bad(str(exc)) from None
        return "application/json", {"layer": layer, "results": results}

    def __repr__(self):
        return f"<ZonalStatisticsProcessor> {self.name}"


def process_resource() -> tuple[str, dict]:
    """(id, pygeoapi resource) of the process, for gisplatform.publish.config."""
    return PROCESS_ID, {"type": "process", "processor": {"name": f"{__name__}.ZonalStatisticsProcessor"}}
