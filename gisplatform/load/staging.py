"""The run's staging table: every processed source row, accepted or rejected, COPYed in binary through ADBC.

The table is created inside the run's transaction, unlogged and without indexes, so a failed run leaves nothing
behind (the rollback drops it) and the bulk COPY does not pay for WAL or index maintenance.
"""
from __future__ import annotations

import json
import operator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from gisplatform.layers import WGS84_SRID, Layer
from gisplatform.transform.batch import LayerBatch
from gisplatform.transform.hashing import fast_hash_columns, hash_columns

_ARROW = {"text": pa.string(), "integer": pa.int64(), "number": pa.float64(), "date": pa.date32(), "boolean": pa.bool_()}
_SQL = {"text": "text", "integer": "bigint", "number": "double precision", "date": "date", "boolean": "boolean"}


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Staging:
    def __init__(self, cursor, layer: Layer, run_id: int):
        self.cursor = cursor
        self.layer = layer
        self.run_id = run_id
        # COPY runs in a background thread while the next batch is transformed (the driver releases the GIL);
        # one batch in flight at a time, since a cursor serves one statement at a time.
        self._copier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="staging-copy")
        self._in_flight: Future | None = None
        self.name = f"run_{run_id}"
        self.table = f"staging.{self.name}"
        self.unmatched_table = f"staging.run_{run_id}_unmatched"
        self.pairs_table = f"staging.run_{run_id}_pairs"
        self.loaded_pairs_table = f"staging.run_{run_id}_loaded_pairs"
        self.again_table = f"staging.run_{run_id}_again"
        self.candidates_table = f"staging.run_{run_id}_duplicate_candidates"
        self.late_warnings_table = f"staging.run_{run_id}_late_warnings"
        self.rows = 0
        self._keys: list[pa.Table] = []  # natural keys of the rows staged here, typed as staged
        self.keys_complete = True  # False once rows were staged elsewhere (a Dask cluster): _keys lacks theirs
        self._again_analyzed = False

    def create(self) -> "Staging":
        fields = ", ".join(f"{quote(f.name)} {_SQL[f.type]}" for f in self.layer.fields)
        # The WGS84 copy is computed here, by the COPY of each batch, while Python reads and checks the next one;
        # in the merge's INSERT it would cost a first load of a million parcels 6-7 s on the run's one backend.
        kind = self.layer.geometry_type
        self.cursor.execute(
            f"CREATE UNLOGGED TABLE {self.table} (sid bigint, src_file text, src_row integer, source_hash bigint, "
            f"row_hash bigint, {fields}, geom geometry({kind}, {self.layer.storage_srid}), "
            f"geom_wgs84 geometry({kind}, {WGS84_SRID}) GENERATED ALWAYS AS (ST_Transform(geom, {WGS84_SRID})) "
            "STORED, qa_flags text, source_raw text, errors text, notes text, raw_record text)"
        )
        self.cursor.execute(f"CREATE UNLOGGED TABLE {self.unmatched_table} (fid bigint)")
        self.cursor.execute(f"CREATE UNLOGGED TABLE {self.pairs_table} (a_sid bigint, b_sid bigint, area float8)")
        self.cursor.execute(f"CREATE UNLOGGED TABLE {self.loaded_pairs_table} (sid bigint, fid bigint, "
                            "natural_key text, area float8)")
        self.cursor.execute(f"CREATE UNLOGGED TABLE {self.again_table} (ord integer, source_hash bigint, "
                            "src_file text, src_row integer, natural_key text, grouped boolean)")
        return self

    def append(self, batch: LayerBatch) -> np.ndarray:
        """Stage a batch (COPY in the background); returns the staging ids given to its rows."""
        table = to_arrow(batch, first_sid=self.rows)
        self._keys.append(table.select(list(self.layer.natural_key)))
        self.wait()
        if len(table):
            self._in_flight = self._copier.submit(self.cursor.adbc_ingest, self.name, table, mode="append",
                                                  db_schema_name="staging")
        sids = np.arange(self.rows, self.rows + len(table), dtype=np.int64)
        self.rows += len(table)
        return sids

    def staged_elsewhere(self, rows: int) -> None:
        """Count rows that another process staged (same staging ids); their keys are not known here."""
        self.rows += rows
        self.keys_complete = False

    def staged_keys(self) -> pa.Table:
        """The natural keys of the rows staged here, typed as staged."""
        schema = pa.schema([(k, _ARROW[self.layer.field(k).type]) for k in self.layer.natural_key])
        return pa.concat_tables(self._keys) if self._keys else schema.empty_table()

    def stage_duplicate_candidates(self) -> str | None:
        """Store the staging ids (``sid``) of the rows whose natural key may be repeated among the staged rows,
        found by hashing the keys kept here (equal keys hash alike; a collision only adds a candidate), and
        return their table; None when rows were staged elsewhere. The duplicate-key check then groups these few
        rows, fetched through the ``sid`` index, instead of every staged row (a first load of a million parcels:
        1.2 s, and the staging table's key index, 1 s; finding the candidates' keys in a scan of the staged
        rows, 0.6 s). The keys kept here are in staging order: the row at position i has sid i."""
        if not self.keys_complete:
            return None
        self.wait()
        keys = self.staged_keys()
        self.cursor.execute(f"CREATE UNLOGGED TABLE {self.candidates_table} (sid bigint)")
        if len(keys):
            _, of_row, counts = np.unique(fast_hash_columns(keys.columns), return_inverse=True, return_counts=True)
            repeated = np.flatnonzero(counts[of_row] > 1)
            if len(repeated):
                self._ingest(self.candidates_table, {"sid": pa.array(repeated.astype(np.int64))})
        self.cursor.execute(f"ANALYZE {self.candidates_table}")
        return self.candidates_table

    def wait(self) -> None:
        """Until the batch in flight is staged (re-raising its error). Call before using the cursor."""
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            in_flight.result()

    def append_unmatched(self, fids: np.ndarray) -> None:
        """Live features that no source row matched unchanged: they changed, or the source no longer has them.

        Every other live feature is present in the source as it is stored (skipped as unchanged), so it is
        never retired. On a re-run of a barely changed file these are few, which keeps the retirement and the
        checks against loaded features to a few index probes instead of a join over the whole layer."""
        self._ingest(self.unmatched_table, {"fid": pa.array(fids, pa.int64())})

    def append_pairs(self, a: np.ndarray, b: np.ndarray, area: np.ndarray) -> None:
        """Overlapping pairs found in Python (staging ids and overlap area)."""
        self._ingest(self.pairs_table, {"a_sid": pa.array(a, pa.int64()), "b_sid": pa.array(b, pa.int64()),
                                        "area": pa.array(area, pa.float64())})

    def append_again(self, hashes: np.ndarray, files: list[str], rows: np.ndarray, keys: np.ndarray,
                     grouped: np.ndarray) -> None:
        """Rows rejected by the previous run and unchanged since: not staged, their reasons are copied (those of
        the copies of a duplicate key (``grouped``) with the other copies named as they are now). ``ord``
        numbers the rows in the order given (one call per run), for the copy to order by an integer."""
        self._ingest(self.again_table, {"ord": pa.array(np.arange(len(hashes), dtype=np.int32)),
                                        "source_hash": pa.array(hashes, pa.int64()),
                                        "src_file": pa.array(files, pa.string()),
                                        "src_row": pa.array(np.asarray(rows, dtype=np.int32)),
                                        "natural_key": pa.array(keys, pa.string(), from_pandas=True),
                                        "grouped": pa.array(np.asarray(grouped, dtype=bool))})
        # before the reasons are copied: estimated blind, the copy's joins sort where they could hash (40 ms)
        self.cursor.execute(f"ANALYZE {self.again_table}")
        self._again_analyzed = True

    def _ingest(self, qualified: str, columns: dict) -> None:
        self.wait()
        table = pa.table(columns)
        if len(table):
            self.cursor.adbc_ingest(qualified.split(".", 1)[1], table, mode="append", db_schema_name="staging")

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._copier.shutdown(wait=True)

    def index(self, by_key: bool = True) -> None:
        """Index the staged rows for the set rules and the merge, then gather statistics. ``by_key=False``: no
        index of the natural key (a first load whose duplicate check knows its candidates: nothing else joins
        the staged rows by key).

        Must run before any UPDATE of the staging table: an index built over HOT-updated rows is not usable by
        the transaction that built it (PostgreSQL's indcheckxmin), and the self-joins would scan instead.
        No spatial index: overlapping pairs among staged rows come from Python, and the check against loaded
        features walks the staged rows and probes the layer's index (2.3 s saved per million rows).
        """
        self.wait()
        key = ", ".join(quote(k) for k in self.layer.natural_key)
        if by_key:
            self.cursor.execute(f"CREATE INDEX ON {self.table} ({key})")
        self.cursor.execute(f"CREATE INDEX ON {self.table} (sid)")
        self.cursor.execute(f"CREATE INDEX ON {self.unmatched_table} (fid)")
        # statistics for the columns the set rules and the merge join on (a geometry sample costs more than the rest)
        self.cursor.execute(f"ANALYZE {self.table} (sid, {key}, errors, row_hash)")
        self.cursor.execute(f"ANALYZE {self.unmatched_table}")
        if not self._again_analyzed:  # (empty: the planner must know it)
            self.cursor.execute(f"ANALYZE {self.again_table}")

    def drop(self) -> None:
        self.wait()
        self.cursor.execute(f"DROP TABLE IF EXISTS {self.table}, {self.unmatched_table}, {self.pairs_table}, "
                            f"{self.loaded_pairs_table}, {self.again_table}, {self.candidates_table}, "
                            f"{self.late_warnings_table}")


