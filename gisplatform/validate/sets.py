"""Set rules: checks that need every row of the run, evaluated in SQL on the staging table.

They run after all batches are staged and before the merge, in the run's transaction. A finding is appended to
the row's ``errors`` (rejects it) or ``notes`` and ``qa_flags`` (warning), like the row rules' findings.
"""
from __future__ import annotations

from concurrent.futures import Future

import numpy as np
import pyarrow as pa
import shapely

from gisplatform.load.staging import quote
from gisplatform.validate.base import SetContext, SetRule
from gisplatform.validate.overlaps import GRID_MM, OverlapIndex, overlap_areas


def key_equal(a: str, b: str, key: tuple[str, ...]) -> str:
    return " AND ".join(f"{a}.{quote(k)} = {b}.{quote(k)}" for k in key)


def key_text(alias: str, key: tuple[str, ...]) -> str:
    """SQL for the natural key as people read it: 'map_sheet_no=12, parcel_no=125'."""
    parts = ", ".join(f"'{k}=' || coalesce({alias}.{quote(k)}::text, '(empty)')" for k in key)
    return f"concat_ws(', ', {parts})"


def finding(rule: str, kind: str, message_sql: str) -> str:
    return (f"jsonb_build_array(jsonb_build_object('rule', '{rule}', 'kind', '{kind}', 'field', NULL, "
            f"'message', {message_sql}))")


def flags_with(flags_sql: str, kind: str, rule: str) -> str:
    """SQL of the flags ``flags_sql`` (text[], may be null) with ``kind:rule`` added: each flag once, sorted."""
    return (f"array(SELECT DISTINCT x FROM unnest(coalesce({flags_sql}, '{{}}') || ARRAY['{kind}:{rule}']) AS x "
            "ORDER BY 1)")


def record_sql(staging: str, kind: str, rule: str, findings_sql: str) -> str:
    """UPDATE recording one finding on each row of ``findings_sql`` (columns: sid, message)."""
    entry = finding(rule, kind, "f.message")
    if kind == "error":
        target = f"errors = (coalesce(s.errors::jsonb, '[]'::jsonb) || {entry})::text"
    else:
        flags = f"{flags_with('s.qa_flags::text[]', kind, rule)}::text"
        target = f"notes = (coalesce(s.notes::jsonb, '[]'::jsonb) || {entry})::text, qa_flags = {flags}"
    return f"UPDATE {staging} s SET {target} FROM ({findings_sql}) f WHERE s.sid = f.sid"


def duplicate_message(key_sql: str, others: str) -> str:
    """SQL of the message on each copy of a duplicate key, naming the other copies (rows ``others`` of a
    GROUP BY, with src_file and src_row); also used when a group is rejected again unchanged (merge)."""
    return (f"'duplicate natural key (' || {key_sql} || '): also in ' || string_agg({others}.src_file || ' row ' "
            f"|| {others}.src_row, ', ' ORDER BY {others}.src_file, {others}.src_row) "
            "|| '; every copy is rejected: correct the numbering at the source'")


