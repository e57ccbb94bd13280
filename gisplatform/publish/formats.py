"""GeoPackage downloads: a pygeoapi formatter plugin, ``f=gpkg`` on the items of every layer.

pygeoapi 0.24 formats a page of items with the formatters of the collection (the ``formatters:`` list of the
resource, each loaded by dotted path; ``PLUGINS['formatter']`` holds the built-in CSV one) when ``f`` names one:
``GET /ogc/collections/{layer}/items?f=gpkg&bbox=...&filter=...&limit=...``. It hands :meth:`write` the GeoJSON
feature collection our provider built (the same features, filters, paging and ``crs`` as ``f=json``) and the
provider definition; the answer is the GeoPackage file as an attachment (``{layer}.gpkg``).

The file holds one layer named after the collection, with the requested CRS (CRS84 by default, stored as
EPSG:4326, whose GeoPackage axis order is longitude, latitude; ``crs=.../EPSG/0/9215`` gives the coordinates as
stored), the feature ``id`` and the public fields typed after the layer definition (integers, numbers, dates and
booleans stay typed, empty values are NULL). An empty result is a valid GeoPackage with the layer's fields and
no feature. Written with pyogrio (GDAL) into memory; the size is bounded by the server's ``limit`` maximum.

``formatter_definition()`` is the entry ``gisplatform.publish.config`` adds to each layer collection.
"""
from __future__ import annotations

import io
import logging
from typing import Any

import numpy as np
import shapely
import shapely.geometry
import shapely.ops
from pygeoapi.formatter.base import BaseFormatter, FormatterSerializationError

from gisplatform.layers import LayerDefinitionError, get_layer

LOGGER = logging.getLogger(__name__)

NAME = "gpkg"
MEDIA_TYPE = "application/geopackage+sqlite3"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def formatter_definition() -> dict[str, Any]:
    """The ``formatters:`` entry of a layer collection in the pygeoapi configuration."""
    return {"name": f"{__name__}.GeoPackageFormatter", "attachment": True}


class GeoPackageFormatter(BaseFormatter):
    """GeoJSON feature collection (a page of items) -> GeoPackage bytes."""

    def __init__(self, formatter_def: dict):
        super().__init__({"name": NAME, "attachment": formatter_def.get("attachment", True)})
        self.f = NAME
        self.mimetype = MEDIA_TYPE
        self.extension = "gpkg"

    def write(self, options: dict | None = None, data: dict | None = None) -> bytes:
        options = options or {}
        data = data or {}
        provider = options.get("provider_def") or {}
        layer_name = (provider.get("data") or {}).get("layer") if isinstance(provider.get("data"), dict) else None
        try:
            layer = get_layer(layer_name or "")
        except LayerDefinitionError as exc:
            LOGGER.error("GeoPackage output without a known layer: %s", exc)
            raise FormatterSerializationError("no layer definition for this collection") from exc
        try:
            return geopackage(data.get("features") or [], layer, options.get("content_crs"))
        except FormatterSerializationError:
            raise
        except Exception as exc:  # noqa: BLE001 - GDAL/shapely errors become pygeoapi's serialization error
            LOGGER.exception("GeoPackage output of %s failed", layer.name)
            raise FormatterSerializationError("the GeoPackage could not be written") from exc

    def __repr__(self) -> str:
        return f"<GeoPackageFormatter> {self.name}"


def _output_crs(uri: str | None) -> tuple[str, bool]:
    """(CRS to write, whether the coordinates arrive latitude first and must be swapped) for a ``crs`` URI."""
    if not uri or uri.rstrip("/").endswith(("CRS84", "CRS84h")):
        return "EPSG:4326", False
    code = uri.rstrip("/").rsplit("/", 1)[-1]
    if not code.isdigit():
        raise FormatterSerializationError(f"unsupported output CRS {uri!r}")
    # our provider writes EPSG:4326 latitude first (OGC API Part 2); a GeoPackage stores longitude, latitude
    return f"EPSG:{code}", code == "4326"


def _column(values: list[Any], kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(array, null mask or None) of one field for pyogrio."""
    missing = np.array([v is None for v in values], dtype=bool)
    if kind == "integer":
        return np.array([0 if v is None else int(v) for v in values], dtype="int64"), missing
    if kind == "number":
        return np.array([np.nan if v is None else float(v) for v in values], dtype="float64"), None
    if kind == "boolean":
        return np.array([bool(v) for v in values], dtype=bool), missing
    if kind == "date":
        return np.array(["NaT" if v is None else str(v)[:10] for v in values], dtype="datetime64[D]"), None
    return np.array([None if v is None else str(v) for v in values], dtype=object), None


def geopackage(features: list[dict], layer, content_crs: str | None) -> bytes:
    """The GeoPackage (bytes) of GeoJSON ``features`` of ``layer`` in the CRS named by ``content_crs``."""
    crs, swap = _output_crs(content_crs)
    public = {f.name: f for f in layer.public_fields}
    present = {k for feature in features for k in (feature.get("properties") or {})}
    names = [n for n in public if n in present] if features else list(public)

    geometries = []
    for feature in features:
        geometry = feature.get("geometry")
        geom = shapely.geometry.shape(geometry) if geometry else None
        if geom is not None and swap:
            geom = shapely.ops.transform(lambda x, y, z=None: (y, x), geom)
        if geom is not None and layer.geometry_type.startswith("Multi") and geom.geom_type == layer.geometry_type[5:]:
            geom = getattr(shapely, layer.geometry_type)([geom])  # one type per GeoPackage layer
        geometries.append(None if geom is None else shapely.to_wkb(geom))

    columns, masks = [np.array([f.get("id") for f in features], dtype="int64")], [None]
    fields = ["id"]
    for name in names:
        array, mask = _column([(f.get("properties") or {}).get(name) for f in features], public[name].type)
        columns.append(array)
        masks.append(mask)
        fields.append(name)

    from pyogrio import raw

    buffer = io.BytesIO()
    raw.write(buffer, np.array(geometries, dtype=object), columns, fields, field_mask=masks, layer=layer.name,
              driver="GPKG", geometry_type=layer.geometry_type, crs=crs, encoding="UTF-8",
              layer_options={"IDENTIFIER": layer.title.vi, "DESCRIPTION": layer.title.en})
    return buffer.getvalue()