def _arrow_column(values: np.ndarray | pa.Array, ftype: str) -> pa.Array:
    if isinstance(values, pa.Array):  # text no rule read (TypedValues): as it came, in staging's type
        return values if values.type == _ARROW[ftype] else values.cast(_ARROW[ftype])
    if ftype in ("number",):
        return pa.array(values, pa.float64(), from_pandas=True)
    if ftype == "integer":
        mask = np.isnan(values)
        return pa.array(np.where(mask, 0, values).astype(np.int64), pa.int64(), mask=mask)
    if ftype == "date":
        return pa.array(values.astype("datetime64[D]"), pa.date32())
    return pa.array(values, _ARROW[ftype], from_pandas=True)


_SAME_OBJECT = np.frompyfunc(operator.is_, 2, 1)


def _staged_wkb(batch: LayerBatch, geoms: np.ndarray) -> pa.Array:
    """WKB of the geometries to stage. One that is still the very object parsed from the source's WKB (nothing
    reprojected, rounded, repaired or promoted it) is staged as those bytes, which describe it exactly: writing
    WKB again costs a million parcels some 0.8 s of the run's thread. The others are written anew."""
    source = batch.source_wkb
    if source is None or batch.parsed_geometry is None or not pa.types.is_binary(source.type):
        return pa.array(shapely.to_wkb(geoms, include_srid=False), pa.binary(), from_pandas=True)
    kept = _SAME_OBJECT(geoms, batch.parsed_geometry).astype(bool) & ~shapely.is_missing(geoms)
    if kept.all():
        return source
    anew = pa.array(shapely.to_wkb(geoms[~kept], include_srid=False), pa.binary(), from_pandas=True)
    return pc.replace_with_mask(source, pa.array(~kept), anew)


def to_arrow(batch: LayerBatch, first_sid: int) -> pa.Table:
    """The batch as a staging Arrow table, row hashes included (computed from exactly what is stored)."""
    layer = batch.layer
    n = len(batch)
    columns = {f.name: _arrow_column(batch.values.stored(f.name), f.type) for f in layer.fields}
    rejected = batch.issues.rejected()
    geoms = batch.geometry.copy()
    geoms[rejected] = None  # a rejected row's geometry may be anything, even the wrong type
    normalized = shapely.normalize(geoms)
    wkb = _staged_wkb(batch, geoms)
    qa_flags = pa.array(batch.issues.qa_flags(), pa.string())
    row_hash = hash_columns([*columns.values(), pa.array(shapely.to_wkb(normalized), pa.binary(), from_pandas=True),
                             qa_flags])
    errors = batch.issues.as_json(("error",))
    raw: list[str | None] = [None] * n
    rejected_rows = np.flatnonzero(rejected)
    for i, record in zip(rejected_rows, batch.raw_records(rejected_rows) if len(rejected_rows) else []):
        raw[i] = json.dumps(record, ensure_ascii=False, default=str)
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