class DuplicateNaturalKey(SetRule):
    """No two source rows share a natural key (all copies are rejected: only the source can say which is right)."""

    def statements(self, ctx: SetContext) -> list[str]:
        key = self.layer.natural_key
        cols = ", ".join(quote(k) for k in key)
        staged_key = ", ".join(f"s.{quote(k)}" for k in key)
        staged_key_complete = " AND ".join(f"s.{quote(k)} IS NOT NULL" for k in key)
        # the rows that may be copies: every staged row, or (candidates known) the candidate rows, by staging id
        copies, candidates = ctx.staging, ""
        if ctx.duplicate_candidates is not None:
            copies = "copies"
            candidates = f"""copies AS MATERIALIZED (
                SELECT sid, src_file, src_row, {cols} FROM {ctx.staging} s
                WHERE s.sid IN (SELECT c.sid FROM {ctx.duplicate_candidates} c)), """
        within = f"""
            WITH {candidates}dup AS (SELECT {cols} FROM {copies} s WHERE {staged_key_complete} GROUP BY {cols}
                                     HAVING count(*) > 1)
            SELECT s.sid, {duplicate_message(key_text('s', key), 'o')} AS message
            FROM {copies} s JOIN dup USING ({cols})
                 JOIN {copies} o ON {key_equal('s', 'o', key)} AND o.sid <> s.sid
            GROUP BY s.sid, {staged_key}"""
        # a row skipped as unchanged is in the source too: a new row with its key duplicates it
        against_unchanged = f"""
            SELECT s.sid, 'duplicate natural key (' || {key_text('s', key)} || '): same key as '
                   || d.source_file || ' row ' || d.source_row || ', loaded unchanged; correct the numbering '
                   || 'at the source' AS message
            FROM {ctx.staging} s JOIN {ctx.data} d ON {key_equal('s', 'd', key)}
            WHERE d.retired_at IS NULL AND NOT EXISTS (SELECT 1 FROM {ctx.unmatched} u WHERE u.fid = d.fid)"""
        # a row rejected again unchanged is not staged, but it is in the source: a row with its key duplicates it
        against_rejected = f"""
            SELECT s.sid, 'duplicate natural key (' || {key_text('s', key)} || '): same key as '
                   || string_agg(a.src_file || ' row ' || a.src_row, ', ' ORDER BY a.src_file, a.src_row)
                   || ', rejected (unchanged since the last run); correct the numbering at the source' AS message
            FROM {ctx.staging} s JOIN {ctx.again} a ON a.natural_key = {key_text('s', key)}
            WHERE {staged_key_complete}
            GROUP BY s.sid, {staged_key}"""
        statements = [record_sql(ctx.staging, self.failure_kind, self.name, within),
                      record_sql(ctx.staging, self.failure_kind, self.name, against_rejected)]
        if ctx.others_loaded:
            statements.append(record_sql(ctx.staging, self.failure_kind, self.name, against_unchanged))
        return statements


def _boxes_share_more_than(a: str, b: str, area_m2: float) -> str:
    """SQL: the bounding boxes of a and b share more than ``area_m2`` (with a millimetre's slack), the cheap
    test before the relate test: an overlap lies inside both boxes (see gisplatform.validate.overlaps)."""
    slack = 2 * GRID_MM
    width = f"least(ST_XMax({a}), ST_XMax({b})) - greatest(ST_XMin({a}), ST_XMin({b})) + {slack}"
    height = f"least(ST_YMax({a}), ST_YMax({b})) - greatest(ST_YMin({a}), ST_YMin({b})) + {slack}"
    return f"greatest({width}, 0) * greatest({height}, 0) > {float(area_m2)}"


