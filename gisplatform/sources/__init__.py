"""Readers, one per kind of input, registered by name like pygeoapi's providers (a dotted class path).

  vector            Shapefile (any DBF encoding), GeoPackage, GeoJSON — anything OGR reads (pyogrio, Arrow)
  licence_register  licence register + corner-point table (CSV/XLSX, X = northing), polygons per licence
  point_table       one row per point with X/Y and a stated CRS (CSV/XLSX), e.g. water-licence intakes and wells
  derived           computed from another layer in the database (e.g. protection corridors from water sources)
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from gisplatform.layers import Layer
from gisplatform.sources.options import SourceError, SourceOptions

if TYPE_CHECKING:
    from gisplatform.sources.base import Reader

# the readers' shared types (gisplatform.sources.base) bring pandas and shapely: loaded when first asked for, so
# a job definition (SourceOptions) can be read before them (see gisplatform.etl.runner)
_FROM_BASE = ("FileInfo", "Reader", "RowProblem", "SourceBatch")

READERS: dict[str, str] = {
    "vector": "gisplatform.sources.vector.VectorReader",
    "licence_register": "gisplatform.sources.corner_tables.LicenceReader",
    "point_table": "gisplatform.sources.corner_tables.PointTableReader",
    "derived": "gisplatform.sources.derived.DerivedReader",
}
TABLE_SUFFIXES = (".csv", ".xlsx", ".xlsm")

__all__ = ["READERS", "FileInfo", "Reader", "RowProblem", "SourceBatch", "SourceError", "SourceOptions",
           "default_kind", "open_reader"]


def __getattr__(name: str):
    if name in _FROM_BASE:
        from gisplatform.sources import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_kind(path: Path, layer: Layer) -> str:
    """The reader a file gets when the job does not say: tables become points or licence polygons by layer."""
    if path.suffix.lower() in TABLE_SUFFIXES:
        return "point_table" if layer.geometry_type in ("Point", "MultiPoint") else "licence_register"
    return "vector"


def open_reader(path: Path, layer: Layer, options: SourceOptions, kind: str | None = None) -> Reader:
    kind = kind or default_kind(path, layer)
    try:
        dotted = READERS[kind]
    except KeyError:
        raise SourceError(f"unknown reader {kind!r}; known readers: {', '.join(READERS)}") from None
    module, _, cls = dotted.rpartition(".")
    return getattr(importlib.import_module(module), cls)(path, options)
