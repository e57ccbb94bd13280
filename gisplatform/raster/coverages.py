"""OGC API - Coverages for raster layers: our provider on top of pygeoapi's rasterio provider.

pygeoapi 0.24's ``RasterioProvider`` is kept for what it does well (opening the file, band fields, the
collection description) and its ``query`` is replaced, because as shipped it

- reprojects a ``bbox`` by its two corners only (a box in degrees turns into a rotated quadrilateral in
  VN-2000 TM-3: the corners miss part of it) and takes ``bbox-crs`` only as a bare EPSG number (the OGC URI a
  client sends, ``http://www.opengis.net/def/crs/EPSG/0/4326``, made it fail with a server error);
- clips with a polygon mask, so a subset's pixels are not guaranteed to be the stored pixels on the stored grid;
- writes the requested bbox, not the pixels' own extent, into the CoverageJSON domain, and names the CRS
  ``.../OGC/1.3/9215`` (no such URI).

Here a subset is the window of whole stored pixels covering the request (densified transform of the bbox into
EPSG:9215): its values, grid and transform are exactly those of the COG. ``subset=x(a:b),y(c:d)`` takes
EPSG:9215 metres. A request outside the coverage is a 400, one larger than ``MAX_PIXELS`` (GeoTIFF) or
``MAX_JSON_PIXELS`` (CoverageJSON) a 413, each with the reason.

The file is ``<raster dir>/<layer>/current.tif`` (see gisplatform.raster.store), opened per request, so a newly
published version is served without restarting or reconfiguring the server.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.io import MemoryFile
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from pygeoapi.provider.base import ProviderInvalidQueryError, ProviderRequestEntityTooLargeError
from pygeoapi.provider.rasterio_ import RasterioProvider

from gisplatform.raster import store
from gisplatform.raster.store import pixel_coords as _pixel_coords
from gisplatform.raster.layers import RasterLayer

MAX_PIXELS = 4_000_000  # GeoTIFF; CoverageJSON (text, ~8 bytes a value) stops at MAX_JSON_PIXELS
MAX_JSON_PIXELS = 500_000
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"


def coverage_provider_definition(layer: RasterLayer) -> dict[str, Any]:
    return {
        "type": "coverage",
        "name": f"{__name__}.CoverageProvider",
        "data": str(store.current_path(layer.name)),
        "options": {"layer": layer.name},
        "format": {"name": "GTiff", "mimetype": "image/tiff; application=geotiff"},
    }


def parse_crs(value: Any) -> CRS:
    """A bbox-crs as clients send it: an OGC URI, ``EPSG:<code>`` or a bare code; CRS84 is lon/lat WGS 84."""
    text = str(value).strip()
    if text in ("", CRS84, "CRS84", "OGC:CRS84"):
        return CRS.from_epsg(4326)
    code = text.rsplit("/", 1)[-1] if text.startswith("http") else text.upper().removeprefix("EPSG:")
    if not code.isdigit():
        raise ProviderInvalidQueryError(user_msg=f"bbox-crs {text!r} is not understood: give an EPSG code URI "
                                                 f"such as {EPSG_URI.format(9215)} or {CRS84}")
    try:
        return CRS.from_epsg(int(code))
    except rasterio.errors.CRSError:
        raise ProviderInvalidQueryError(user_msg=f"bbox-crs {text!r}: unknown EPSG code {code}") from None


class CoverageProvider(RasterioProvider):
    """Coverage of one raster layer's published version (see the module docstring)."""

    def __init__(self, provider_def):
        super().__init__(provider_def)
        _patch_fields(self)  # bilingual title, unit and classes of the layer, not the file's empty band tags

    def _get_coverage_properties(self) -> dict:
        properties = super()._get_coverage_properties()
        epsg = self._data.crs.to_epsg() if self._data.crs else None
        if epsg:
            properties["bbox_crs"] = EPSG_URI.format(epsg)
        properties["x_axis_label"], properties["y_axis_label"] = "x", "y"
        return properties

    # --- the request --------------------------------------------------------------------------------------

    def _request_box(self, bbox, bbox_crs, subsets) -> tuple[float, float, float, float] | None:
        if bbox and ("x" in subsets or "y" in subsets):
            raise ProviderInvalidQueryError(user_msg="bbox and subset on x/y cannot be combined: use one")
        if bbox:
            if len(bbox) != 4 or not (bbox[0] < bbox[2] and bbox[1] < bbox[3]):
                raise ProviderInvalidQueryError(user_msg="bbox must be minx,miny,maxx,maxy with min smaller than max")
            source = parse_crs(bbox_crs if bbox_crs not in (None, 4326) else CRS84)
            if source == self._data.crs:
                return tuple(bbox)
            return transform_bounds(source, self._data.crs, *bbox, densify_pts=21)
        if subsets:
            box = list(self._data.bounds)
            for axis, (low_i, high_i) in (("x", (0, 2)), ("y", (1, 3))):
                if axis in subsets:
                    low, high = (float(v) for v in subsets[axis][:2])
                    if not low < high:
                        raise ProviderInvalidQueryError(user_msg=f"subset {axis}({low}:{high}): low must be smaller than high")
                    box[low_i], box[high_i] = low, high
            return tuple(box)
        return None

    def _window(self, box) -> Window:
        """The whole stored pixels covering ``box`` (in the coverage's CRS), clipped to the coverage."""
        if box is None:
            return Window(0, 0, self._data.width, self._data.height)
        cols, rows = _pixel_coords(self._data.transform, box)
        col0, col1 = max(0, math.floor(min(cols))), min(self._data.width, math.ceil(max(cols)))
        row0, row1 = max(0, math.floor(min(rows))), min(self._data.height, math.ceil(max(rows)))
        if col0 >= col1 or row0 >= row1:
            extent = ", ".join(f"{v:.0f}" for v in self._data.bounds)
            raise ProviderInvalidQueryError(user_msg=f"the requested area does not overlap the coverage (its extent "
                                                     f"in EPSG:{self._data.crs.to_epsg()} is {extent})")
        return Window(col0, row0, col1 - col0, row1 - row0)

    def query(self, properties=[], subsets={}, bbox=None, bbox_crs=4326, datetime_=None, format_="json",
              **kwargs):
        bands = [int(b) for b in properties] if properties else list(self._data.indexes)
        box = self._request_box(bbox or [], bbox_crs, subsets or {})
        if box is None and format_ != "json" and bands == list(self._data.indexes):
            with open(self.data, "rb") as fh:  # the whole coverage: the published COG itself, byte for byte
                return fh.read()
        window = self._window(box)
        limit = MAX_JSON_PIXELS if format_ == "json" else MAX_PIXELS
        if window.width * window.height > limit:
            raise ProviderRequestEntityTooLargeError(
                user_msg=f"the subset has {int(window.width * window.height):,} pixels, more than {limit:,} "
                         f"({'CoverageJSON' if format_ == 'json' else 'GeoTIFF'}): request a smaller bbox or "
                         "subset, or GeoTIFF (f=GTiff)")
        with rasterio.open(self.data) as src:
            data = src.read(bands, window=window)
            transform = src.window_transform(window)
            if format_ == "json":
                return self._covjson(src, data, transform, bands)
            return self._geotiff(src, data, transform, bands)

    def _geotiff(self, src, data: np.ndarray, transform, bands: list[int]) -> bytes:
        profile = {**src.profile, "driver": "GTiff", "width": data.shape[2], "height": data.shape[1],
                   "count": len(bands), "transform": transform, "compress": "deflate", "tiled": False}
        profile.pop("blockxsize", None), profile.pop("blockysize", None)
        with MemoryFile() as memory:
            with memory.open(**profile) as out:
                out.write(data)
                out.update_tags(**src.tags())
                try:
                    out.write_colormap(1, src.colormap(1))
                except ValueError:
                    pass  # no colour table (elevation)
            return memory.read()

    def _covjson(self, src, data: np.ndarray, transform, bands: list[int]) -> dict:
        height, width = data.shape[1:]
        res_x, res_y = transform.a, -transform.e
        x0, y0 = transform.c + res_x / 2, transform.f - res_y / 2  # pixel centres, as CoverageJSON wants
        coverage = {
            "type": "Coverage",
            "domain": {
                "type": "Domain",
                "domainType": "Grid",
                "axes": {"x": {"start": x0, "stop": x0 + (width - 1) * res_x, "num": width},
                         "y": {"start": y0, "stop": y0 - (height - 1) * res_y, "num": height}},
                "referencing": [{"coordinates": ["x", "y"],
                                 "system": {"type": "ProjectedCRS", "id": EPSG_URI.format(src.crs.to_epsg())}}],
            },
            "parameters": {},
            "ranges": {},
        }
        for i, band in enumerate(bands):
            values = data[i]
            key = str(band)
            field = self.fields.get(key, {})
            coverage["parameters"][key] = {"type": "Parameter", "description": {"en": field.get("title") or key},
                                           "observedProperty": {"label": {"en": field.get("title") or key}}}
            flat = values.astype("float64").ravel()
            valid = flat != src.nodata if src.nodata is not None else np.ones(flat.shape, bool)
            coverage["ranges"][key] = {
                "type": "NdArray", "dataType": "integer" if values.dtype.kind in "ui" else "float",
                "axisNames": ["y", "x"], "shape": [height, width],
                "values": [(int(v) if values.dtype.kind in "ui" else float(v)) if ok else None
                           for v, ok in zip(flat.tolist(), valid.tolist())],
            }
        return coverage


