"""The run's staging table: every processed source row, accepted or rejected, COPYed in binary through ADBC.

The table is created inside the run's transaction, unlogged and without indexes, so a failed run leaves nothing
behind (the rollback drops it) and the bulk COPY does not pay for WAL or index maintenance.
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import shapely

from gisplatform.layers import Layer
from gisplatform.transform.batch import LayerBatch
from gisplatform.transform.hashing import hash_columns

_ARROW = {"text": pa.string(), "integer": pa.int64(), "number": pa.float64(), "date": pa.date32(), "boolean": pa.bool_()}
_SQL = {"text": "text", "integer": "bigint", "number": "double precision", "date": "date", "boolean": "boolean"}


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Staging:
    def __init__(self, cursor, layer: Layer, run_id: int):
        self.cursor = cursor
        self.layer = layer
        self.run_id = run_id
        self.name = f"run_{run_id}"
        self.table = f"staging.{self.name}"
        self.seen_table = f"staging.run_{run_id}_seen"
        self.rows = 0

    def create(self) -> "Staging":
        fields = ", ".join(f"{quote(f.name)} {_SQL[f.type]}" for f in self.layer.fields)
        self.cursor.execute(
            f"CREATE UNLOGGED TABLE {self.table} (sid bigint, src_file text, src_row integer, source_hash bigint, "
            f"row_hash bigint, {fields}, geom geometry({self.layer.geometry_type}, {self.layer.storage_srid}), "
            "qa_flags text, source_raw text, errors text, notes text, raw_record text)"
        )
        self.cursor.execute(f"CREATE UNLOGGED TABLE {self.seen_table} (source_hash bigint)")
        return self

    def append(self, batch: LayerBatch) -> int:
        table = to_arrow(batch, first_sid=self.rows)
        if len(table):
            self.cursor.adbc_ingest(self.name, table, mode="append", db_schema_name="staging")
        self.rows += len(table)
        return len(table)

    def append_seen(self, hashes: np.ndarray) -> None:
        """Source hashes of rows skipped as unchanged: they are present in the source, so never retired."""
        if len(hashes):
            self.cursor.adbc_ingest(f"run_{self.run_id}_seen", pa.table({"source_hash": pa.array(hashes, pa.int64())}),
                                    mode="append", db_schema_name="staging")

    def index(self) -> None:
        """Index the staged rows for the set rules and the merge, then gather statistics.

        Must run before any UPDATE of the staging table: an index built over HOT-updated rows is not usable by
        the transaction that built it (PostgreSQL's indcheckxmin), and the self-joins would scan instead.
        """
        key = ", ".join(quote(k) for k in self.layer.natural_key)
        self.cursor.execute(f"CREATE INDEX ON {self.table} ({key})")
        self.cursor.execute(f"CREATE INDEX ON {self.table} USING gist (geom)")
        self.cursor.execute(f"CREATE INDEX ON {self.table} (sid)")
        self.cursor.execute(f"ANALYZE {self.table}")
        self.cursor.execute(f"ANALYZE {self.seen_table}")

    def drop(self) -> None:
        self.cursor.execute(f"DROP TABLE IF EXISTS {self.table}, {self.seen_table}")


def _arrow_column(values: np.ndarray, ftype: str) -> pa.Array:
    if ftype in ("number",):
        return pa.array(values, pa.float64(), from_pandas=True)
    if ftype == "integer":
        mask = np.isnan(values)
        return pa.array(np.where(mask, 0, values).astype(np.int64), pa.int64(), mask=mask)
    if ftype == "date":
        return pa.array(values.astype("datetime64[D]"), pa.date32())
    return pa.array(values, _ARROW[ftype], from_pandas=True)


def to_arrow(batch: LayerBatch, first_sid: int) -> pa.Table:
    """The batch as a staging Arrow table, row hashes included (computed from exactly what is stored)."""
    layer = batch.layer
    n = len(batch)
    columns = {f.name: _arrow_column(batch.values[f.name], f.type) for f in layer.fields}
    rejected = batch.issues.rejected()
    geoms = batch.geometry.copy()
    geoms[rejected] = None  # a rejected row's geometry may be anything, even the wrong type
    normalized = shapely.normalize(geoms)
    wkb = pa.array(shapely.to_wkb(geoms, include_srid=False), pa.binary(), from_pandas=True)
    qa_flags = pa.array(batch.issues.qa_flags(), pa.string())
    row_hash = hash_columns([*columns.values(), pa.array(shapely.to_wkb(normalized), pa.binary(), from_pandas=True),
                             qa_flags])
    errors = batch.issues.as_json(("error",))
    raw = [json.dumps(batch.raw_record(i), ensure_ascii=False, default=str) if rejected[i] else None
           for i in range(n)] if rejected.any() else [None] * n
    return pa.table({
        "sid": pa.array(np.arange(first_sid, first_sid + n, dtype=np.int64)),
        "src_file": pa.array([batch.file] * n, pa.string()),
        "src_row": pa.array(batch.row_numbers.astype(np.int32)),
        "source_hash": pa.array(batch.source_hash, pa.int64()),
        "row_hash": pa.array(row_hash, pa.int64()),
        **columns,
        "geom": wkb,
        "qa_flags": qa_flags,
        "source_raw": pa.array(batch.source_raw, pa.string()),
        "errors": pa.array(errors, pa.string()),
        "notes": pa.array(batch.issues.as_json(("warning", "repair")), pa.string()),
        "raw_record": pa.array(raw, pa.string()),
    })
