"""``--executor dask``: the per-row work of a run (decode, type, reproject, validate, COPY into staging) on a
Dask cluster, partitioned by commune (or by a spatial key where the layer has no commune field).

What stays in the run's own process, so the result is the single-process result row for row:

* reading the source (sequential I/O) and the unchanged-row test (needs every stored hash at once);
* staging ids: every row keeps the id it gets in a single-process run (its position in the source), so the
  merge inserts in the same order and assigns the same feature ids;
* the overlap search and the set rules, and the merge itself: one transaction, as always. The workers COPY
  into an unlogged scratch table (``staging.run_<id>_parts``, committed so their connections see it), which
  the run's transaction copies into its own staging table; the scratch table is dropped whatever happens, and
  no data, history or log table is touched outside the run's transaction.

The cluster: ``LocalCluster`` (worker processes on this machine) by default, or a running Dask scheduler
(``tcp://host:8786``) whose workers can reach the database with the same URL.
"""
from __future__ import annotations

import zlib
from contextlib import closing

import numpy as np
import pyarrow as pa
import shapely

from gisplatform.layers import Layer
from gisplatform.load.staging import to_arrow
from gisplatform.transform import pipeline

COMMUNE_FIELDS = ("commune_code", "sheet_commune_code")
SPATIAL_CELL_M = 5_000.0  # partition cells of 5 km (projected CRS) or 0.05° (geographic)
SPATIAL_CELL_DEG = 0.05


def partition_keys(batch, plan, layer: Layer, partitions: int) -> np.ndarray:
    """Partition number of each row: by commune code where the layer has one, else by a grid cell of the
    geometry's centre, else by position. Rows of one commune always land in the same partition."""
    names = {f.name for f in layer.fields}
    for name in COMMUNE_FIELDS:
        column = plan.mapping.column(name) if name in names else None
        if column and column in batch.rows.columns:
            values = batch.rows[column].astype(str).to_numpy()
            return np.array([zlib.crc32(v.encode("utf-8", "replace")) % partitions for v in values], dtype=np.int64)
    if batch.geometry is not None and len(batch):
        centres = shapely.centroid(batch.geometry)
        x, y = shapely.get_x(centres), shapely.get_y(centres)
        finite = np.isfinite(x) & np.isfinite(y)
        geographic = finite.any() and np.nanmax(np.abs(x[finite])) <= 360
        cell = SPATIAL_CELL_DEG if geographic else SPATIAL_CELL_M
        cx = np.where(finite, np.floor(np.nan_to_num(x) / cell), 0).astype(np.int64)
        cy = np.where(finite, np.floor(np.nan_to_num(y) / cell), 0).astype(np.int64)
        return (cx * 73_856_093 ^ cy * 19_349_663) % partitions
    return np.arange(len(batch), dtype=np.int64) % partitions


def stage_partition(dsn: str, table: str, batch, plan, layer: Layer, hashes: np.ndarray, sids: np.ndarray,
                    ctx) -> tuple[np.ndarray, np.ndarray]:
    """On a worker: transform and validate one partition of a batch, COPY it into the scratch table.
    Returns the staging ids and geometries of the accepted rows (for the overlap search in the run)."""
    import adbc_driver_postgresql.dbapi as adbc

    from gisplatform.validate import rules_for, run_row_rules

    row_rules, _ = rules_for(layer)
    layer_batch = pipeline.transform(batch, plan, layer, hashes, ctx.today)
    run_row_rules(layer_batch, row_rules, ctx)
    pipeline.finish(layer_batch, ctx)
    arrow = to_arrow(layer_batch, first_sid=0)
    arrow = arrow.set_column(arrow.schema.get_field_index("sid"), "sid", pa.array(sids, pa.int64()))
    with closing(adbc.connect(dsn, autocommit=True)) as connection, closing(connection.cursor()) as cursor:
        cursor.adbc_ingest(table, arrow, mode="append", db_schema_name="staging")
    accepted = ~layer_batch.issues.rejected()
    return sids[accepted], layer_batch.geometry[accepted]