def _field_title(layer: RasterLayer) -> str:
    unit = f" ({layer.unit})" if layer.unit else ""
    return f"{layer.title.vi} / {layer.title.en}{unit}"


def _patch_fields(provider: CoverageProvider) -> None:
    from gisplatform.raster.layers import get_raster_layer

    name = (provider.options or {}).get("layer")
    if not name:
        return
    layer = get_raster_layer(name)
    for field in provider._fields.values():
        field["title"] = _field_title(layer)
        if layer.unit:
            field["x-ogc-unit"] = layer.unit
        if layer.categorical:
            field["x-ogc-classes"] = {str(c.value): {"code": c.code, "vi": c.title.vi, "en": c.title.en,
                                                     "colour": c.colour} for c in layer.categories}




def coverage_extent(layer: RasterLayer) -> list[float] | None:
    """The CRS84 box of the published version (None when nothing is published yet)."""
    path = store.current_path(layer.name)
    if not path.exists():
        return None
    with rasterio.open(path) as src:
        box = transform_bounds(src.crs, CRS.from_epsg(4326), *src.bounds, densify_pts=21)
    return [math.floor(box[0] * 1e6) / 1e6, math.floor(box[1] * 1e6) / 1e6,
            math.ceil(box[2] * 1e6) / 1e6, math.ceil(box[3] * 1e6) / 1e6]


def coverage_collection(layer: RasterLayer, license_link: dict) -> dict[str, Any] | None:
    """The pygeoapi resource of a raster layer, or None while it has no published version."""
    bbox = coverage_extent(layer)
    if bbox is None:
        return None
    keywords = {lang: list(words) for lang, words in layer.keywords.items() if words} or [layer.name]
    return {
        "type": "collection",
        "title": {"vi": layer.title.vi, "en": layer.title.en},
        "description": {"vi": layer.description.vi, "en": layer.description.en},
        "keywords": keywords,
        "links": [license_link],
        "extents": {"spatial": {"bbox": bbox, "crs": CRS84}},
        "providers": [coverage_provider_definition(layer)],
    }
