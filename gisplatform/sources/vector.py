"""Shapefile, GeoPackage, GeoJSON (any OGR vector format) read as Arrow batches with pyogrio.

Shapefile text is read as latin-1 whatever the .cpg says, so every byte reaches us intact (one code point per
byte); the transform stage decides each column's real encoding (UTF-8, TCVN3, VNI ...). A .prj is never trusted
blindly: :func:`gisplatform.crs.analyse_prj` says what it really means, and a dubious one needs a declared CRS.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio

from gisplatform import crs
from gisplatform.sources.base import FileInfo, SourceBatch, SourceError, SourceOptions
from gisplatform.sources.dbf import read_dbf_header

GEOJSON_SUFFIXES = (".geojson", ".json")


def _epsg_of(crs_text: str | None) -> int | None:
    """pyogrio's CRS string ('EPSG:9215', 'OGC:CRS84', WKT) as an EPSG code, when it has one."""
    if not crs_text:
        return None
    if crs_text.upper() in ("OGC:CRS84", "EPSG:4326"):
        return 4326
    if crs_text.upper().startswith("EPSG:") and crs_text[5:].isdigit():
        return int(crs_text[5:])
    return crs.analyse_prj(crs_text).epsg


class VectorReader:
    def __init__(self, path: Path, options: SourceOptions):
        self.path = Path(path)
        self.options = options
        self.is_shapefile = self.path.suffix.lower() == ".shp"
        if not self.path.exists():
            raise SourceError(f"{self.path}: file not found")

    def _layer_info(self) -> dict:
        try:
            return pyogrio.read_info(self.path, layer=self.options.layer,
                                     encoding="latin1" if self.is_shapefile else None)
        except Exception as exc:  # noqa: BLE001 - GDAL raises many kinds; all mean "cannot open"
            raise SourceError(f"{self.path}: cannot be opened as a vector file ({exc}); is it complete? "
                              "(a shapefile needs its .shp, .shx and .dbf side by side)") from exc

    def _declared_crs(self, info: dict) -> tuple[int | None, str | None]:
        if self.is_shapefile:
            prj = self.path.with_suffix(".prj")
            if not prj.exists():
                prj = next((p for p in self.path.parent.glob(self.path.stem + ".*") if p.suffix.lower() == ".prj"), prj)
            if not prj.exists():
                return None, "no .prj file"
            analysis = crs.analyse_prj(prj.read_text(encoding="latin-1"))
            return analysis.epsg, (None if analysis.problem is None else analysis.message)
        if self.path.suffix.lower() in GEOJSON_SUFFIXES:
            return 4326, None  # RFC 7946: GeoJSON is always WGS 84 longitude/latitude
        epsg = _epsg_of(info.get("crs"))
        return epsg, None if epsg else f"CRS not recognised: {info.get('crs')}"

    def _encoding_hint(self) -> str | None:
        if not self.is_shapefile:
            return None
        cpg = self.path.with_suffix(".cpg")
        if cpg.exists():
            return f".cpg says {cpg.read_text(encoding='latin-1').strip()!r}"
        header = read_dbf_header(self.path.with_suffix(".dbf"))
        return f"DBF language driver 0x{header.language_driver:02x}" if header and header.language_driver else None

    def info(self) -> FileInfo:
        info = self._layer_info()
        epsg, note = self._declared_crs(info)
        return FileInfo(
            path=self.path,
            columns=tuple(str(c) for c in info["fields"]),
            declared_crs=epsg,
            crs_note=note,
            feature_count=int(info.get("features") or 0) or None,
            encoding_hint=self._encoding_hint(),
        )

    def field_widths(self) -> dict[str, int]:
        """DBF field widths (text truncated at the width is a sign of multi-byte VNI cut mid-letter)."""
        header = read_dbf_header(self.path.with_suffix(".dbf")) if self.is_shapefile else None
        return {f.name: f.length for f in header.fields} if header else {}

    def batches(self, batch_size: int) -> Iterator[SourceBatch]:
        declared = self.options.crs or self.info().declared_crs
        first_row = 1
        try:
            with pyogrio.open_arrow(self.path, layer=self.options.layer, batch_size=batch_size, use_pyarrow=True,
                                    encoding="latin1" if self.is_shapefile else None) as (meta, reader):
                geometry_name = meta.get("geometry_name") or "wkb_geometry"
                for record_batch in reader:
                    yield self._to_source_batch(record_batch, geometry_name, declared, first_row)
                    first_row += record_batch.num_rows
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise SourceError(f"{self.path}: reading failed near row {first_row}: {exc}") from exc

    def _to_source_batch(self, record_batch: pa.RecordBatch, geometry_name: str, declared: int | None,
                         first_row: int) -> SourceBatch:
        columns = [c for c in record_batch.schema.names if c != geometry_name]
        # Arrow-backed columns: no Python object per value; the transform stage works on Arrow arrays
        rows = pd.DataFrame({c: pd.Series(pd.arrays.ArrowExtensionArray(record_batch.column(c))) for c in columns})
        # the WKB stays Arrow: hashed as it lies, turned into Python bytes only for the rows parsed
        wkb = record_batch.column(geometry_name) if geometry_name in record_batch.schema.names \
            else np.full(record_batch.num_rows, None, dtype=object)
        return SourceBatch(
            file=self.path,
            rows=rows,
            row_numbers=np.arange(first_row, first_row + record_batch.num_rows, dtype=np.int64),
            geometry=None,
            crs=declared or 0,
            text_is_latin1=self.is_shapefile,
            raw_geometry_wkb=wkb,
            geometry_pending=True,  # parsed for the rows that are not skipped as unchanged
        )