class DaskStager:
    """Hands the partitions of each batch to the cluster; gathers what the run needs back."""

    def __init__(self, run, address: str | None = None, workers: int | None = None, client=None):
        from distributed import Client, LocalCluster

        from gisplatform.db.engine import libpq_dsn

        self.run = run
        self.dsn = libpq_dsn()
        self._own_cluster = None
        self._own_client = client is None
        if client is not None:
            self.client = client
        elif address:
            self.client = Client(address)
        else:
            # processes, one thread each: the row work holds the GIL in places, so threads would not scale
            self._own_cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                                             dashboard_address=None)
            self.client = Client(self._own_cluster)
        self.partitions = max(2 * len(self.client.scheduler_info()["workers"]), 2)
        self.parts_table = f"run_{run.report.run_id}_parts"
        self._ctx = self.client.scatter(run.ctx, broadcast=True)
        self._futures: list = []
        self._create_parts_table()

    def _scratch(self, sql: str) -> None:
        import psycopg2

        connection = psycopg2.connect(self.dsn)
        connection.autocommit = True
        try:
            with connection.cursor() as cur:
                cur.execute(sql)
        finally:
            connection.close()

    def _create_parts_table(self) -> None:
        # same columns as the run's staging table (created just before in the run's transaction), except those
        # it generates itself (the WGS84 copy), computed as the rows move into it
        self.run.cursor.execute(
            "SELECT string_agg(format('%I %s', attname, format_type(atttypid, atttypmod)), ', ' ORDER BY attnum), "
            "string_agg(format('%I', attname), ', ' ORDER BY attnum) "
            "FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped "
            "AND attgenerated = ''", (self.run.staging.table,))
        definitions, self._parts_columns = self.run.cursor.fetchone()
        self._scratch(f"CREATE UNLOGGED TABLE staging.{self.parts_table} ({definitions})")

    def submit(self, batch, plan, hashes: np.ndarray, first_sid: int) -> None:
        keys = partition_keys(batch, plan, self.run.layer, self.partitions)
        sids = np.arange(first_sid, first_sid + len(batch), dtype=np.int64)
        for part in np.unique(keys):
            keep = keys == part
            self._futures.append(self.client.submit(
                stage_partition, self.dsn, self.parts_table, pipeline.subset(batch, keep), plan, self.run.layer,
                hashes[keep], sids[keep], self._ctx, pure=False))

    def finish(self) -> None:
        """Wait for every partition, feed the overlap search in staging-id order, move the rows into the run's
        staging table (inside the run's transaction)."""
        results = self.client.gather(self._futures)  # raises the first worker error
        if self.run.overlaps is not None and results:
            sids = np.concatenate([r[0] for r in results])
            geoms = np.concatenate([np.asarray(r[1], dtype=object) for r in results])
            order = np.argsort(sids, kind="stable")
            self.run.overlaps.add(sids[order], geoms[order])
        self.run.staging.wait()
        self.run.cursor.execute(f"INSERT INTO {self.run.staging.table} ({self._parts_columns}) "
                                f"SELECT {self._parts_columns} FROM staging.{self.parts_table} ORDER BY sid")
        # dropped by the run's transaction: gone with the commit (on a rollback, drop_scratch removes it)
        self.run.cursor.execute(f"DROP TABLE staging.{self.parts_table}")

    def close(self) -> None:
        """Stop what is left on the cluster (called before the run's transaction ends)."""
        try:
            for future in self._futures:
                future.cancel()
        finally:
            if self._own_client:
                self.client.close()
            if self._own_cluster is not None:
                self._own_cluster.close()

    def drop_scratch(self) -> None:
        """After the run's transaction ended (it may hold a lock on the scratch table until then)."""
        self._scratch(f"DROP TABLE IF EXISTS staging.{self.parts_table}")
