"""From a reader's raw batch to a validated batch in the layer's terms.

Per file, decided once on its first batch (:class:`FilePlan`): which column feeds which field, each text
column's encoding, and which CRS the coordinates are in. Per batch: decode text, type the values, reproject,
run the row rules, derive fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from gisplatform.layers import Layer
from gisplatform.sources.base import FileInfo, SourceBatch, SourceError, SourceOptions
from gisplatform.text import Detection, lossy_mask, truncated_mask
from gisplatform.transform import arrow
from gisplatform.transform import geometry as geo
from gisplatform.transform.batch import Issue, LayerBatch
from gisplatform.transform.columns import ColumnMapping, decide_encodings, decode_text, map_columns
from gisplatform.transform.derive import derive_fields
from gisplatform.transform.hashing import fast_hash_columns
from gisplatform.transform.typing import convert, empty, missing_mask

RAW_GEOMETRY_CHARS = 2000


@dataclass
class FilePlan:
    display: str  # the file as named in reports
    info: FileInfo
    mapping: ColumnMapping
    encodings: dict[str, Detection]
    crs: int | None  # CRS for the whole file (None: per row, stated in the rows)
    crs_source: str
    widths: dict[str, int] = field(default_factory=dict)

    def describe(self) -> dict:
        """For the run log: what was decided about this file and why."""
        return {
            "file": self.display,
            "crs": f"EPSG:{self.crs}" if self.crs else "stated per row",
            "crs_source": self.crs_source,
            "encodings": {c: {"encoding": d.encoding, "confidence": round(d.confidence, 2), "evidence": d.evidence}
                          for c, d in self.encodings.items() if d.encoding not in ("ascii",)},
            "unused_columns": list(self.mapping.unused_columns),
        }


def _file_crs(info: FileInfo, options: SourceOptions, first: SourceBatch, display: str) -> tuple[int | None, str]:
    if options.crs:
        note = f"declared EPSG:{options.crs}"
        if info.declared_crs and info.declared_crs != options.crs:
            note += f" (overrides the file's own EPSG:{info.declared_crs})"
        elif info.crs_note:
            note += f" (the file's own CRS: {info.crs_note})"
        return options.crs, note
    if isinstance(first.crs, np.ndarray):
        return None, "stated per row in the file"
    if info.declared_crs and not info.crs_note:
        return info.declared_crs, "the file's own CRS"
    problem = info.crs_note or "the file does not say which CRS its coordinates are in"
    raise SourceError(
        f"{display}: {problem}.\nDeclare the CRS of the coordinates: `crs: EPSG:9215` for this file in the job, "
        "or --crs EPSG:9215 for a one-off load (EPSG:9215 = VN-2000, KTT 107°15′, múi 3°; EPSG:3405 = VN-2000 "
        "UTM 48N). Data is never loaded with a guessed CRS."
    )


def plan_file(reader, first: SourceBatch, layer: Layer, options: SourceOptions, display: str) -> FilePlan:
    info = reader.info()
    columns = list(info.columns) or list(first.rows.columns)
    mapping = map_columns(layer, columns, options.field_map, display)
    mapped = [c for c in mapping.field_to_column.values() if c]
    encodings = decide_encodings(first, mapped, options.encoding)
    crs, crs_source = _file_crs(info, options, first, display)
    widths = reader.field_widths() if hasattr(reader, "field_widths") else {}
    return FilePlan(display, info, mapping, encodings, crs, crs_source, widths)


def source_hashes(batch: SourceBatch, seed: bytes) -> np.ndarray:
    """Hash of each row exactly as read (all columns, geometry bytes, stated CRS)."""
    columns = [arrow.as_arrow(batch.rows[c]) for c in batch.rows.columns]
    wkb = batch.raw_geometry_wkb if batch.raw_geometry_wkb is not None else shapely.to_wkb(batch.geometry)
    columns.append(wkb if isinstance(wkb, pa.Array) else pa.array(wkb, pa.binary(), from_pandas=True))
    stated = batch.crs if isinstance(batch.crs, np.ndarray) else np.full(len(batch), batch.crs or 0)
    columns.append(pa.array(np.asarray(stated, dtype=np.int64)))
    return fast_hash_columns(columns, seed)


def subset(batch: SourceBatch, keep: np.ndarray) -> SourceBatch:
    """The rows of a source batch where keep is true (reader problems renumbered)."""
    index = np.cumsum(keep) - 1
    return SourceBatch(
        file=batch.file,
        rows=batch.rows[keep].reset_index(drop=True),
        row_numbers=batch.row_numbers[keep],
        geometry=batch.geometry[keep] if batch.geometry is not None else None,
        crs=batch.crs[keep] if isinstance(batch.crs, np.ndarray) else batch.crs,
        problems=[type(p)(int(index[p.index]), p.rule, p.message, p.field) for p in batch.problems if keep[p.index]],
        text_is_latin1=batch.text_is_latin1,
        raw_geometry_wkb=_rows_of(batch.raw_geometry_wkb, keep),
        geometry_pending=batch.geometry_pending,
    )


def concat(batches: list[SourceBatch]) -> SourceBatch:
    """Source batches of one file as one batch, rows in the order given (reader problems renumbered): rows set
    aside from several batches are then transformed and checked in one go instead of one small call each."""
    if len(batches) == 1:
        return batches[0]
    first = batches[0]
    offsets = np.cumsum([0] + [len(b) for b in batches[:-1]])
    crs = first.crs  # one stated CRS for all, else one per row
    if any(isinstance(b.crs, np.ndarray) for b in batches) or len({b.crs for b in batches}) > 1:
        crs = np.concatenate([_crs_per_row(b) for b in batches])
    return SourceBatch(
        file=first.file,
        rows=pd.concat([b.rows for b in batches], ignore_index=True),
        row_numbers=np.concatenate([b.row_numbers for b in batches]),
        geometry=None if first.geometry is None else np.concatenate([b.geometry for b in batches]),
        crs=crs,
        problems=[type(p)(int(offset + p.index), p.rule, p.message, p.field)
                  for offset, b in zip(offsets, batches) for p in b.problems],
        text_is_latin1=first.text_is_latin1,
        raw_geometry_wkb=_concat_values([b.raw_geometry_wkb for b in batches]),
        geometry_pending=first.geometry_pending,
    )


def _crs_per_row(batch: SourceBatch) -> np.ndarray:
    return batch.crs if isinstance(batch.crs, np.ndarray) else np.full(len(batch), batch.crs or 0, dtype=np.int64)


def _concat_values(parts: list) -> np.ndarray | pa.Array | None:
    if parts[0] is None:
        return None
    if isinstance(parts[0], pa.Array):
        return pa.concat_arrays(parts)
    return np.concatenate(parts)


def _rows_of(values: np.ndarray | pa.Array | None, keep: np.ndarray) -> np.ndarray | pa.Array | None:
    if values is None:
        return None
    return values.filter(pa.array(keep)) if isinstance(values, pa.Array) else values[keep]


def _raw_record_builder(batch: SourceBatch, decoded: dict[str, pa.Array], stated: np.ndarray):
    """A function giving the rows as read (decoded text, geometry as WKT) for a list of row positions."""
    columns = list(batch.rows.columns)

    def build(indices: np.ndarray) -> list[dict]:
        taken = {c: (decoded[c] if c in decoded else arrow.as_arrow(batch.rows[c])).take(indices).to_pylist()
                 for c in columns}
        records = [{c: taken[c][k] for c in columns} for k in range(len(indices))]
        geoms = batch.geometry[indices] if batch.geometry is not None else [None] * len(indices)
        for record, geom, crs_code in zip(records, geoms, stated[indices]):
            if geom is not None:
                wkt = shapely.to_wkt(geom, rounding_precision=3)
                record["geometry"] = wkt if len(wkt) <= RAW_GEOMETRY_CHARS else wkt[:RAW_GEOMETRY_CHARS] + " …"
                record["geometry_crs"] = f"EPSG:{int(crs_code)}" if crs_code else None
        return records

    return build


def transform(batch: SourceBatch, plan: FilePlan, layer: Layer, source_hash: np.ndarray,
              today: np.datetime64) -> LayerBatch:
    """Decode, type and reproject one batch (no rules yet)."""
    n = len(batch)
    decoded, source_raw = decode_text(batch, plan.encodings)
    stated = np.asarray(batch.crs, dtype=np.int64) if isinstance(batch.crs, np.ndarray) else np.full(n, plan.crs or 0)
    if plan.crs:
        stated = np.full(n, plan.crs, dtype=np.int64)
    geometry = batch.parse_geometry().geometry
    geometry = geometry if geometry is not None else np.full(n, None, dtype=object)
    storage = geo.round_mm(geo.to_storage(geometry, stated, layer.storage_srid))
    out = LayerBatch(
        layer=layer, file=plan.display, row_numbers=batch.row_numbers, values={}, geometry=storage,
        record_dates=np.full(n, today, dtype="datetime64[D]"), source_hash=source_hash, source_raw=source_raw,
        raw_records=_raw_record_builder(batch, decoded, stated), stated_crs=stated, parsed_geometry=geometry,
        source_wkb=batch.raw_geometry_wkb if isinstance(batch.raw_geometry_wkb, pa.Array) else None,
    )
    for f in layer.source_fields:
        column = plan.mapping.column(f.name)
        if column is None:
            out.values[f.name] = empty(f, n)
            continue
        raw = decoded[column] if column in decoded else arrow.as_arrow(batch.rows[column])
        out.raw_values[f.name] = raw
        converted = convert(raw, f)
        out.values[f.name] = converted.values
        if converted.failed.any():
            out.parse_failures[f.name] = converted.failed
        if converted.padded.any():
            out.issues.add_where(converted.padded, "field_values", "repair",
                                 lambda i, f=f: f"{f.name}: leading zeros restored to {converted.values[i]} "
                                                f"(codes are {f.pad} digits; spreadsheets drop the zeros)", f.name)
    _fill_defaults(out, layer)
    _text_quality(out, batch, plan, decoded)
    for problem in batch.problems:
        out.issues.add(problem.index, Issue(problem.rule, "error", problem.message, problem.field))
    if layer.record_date:
        dates = out.values[layer.record_date]
        out.record_dates = np.where(np.isnat(dates), today, dates).astype("datetime64[D]")
    return out


def _fill_defaults(batch: LayerBatch, layer: Layer) -> None:
    for f in layer.source_fields:
        if f.default_from:
            values = batch.values[f.name]
            missing = missing_mask(values)
            values[missing] = batch.values[f.default_from][missing]


def _text_quality(batch: LayerBatch, source: SourceBatch, plan: FilePlan, decoded: dict[str, pa.Array]) -> None:
    """Warn about text that an earlier conversion damaged ('?', U+FFFD) or a fixed-width DBF field cut short."""
    by_column = {c: f for f, c in plan.mapping.field_to_column.items() if c}
    for column, values in decoded.items():
        name = by_column.get(column)
        if name is None or not arrow.is_text(values):
            continue
        batch.issues.add_where(lossy_mask(values), "text_quality", "warning",
                               f"{name}: text contains '?' or U+FFFD from an earlier lossy conversion; the original "
                               "letters cannot be recovered", name)
        encoding = plan.encodings[column].encoding
        width = plan.widths.get(column)
        if width and source.text_is_latin1:
            # DBF readers drop trailing spaces: a value cut right after a space reads one byte short of full
            full = truncated_mask(arrow.as_arrow(source.rows[column]), width - 1, encoding)
            batch.issues.add_where(full, "text_quality", "warning",
                                   f"{name}: fills the whole DBF field ({width} bytes) in {encoding.upper()}, which "
                                   "takes several bytes per letter: the text is probably cut short", name)


def finish(batch: LayerBatch, ctx) -> None:
    """After the rules: derived fields and geometry in the layer's multi type."""
    derive_fields(batch, ctx)
    keep = ~shapely.is_missing(batch.geometry)
    if keep.any():
        batch.geometry[keep] = geo.promote_to_multi(batch.geometry[keep], batch.layer.geometry_type)
    wrong_type = keep & (shapely.get_type_id(batch.geometry) != _TYPE_IDS[batch.layer.geometry_type])
    for i in np.flatnonzero(wrong_type & ~batch.issues.rejected()):
        batch.issues.add(i, Issue("geometry_type", "error",
                                  f"geometry is a {shapely.get_type_id(batch.geometry[i])} "
                                  f"({batch.geometry[i].geom_type}), the layer holds {batch.layer.geometry_type}"))


_TYPE_IDS = {"Point": 0, "LineString": 1, "Polygon": 3, "MultiPoint": 4, "MultiLineString": 5, "MultiPolygon": 6}