class Overlaps(SetRule):
    """Features do not overlap each other by more than a tolerance (m², in EPSG:9215).

    Pairs among the run's own rows come from the Python search (gisplatform.validate.overlaps); pairs with
    features already loaded, which stay, from :meth:`search` (few: only rows that changed are staged).
    """

    needs_pairs = True

    @property
    def tolerance(self) -> float:
        return float(self.param("tolerance_m2", 1.0))

    def new_index(self) -> OverlapIndex:
        return OverlapIndex(self.tolerance)

    def search(self, cursor, ctx: SetContext) -> None:
        """Staged rows overlapping loaded features that stay: candidates from the layer's spatial index (boxes
        sharing more than the tolerance), tested in Python (shapely's GEOS does the relate test several times
        faster than PostGIS 3.3's), the pairs stored in ``ctx.loaded_pairs`` for :meth:`statements`.
        (A run that holds its staged geometries finds them earlier, with :meth:`search_loaded`.)"""
        if not ctx.others_loaded:
            return
        cursor.execute(self._loaded_candidates_sql(ctx))
        found = cursor.fetch_arrow_table()
        staged = shapely.from_wkb(found.column("a").to_numpy(zero_copy_only=False))
        pairs = self._overlapping(found, staged)
        if pairs.num_rows:
            cursor.adbc_ingest(ctx.loaded_pairs.split(".", 1)[1], pairs, mode="append", db_schema_name="staging")

    def search_loaded(self, connection, sids: np.ndarray, geoms: np.ndarray, gone_fids: np.ndarray | None,
                      settled: Future) -> pa.Table:
        """The pairs of :meth:`search`, found while the run's own connection is busy with other work: from the
        accepted geometries the run holds (``sids``, ``geoms``) against the layer as committed, on a connection of
        its own (a second backend, on the core the run's connection leaves idle), from the moment the files are
        read. The layer cannot change meanwhile: the run holds its lock and writes it only in the merge.
        ``gone_fids``: in a full snapshot, the features no source row matched unchanged (they do not stay).
        ``settled`` resolves once the staged rows are settled (a broken duplicate-key group stages its copies
        late) to (the natural keys of every staged row, every accepted row's sids and geometries): rows added
        meanwhile are probed then, and a loaded feature whose key is staged again is dropped, being replaced (its
        old outline does not count). Whether a staged row is still accepted after the other set rules is settled
        by :meth:`store_loaded_pairs`."""
        cursor = connection.cursor()
        try:
            cursor.execute("SET jit = off")  # a planner guess of millions of rows would compile for seconds
            cursor.execute("SET random_page_cost = 1.1")  # probe the index (see gisplatform.etl.runner)
            found = [self._probe(cursor, sids, geoms)]
            staged_keys, all_sids, all_geoms = settled.result()
            added = ~np.isin(all_sids, sids)
            if added.any():
                found.append(self._probe(cursor, all_sids[added], all_geoms[added]))
        finally:
            cursor.close()
        found = pa.concat_tables(found)
        if gone_fids is not None and len(gone_fids) and found.num_rows:
            found = found.filter(pa.array(~np.isin(found.column("fid").to_numpy(), gone_fids)))
        found = self._not_staged_again(found, staged_keys)
        order = np.argsort(all_sids, kind="stable")
        at = order[np.searchsorted(all_sids, found.column("sid").to_numpy(), sorter=order)]
        return self._overlapping(found, all_geoms[at])

    def _probe(self, cursor, sids: np.ndarray, geoms: np.ndarray) -> pa.Table:
        """Candidates of :meth:`search_loaded` for these rows: (sid, fid, natural_key, loaded geometry ``d``, the
        loaded feature's key columns ``key_0``…)."""
        x0, y0, x1, y1 = shapely.bounds(geoms).T
        cursor.adbc_ingest("overlap_probe", pa.table({"sid": pa.array(sids, pa.int64()), "x0": x0, "y0": y0,
                                                      "x1": x1, "y1": y1}), mode="replace", temporary=True)
        cursor.execute("ANALYZE overlap_probe")
        cursor.execute(self._probe_sql())
        return cursor.fetch_arrow_table()

    def _not_staged_again(self, found: pa.Table, staged_keys: pa.Table) -> pa.Table:
        """``found`` without the loaded features whose natural key a staged row has (equal values; a null equals
        nothing, as in SQL), in their order."""
        names = [f"key_{i}" for i in range(len(self.layer.natural_key))]
        if not found.num_rows or not staged_keys.num_rows:
            return found.drop_columns(names)
        staged = pa.table({n: staged_keys.column(i).cast(found.schema.field(n).type) for i, n in enumerate(names)})
        rows = found.select(names).append_column("row", pa.array(np.arange(found.num_rows), pa.int64()))
        kept = rows.join(staged, keys=names, join_type="left anti").column("row").to_numpy()
        return found.drop_columns(names).take(pa.array(np.sort(kept)))

    def store_loaded_pairs(self, cursor, ctx: SetContext, pairs: pa.Table) -> None:
        """Store the pairs of :meth:`search_loaded` whose staged row is still accepted after the other set rules
        (a duplicate key rejects it), as :meth:`search` finds them."""
        if not ctx.others_loaded or not pairs.num_rows:
            return
        cursor.adbc_ingest(ctx.loaded_pairs.split(".", 1)[1], pairs, mode="append", db_schema_name="staging")
        cursor.execute(f"DELETE FROM {ctx.loaded_pairs} p USING {ctx.staging} s "
                       "WHERE s.sid = p.sid AND s.errors IS NOT NULL")

    def _overlapping(self, found: pa.Table, staged: np.ndarray) -> pa.Table:
        """Of the candidates (sid, fid, natural_key, loaded geometry ``d``) and their staged geometries, the pairs
        overlapping by more than the tolerance: (sid, fid, natural_key, area)."""
        loaded = shapely.from_wkb(found.column("d").to_numpy(zero_copy_only=False))
        big, area = overlap_areas(staged, loaded, self.tolerance)
        keep = pa.array(np.flatnonzero(big), pa.int64())
        return pa.table({"sid": found.column("sid").take(keep), "fid": found.column("fid").take(keep),
                         "natural_key": found.column("natural_key").take(keep),
                         "area": pa.array(area[big], pa.float64())})

    def _probe_sql(self) -> str:
        """Live features whose boxes share more than the tolerance with a probed box, with their key's columns
        (see :meth:`search_loaded`)."""
        key = self.layer.natural_key
        columns = ", ".join(f"d.{quote(k)} AS key_{i}" for i, k in enumerate(key))
        return f"""
            SELECT p.sid, d.fid, {key_text('d', key)} AS natural_key, ST_AsBinary(d.geom) AS d, {columns}
            FROM (SELECT sid, ST_MakeEnvelope(x0, y0, x1, y1, {self.layer.storage_srid}) AS box FROM overlap_probe) p
                 JOIN {self.layer.qualified_table} d ON d.geom && p.box
            WHERE d.retired_at IS NULL AND {_boxes_share_more_than('p.box', 'd.geom', self.tolerance)}"""

    def _loaded_candidates_sql(self, ctx: SetContext) -> str:
        key = self.layer.natural_key
        staying = "TRUE" if ctx.incremental else f"NOT EXISTS (SELECT 1 FROM {ctx.unmatched} u WHERE u.fid = d.fid)"
        # drive from the staged rows (few on a re-run) and probe the loaded ones through their index; a loaded
        # feature whose key is staged is being replaced, so its old outline does not count
        return f"""
            WITH a AS MATERIALIZED (SELECT sid, geom FROM {ctx.staging} WHERE errors IS NULL AND geom IS NOT NULL)
            SELECT a.sid, d.fid, {key_text('d', key)} AS natural_key, ST_AsBinary(a.geom) AS a,
                   ST_AsBinary(d.geom) AS d
            FROM a JOIN {ctx.data} d ON d.geom && a.geom
            WHERE d.retired_at IS NULL AND ({staying})
              AND NOT EXISTS (SELECT 1 FROM {ctx.staging} r WHERE {key_equal('r', 'd', key)})
              AND {_boxes_share_more_than('a.geom', 'd.geom', self.tolerance)}"""

    def statements(self, ctx: SetContext) -> list[str]:
        return [record_sql(ctx.staging, self.failure_kind, self.name, found) for found in self.findings(ctx)]

    def findings(self, ctx: SetContext) -> list[str]:
        key = self.layer.natural_key

        def side(me: str, other: str) -> str:
            return (f"SELECT {me}.sid, 'overlaps ' || {key_text(other, key)} || ' (' || {other}.src_file || ' row ' "
                    f"|| {other}.src_row || ') by ' || round(p.area::numeric, 1) || ' m²' AS message, "
                    f"{other}.src_file AS other_file, {other}.src_row AS other_row "
                    f"FROM {ctx.pairs} p JOIN {ctx.staging} a ON a.sid = p.a_sid JOIN {ctx.staging} b ON b.sid = p.b_sid "
                    "WHERE a.errors IS NULL AND b.errors IS NULL")

        # ordered aggregates: the same input gives the same message whatever plan or executor staged the rows
        within = f"SELECT sid, string_agg(message, '; ' ORDER BY other_file, other_row) AS message FROM ({side('a', 'b')} UNION ALL {side('b', 'a')}) m " \
                 "GROUP BY sid"
        if not ctx.others_loaded:
            return [within]
        against_loaded = f"""
                SELECT sid, string_agg('overlaps loaded feature ' || natural_key || ' by '
                       || round(area::numeric, 1) || ' m²', '; ' ORDER BY fid) AS message
                FROM {ctx.loaded_pairs} GROUP BY sid"""
        return [within, against_loaded]
