"""The data transaction of one run: read → transform → validate → stage → merge → commit.

Called by :mod:`gisplatform.etl.runner`, which holds the layer's lock and the run log, and has started reading
the layer's live features (:mod:`gisplatform.etl.state`) before this module's imports began.
"""
from __future__ import annotations

import json
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import adbc_driver_postgresql.dbapi as adbc
import numpy as np
import shapely

import gisplatform
from gisplatform.codes import load_code_tables
from gisplatform.config import settings
from gisplatform.db.engine import libpq_dsn
from gisplatform.etl.jobs import Job
from gisplatform.etl.report import FileReport, RunReport
from gisplatform.etl.runner import Cancel, Progress, SourceFile, _display, _sources
from gisplatform.etl.state import LiveFeatures
from gisplatform.layers import Layer
from gisplatform.load import merge
from gisplatform.load.runlog import finish_sql
from gisplatform.load.staging import Staging
from gisplatform.sources import open_reader
from gisplatform.sources.derived import DerivedReader
from gisplatform.sources.readahead import read_ahead
from gisplatform.transform import pipeline
from gisplatform.transform.hashing import seed_of
from gisplatform.validate import RuleContext, rules_for, run_row_rules
from gisplatform.validate.codes import AdminUnitIndex
from gisplatform.validate.sets import DuplicateNaturalKey, key_text

LOGGER = logging.getLogger(__name__)


def _fingerprint(layer: Layer, job: Job, boundaries: str = "") -> bytes:
    """Seed of the source hash: any change to the layer definition, code tables, job options, code version or
    the commune boundaries the row rules place features in skips nothing (every row is checked again)."""
    definition = layer.path.read_text(encoding="utf-8") if layer.path else layer.name
    codes = "".join(p.read_text(encoding="utf-8") for p in sorted(settings().codes_dir.glob("*.csv")))
    return seed_of(definition, codes, json.dumps(job.describe_options(), sort_keys=True, default=str),
                   gisplatform.__version__, boundaries)


def _boundaries_version(cursor, layer: Layer) -> str:
    """Which commune boundaries the row rules see: the admin-units run that last changed them."""
    if layer.name == "admin_units":
        return ""
    cursor.execute("SELECT max(run_id) FROM etl.runs WHERE layer = 'admin_units' AND status = 'succeeded' "
                   "AND (inserted + updated + retired) > 0")
    return str(cursor.fetchone()[0])


def _rule_context(cursor, layer: Layer, job: Job) -> RuleContext:
    code_tables = load_code_tables(cursor)
    ctx = RuleContext(code_tables=code_tables, today=np.datetime64("today", "D"), fixes=job.fixes)
    if layer.name != "admin_units":  # boundaries, when loaded, place features in the province and communes
        ctx.admin_units = _admin_unit_index(cursor)
    return ctx


def _admin_unit_index(cursor) -> AdminUnitIndex | None:
    cursor.execute("SELECT code, valid_from, valid_to, ST_AsBinary(geom) FROM data.admin_units "
                   "WHERE retired_at IS NULL")
    rows = cursor.fetchall()
    if not rows:
        return None
    codes, starts, ends, wkb = zip(*rows)
    return AdminUnitIndex(np.array(codes, dtype=object), np.array(starts, dtype="datetime64[D]"),
                          np.array([e if e else np.datetime64("NaT", "D") for e in ends], dtype="datetime64[D]"),
                          shapely.from_wkb(np.array([bytes(w) for w in wkb], dtype=object)))


@dataclass
class Reusable:
    """The rows the job's last successful run rejected whose reasons hold again if they come again unchanged."""

    run_id: int | None
    hashes: np.ndarray  # their source hashes, sorted
    keys: np.ndarray  # their natural keys as text
    grouped: np.ndarray  # bool: rejected as a copy of a duplicate key (whose other copies must all come again)

    def without_groups(self) -> "Reusable":
        keep = ~self.grouped
        return Reusable(self.run_id, self.hashes[keep], self.keys[keep], self.grouped[keep])

    @classmethod
    def none(cls) -> "Reusable":
        return cls(None, np.zeros(0, np.int64), np.zeros(0, dtype=object), np.zeros(0, dtype=bool))


def _duplicate_rule(set_rules) -> str:
    """Name of the layer's duplicate-key rule ("" when it has none)."""
    return next((r.name for r in set_rules if isinstance(r, DuplicateNaturalKey)), "")


def _reusable_rejects(cursor, job: Job, layer: Layer, set_rules) -> Reusable:
    """The rows the job's last successful run rejected for themselves alone, or as copies of a duplicate key
    among themselves. A row rejected for any other set rule, or as a duplicate of a loaded feature or of a row
    rejected earlier, depends on rows outside the run's rejects and is checked again; so is every row when the
    seed (layer, codes, options, version) changed, since its source hash then differs. A duplicate-key group is
    reused only while all its copies come again unchanged and no other row takes its key (see
    ``_Run.release_broken_groups``)."""
    cursor.execute("SELECT max(run_id) FROM etl.runs WHERE job = $1 AND layer = $2 AND status = 'succeeded'",
                   (job.name, layer.name))
    previous = cursor.fetchone()[0]
    if previous is None:
        return Reusable.none()
    duplicate = _duplicate_rule(set_rules)
    others = "{" + ",".join(r.name for r in set_rules if r.name != duplicate) + "}"
    # a clean group: two or more copies, each rejected once as a duplicate, for nothing that depends on other rows;
    # the reasons of rows rejected again come from the arrays (what the view would join for is not needed here)
    cursor.execute("""
        WITH reasons AS (
            SELECT source_hash, natural_key, rule FROM etl.rejects WHERE run_id = $1
            UNION ALL
            SELECT u.source_hash, u.natural_key, u.rule
            FROM etl.rejects_again a, unnest(a.source_hashes, a.natural_keys, a.rules) u(source_hash, natural_key, rule)
            WHERE a.run_id = $1
        ), per_row AS (
            SELECT source_hash, min(natural_key) AS natural_key, count(*) FILTER (WHERE rule = $3) AS copies,
                   bool_and(rule <> ALL($2::text[])) AS own FROM reasons
            WHERE source_hash IS NOT NULL GROUP BY source_hash
        ), clean AS (
            SELECT natural_key FROM per_row WHERE copies > 0 GROUP BY natural_key
            HAVING count(*) > 1 AND bool_and(copies = 1 AND own))
        SELECT p.source_hash, p.natural_key, p.copies > 0 FROM per_row p
        WHERE p.own AND (p.copies = 0 OR p.natural_key IN (SELECT natural_key FROM clean))
        ORDER BY p.source_hash""", (previous, others, duplicate))
    table = cursor.fetch_arrow_table()
    return Reusable(previous, table.column(0).to_numpy().astype(np.int64),
                    np.asarray(table.column(1).to_pylist(), dtype=object),
                    table.column(2).to_numpy(zero_copy_only=False).astype(bool))


class _MatchOnce:
    """Sorted hashes (of stored features, or of the last run's rejects) that source rows match, each at most once:
    a second row with the same hash is a duplicate, to be processed, even in a later batch."""

    def __init__(self, known: np.ndarray):
        self.known = known
        self.used = np.zeros(len(known), dtype=bool)  # matched by a source row already
        self._first_row: np.ndarray | None = None  # per hash, the first row of the batch matching it (scratch)

    def first_matches(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows whose hash is known and not yet matched, the first of the batch's rows with that hash only.
        Returns the mask and the matched positions in ``known`` (in row order), which are marked used."""
        if not len(self.known):
            return np.zeros(len(hashes), dtype=bool), np.zeros(0, dtype=np.int64)
        position = np.minimum(np.searchsorted(self.known, hashes), len(self.known) - 1)
        candidates = np.flatnonzero((self.known[position] == hashes) & ~self.used[position])
        at = position[candidates]
        # the first row per hash by a scatter-min into a scratch array, reset after: a sort of the batch's hashes
        # (np.unique) cost a re-run of a million rows 0.1 s more
        if self._first_row is None:
            self._first_row = np.full(len(self.known), _NO_ROW, dtype=np.int64)
        np.minimum.at(self._first_row, at, candidates)
        first = self._first_row[at] == candidates
        self._first_row[at] = _NO_ROW
        match = np.zeros(len(hashes), dtype=bool)
        match[candidates[first]] = True
        self.used[at[first]] = True
        return match, at[first]


_NO_ROW = np.iinfo(np.int64).max


class _Run:
    """The state of one run while it streams files into staging."""

    def __init__(self, job: Job, layer: Layer, report: RunReport, cursor, ctx: RuleContext, seed: bytes,
                 live: Future, batch_size: int, progress: Progress | None, cancel: Cancel | None = None):
        self.job, self.layer, self.report, self.cursor, self.ctx = job, layer, report, cursor, ctx
        self.live = live  # LiveFeatures, read on a connection of its own since the run took the lock
        self.cancel = cancel
        self.seed, self.batch_size, self.progress = seed, batch_size, progress
        self.row_rules, self.set_rules = rules_for(layer)
        self.overlaps = next((r.new_index() for r in self.set_rules if r.needs_pairs), None)
        self.again: list[_Again] = []  # rows rejected again unchanged, per batch
        self.held: list[_Held] = []  # the source rows of duplicate-key groups, in case a group no longer holds
        self.pending: list[tuple[object, np.ndarray]] = []  # rows of the file to check, with their source hashes
        self.pending_plan = None  # the plan of their file
        self.staging = Staging(cursor, layer, report.run_id)
        self.extra_rejects = 0
        self.stager = None  # a DaskStager when the per-row work runs on a Dask cluster
        self._staged_settled: Future | None = None  # see _search_loaded_overlaps
        # The rest of what the layer holds (the last run's rejects) is read, and the staging tables created, while
        # the first batch is read, hashed and its encodings detected.
        self._starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="run-start")
        self._started: Future | None = self._starter.submit(self._read_state)
        self._starter.shutdown(wait=False)

    def _read_state(self) -> None:
        # rows the last run rejected for themselves alone (or as copies of a duplicate key among themselves): if
        # they come again unchanged, so do their reasons; read, and the staging tables created, on the run's
        # connection while the live features are still being scanned on others
        self.reusable = _reusable_rejects(self.cursor, self.job, self.layer, self.set_rules)
        self.rejected = _MatchOnce(self.reusable.hashes)
        self.staging.create()
        # live features by source hash (sorted), and those loaded without one, which no source row can match
        features: LiveFeatures = self.live.result()
        self.known, self.known_fids, self.hashless_fids = features.hashes, features.fids, features.hashless_fids
        self.stored = _MatchOnce(self.known)  # live features' hashes, each matched by one source row at most

    def ready(self) -> "_Run":
        """Wait for the layer's state (re-raising its error); call before anything uses it or the cursor."""
        if self._started is not None:
            started, self._started = self._started, None
            started.result()
        return self

    def _skippable(self, hashes: np.ndarray) -> np.ndarray:
        """Rows identical to a stored live row; repeats of a row already skipped are processed (duplicates)."""
        return self.stored.first_matches(hashes)[0]

    def _rejected_again(self, hashes: np.ndarray, rows: np.ndarray, display: str,
                        skip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows (not skipped) identical to a reusable reject of the last run: rejected again, for the same
        reasons, without being checked or staged (their reasons are copied in :meth:`merge_staged`). Returns
        them, and those of them that are copies of a duplicate key (held until :meth:`release_broken_groups`)."""
        again = np.zeros(len(hashes), dtype=bool)
        grouped = np.zeros(len(hashes), dtype=bool)
        candidates = np.flatnonzero(~skip)
        matched, position = self.rejected.first_matches(hashes[candidates])
        again[candidates[matched]] = True
        grouped[candidates[matched]] = self.reusable.grouped[position]
        if again.any():
            self.again.append(_Again(hashes[again], np.full(int(again.sum()), display, dtype=object), rows[again],
                                     self.reusable.keys[position], self.reusable.grouped[position]))
        return again, grouped

    def reuse_no_groups(self) -> None:
        self.reusable = self.reusable.without_groups()
        self.rejected = _MatchOnce(self.reusable.hashes)

    def unmatched_fids(self) -> np.ndarray:
        """Live features no source row matched unchanged (see Staging.append_unmatched)."""
        return np.concatenate([self.known_fids[~self.stored.used], self.hashless_fids]).astype(np.int64)

    def release_broken_groups(self) -> None:
        """A duplicate-key group rejected again holds only while every copy came again unchanged and no staged
        row has its key (a new copy, or a changed one). The copies of a group that no longer holds are checked
        like any other row: fixed at the source, the last copy loads."""
        if not self.held:
            return
        reusable = self.reusable
        broken = set(reusable.keys[reusable.grouped & ~self.rejected.used])  # a copy did not come again
        self.staging.wait()
        self.cursor.execute(f"SELECT DISTINCT {key_text('s', self.layer.natural_key)} FROM {self.staging.table} s")
        held_keys = set(np.concatenate([h.keys for h in self.held]))
        broken |= held_keys & set(self.cursor.fetch_arrow_table().column(0).to_pylist())
        if not broken:
            return

        def in_broken(keys: np.ndarray) -> np.ndarray:  # (a set lookup: np.isin sorts object arrays, 0.1 s)
            return np.fromiter((k in broken for k in keys), dtype=bool, count=len(keys))

        self.again = [entry.rows_where(~(entry.grouped & in_broken(entry.keys))) for entry in self.again]
        for held in self.held:
            release = in_broken(held.keys)
            if release.any():
                held.file_report.rejected_unchanged -= int(release.sum())
                self._set_aside(pipeline.subset(held.batch, release), held.plan, held.hashes[release])
        self.held = []
        self._process_pending()

    def _stage_rejected_again(self) -> int:
        """Record the rows rejected again unchanged (for the key checks and retirement), copy their reasons."""
        if not any(len(entry.hashes) for entry in self.again):
            return 0
        hashes, files, rows, keys, grouped = (np.concatenate(parts) for parts in zip(*self.again))
        self.staging.append_again(hashes, files.tolist(), rows, keys, grouped)
        self.cursor.execute(merge.rejected_again_sql(self.staging, self.layer, self.reusable.run_id,
                                                     _duplicate_rule(self.set_rules)))
        return len(hashes)

    def load_file(self, source: SourceFile) -> None:
        options, note = self.job.options_for(source.path)
        reader = open_reader(source.path, self.layer, options, self.job.reader)
        self.load_reader(reader, source.display, options, note)

    def load_reader(self, reader, display: str, options, note: str | None = None) -> None:
        file_report = FileReport(display, note=note)
        self.report.files.append(file_report)
        total = reader.info().feature_count
        plan = None
        # the next batches are read and hashed in a thread of their own while this one is matched, checked and
        # staged (and while a re-run waits for the layer's state at the first batch)
        with closing(read_ahead(reader.batches(self.batch_size), self._source_hashes, depth=4)) as batches:
            for batch, hashes in batches:
                if self.cancel:
                    self.cancel.check()
                if plan is None:
                    plan = pipeline.plan_file(reader, batch, self.layer, options, display)
                    file_report.plan = plan.describe()
                self._load_batch(batch, hashes, plan, file_report)
                if self.progress:
                    self.progress(f"reading {display}", len(batch), total)
        self._process_pending()
        if hasattr(reader, "orphan_corners"):
            self._reject_orphans(reader)

    def _source_hashes(self, batch) -> np.ndarray:
        return pipeline.source_hashes(batch, self.seed)

    def _load_batch(self, batch, hashes: np.ndarray, plan, file_report: FileReport) -> None:
        skip = self.ready()._skippable(hashes)
        again, grouped = self._rejected_again(hashes, batch.row_numbers, plan.display, skip)
        file_report.rows += len(batch)
        file_report.skipped_unchanged += int(skip.sum())
        file_report.rejected_unchanged += int(again.sum())
        self.report.read += len(batch)
        if grouped.any():
            latest = self.again[-1]  # this batch's rows rejected again
            self.held.append(_Held(pipeline.subset(batch, grouped), plan, file_report, hashes[grouped],
                                   latest.keys[latest.grouped]))
        if skip.any() or again.any():
            keep = ~(skip | again)
            batch, hashes = pipeline.subset(batch, keep), hashes[keep]
        self._set_aside(batch, plan, hashes)

    def _set_aside(self, batch, plan, hashes: np.ndarray) -> None:
        """Rows to check (neither skipped nor rejected again), gathered per file until they fill a batch: a
        re-run's few changed rows of each batch are then checked in one call, not twenty (each call of the
        transform and the rules has a fixed cost: about 0.1 s of a 1 % re-run of a million rows)."""
        if self.pending and plan is not self.pending_plan:  # rows of another file
            self._process_pending()
        self.pending.append((batch, hashes))
        self.pending_plan = plan
        if sum(len(b) for b, _ in self.pending) >= self.batch_size:
            self._process_pending()

    def _process_pending(self) -> None:
        """Check the rows set aside, at the latest when their file ends."""
        if self.pending:
            batches, hashes = zip(*self.pending)
            self.pending = []
            self._process(pipeline.concat(list(batches)), self.pending_plan, np.concatenate(hashes))

    def _process(self, batch, plan, hashes: np.ndarray) -> None:
        """Transform, check and stage source rows that were neither skipped nor rejected again."""
        if not len(batch):
            return
        batch.parse_geometry()
        if self.stager is not None:  # transform, validate and COPY on the cluster; same staging ids
            self.stager.submit(batch, plan, hashes, self.staging.rows)
            self.staging.staged_elsewhere(len(batch))
            return
        layer_batch = pipeline.transform(batch, plan, self.layer, hashes, self.ctx.today)
        run_row_rules(layer_batch, self.row_rules, self.ctx)
        pipeline.finish(layer_batch, self.ctx)
        sids = self.staging.append(layer_batch)
        if self.overlaps is not None:
            accepted = ~layer_batch.issues.rejected()
            self.overlaps.add(sids[accepted], layer_batch.geometry[accepted])

    def _reject_orphans(self, reader) -> None:
        """Corner-table rows whose licence is not in the register: accounted for as rejected source rows."""
        self.ready().staging.wait()
        for licence_no, lines, corner_file in _orphans(reader):
            self.cursor.execute(
                "INSERT INTO etl.rejects (run_id, layer, file, row_number, natural_key, rule, message) "
                "VALUES ($1, $2, $3, $4, $5, 'orphan_corners', $6)",
                (self.report.run_id, self.layer.name, corner_file, int(lines[0]), f"licence_no={licence_no}",
                 f"corner-table lines {', '.join(map(str, lines))} belong to licence {licence_no}, which is not in "
                 "the register: add the licence to the register or correct the licence number"))
            self.report.read += 1
            self.extra_rejects += 1

    def _search_loaded_overlaps(self) -> Future | None:
        """Start the search for staged rows overlapping loaded features (a re-run's) on a connection of its own,
        as soon as the files are read, while this run's connection settles duplicate groups, copies reasons and
        checks keys (a 1 % re-run of a million parcels: half a second off the merge). The search finishes once
        :meth:`_settle_staged` says which rows are staged. None when nothing is loaded, the layer has no such
        rule, or the rows were staged on a Dask cluster (the rule then searches from the staging table, in the
        merge)."""
        rule = next((r for r in self.set_rules if r.needs_pairs), None)
        if rule is None or self.overlaps is None or not len(self.overlaps) or self.stager is not None \
                or not (len(self.known) or len(self.hashless_fids)):
            return None
        gone = self.unmatched_fids() if self.job.full_snapshot else None  # final once every file is read
        self._staged_settled = Future()
        searcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="overlaps-loaded")
        try:
            return searcher.submit(_on_own_connection, rule.search_loaded, *self.overlaps.rows(), gone,
                                   self._staged_settled)
        finally:
            searcher.shutdown(wait=False)

    def _settle_staged(self, failed: BaseException | None = None) -> None:
        """Tell the search of :meth:`_search_loaded_overlaps` that the staged rows are settled (or that the run
        failed, so that its thread ends)."""
        settled, self._staged_settled = self._staged_settled, None
        if settled is None:
            return
        if failed is not None:
            settled.set_exception(failed)
            return
        try:
            settled.set_result((self.staging.staged_keys(), *self.overlaps.rows()))
        except BaseException as error:
            settled.set_exception(error)  # never leave the search waiting
            raise

    def merge_staged(self, merging: Callable[[], object]) -> None:
        """Settle, check and merge the staged rows. ``merging`` is called as the merge proper begins: the files'
        checksums are computed then, on the core the database's upsert leaves idle (started as the files were
        read, they took that core from the search for overlaps with loaded features and the reasons' copy)."""
        self.ready()
        if self.stager is not None:
            self.stager.finish()
        with self.report.phase("rejected again"):  # duplicate groups settled, last run's reasons copied
            loaded_pairs = self._search_loaded_overlaps()  # every file is read: on a second connection
            try:
                self.release_broken_groups()
            except BaseException as error:
                self._settle_staged(error)
                raise
            self._settle_staged()
            self.staging.append_unmatched(self.unmatched_fids())
            rejected_again = self._stage_rejected_again()
        if self.progress:
            self.progress("checking and merging", 0, None)
        ctx = merge.set_context(self.cursor, self.staging, self.layer, self.job.full_snapshot)
        searching = None  # a first load whose pair rules only warn: the pair search goes on during the merge
        if self.overlaps is not None and self.stager is None and merge.warnings_can_follow_insert(ctx, self.set_rules):
            searching = self.overlaps.pairs_in_background()
        # The database indexes the staging table and checks keys while Python searches overlapping pairs
        # (both release the GIL): on two cores the pair search costs no wall time of its own.
        with self.report.phase("set checks"), ThreadPoolExecutor(max_workers=1) as pool:
            database_side = pool.submit(merge.prepare, self.cursor, self.staging, ctx, self.set_rules)
            pairs = self.overlaps.pairs() if self.overlaps is not None and searching is None else None
            database_side.result()
            if pairs is not None:
                self.staging.append_pairs(*pairs)
        merging()
        with self.report.phase("merge"):
            counts = merge.complete(self.cursor, self.staging, self.layer, ctx, self.set_rules,
                                    loaded_pairs.result if loaded_pairs is not None else None, searching)
        skipped = sum(f.skipped_unchanged for f in self.report.files)
        r = self.report
        r.inserted, r.updated, r.retired = counts.inserted, counts.updated, counts.retired
        # live features now, without counting a million rows: the run holds the layer's lock, so only its own
        # inserts, revivals and retirements changed what was live when it started
        r.features = len(self.known) + len(self.hashless_fids) + counts.inserted + counts.revived - counts.retired
        r.rejected = counts.rejected + self.extra_rejects + rejected_again
        r.unchanged = counts.unchanged + skipped
        self.staging.drop()


class _Again(NamedTuple):
    """Rows of one batch rejected again unchanged (parallel arrays)."""

    hashes: np.ndarray
    files: np.ndarray
    rows: np.ndarray
    keys: np.ndarray  # natural key text, as the last run recorded it
    grouped: np.ndarray  # bool: a copy of a duplicate key

    def rows_where(self, keep: np.ndarray) -> "_Again":
        return _Again(*(part[keep] for part in self))


@dataclass
class _Held:
    """Source rows rejected again as copies of a duplicate key, kept until their group is known to hold."""

    batch: object  # SourceBatch of just these rows
    plan: object
    file_report: FileReport
    hashes: np.ndarray
    keys: np.ndarray  # natural key text, as the last run recorded it


def _on_own_connection(work: Callable, *args):
    """``work(connection, *args)`` on a new autocommit connection of its own, closed afterwards."""
    with closing(adbc.connect(libpq_dsn(), autocommit=True)) as connection:
        return work(connection, *args)


def _settle(run: _Run) -> None:
    """After a failure too, the cursor must be free before the staging copier and the rollback use it."""
    try:
        run.ready()
    except Exception:  # noqa: BLE001 - the run is already failing with the error that matters
        LOGGER.debug("reading the layer's state failed as the run ended", exc_info=True)


def _orphans(reader):
    corner_file = _display(Path(getattr(reader, "corners_path", reader.path)))
    for licence_no, lines in reader.orphan_corners():
        yield licence_no, lines, corner_file


def _findings(cursor, run_id: int, report: RunReport) -> None:
    """Rows per rule, with an example message. Rows rejected again are counted from the arrays of
    ``etl.rejects_again``; a rule found only among them takes its example from its first original reject."""
    # grouped by row first (hashed), since count(DISTINCT (file, row_number)) sorts row values, twice as slow for
    # the tens of thousands of findings of a large file
    cursor.execute("""
        WITH again AS (
            SELECT u.* FROM etl.rejects_again a,
                 unnest(a.rules, a.files, a.row_numbers, a.originals, a.messages) u(rule, file, row_number, original,
                                                                                     message)
            WHERE a.run_id = $1
        ), per_row AS (
            SELECT 'error' AS kind, rule, min(message) AS example FROM etl.rejects WHERE run_id = $1
            GROUP BY rule, file, row_number UNION ALL
            SELECT 'error', rule, NULL FROM again GROUP BY rule, file, row_number UNION ALL
            SELECT kind, rule, min(message) FROM etl.issues WHERE run_id = $1 GROUP BY kind, rule, file, row_number
        ), first_again AS (
            SELECT e.rule, coalesce(e.message, o.message) AS example
            FROM (SELECT DISTINCT ON (rule) rule, original, message FROM again ORDER BY rule, original) e
                 JOIN etl.rejects o ON o.id = e.original
        )
        SELECT p.kind, p.rule, count(*), coalesce(min(p.example), min(f.example))
        FROM per_row p LEFT JOIN first_again f ON p.kind = 'error' AND f.rule = p.rule
        GROUP BY p.kind, p.rule""", (run_id,))
    for kind, rule, rows, example in cursor.fetchall():
        report.findings[(kind, rule)] = rows
        report.examples[(kind, rule)] = example


def _load_sources(run: _Run, job: Job, layer: Layer, files: list[SourceFile]) -> None:
    if job.derive_from:
        reader = DerivedReader(layer)
        run.load_reader(reader, reader.path, reader.options)
        return
    for source in files:
        if source.path in job.options.related.values():
            continue  # read through its register (e.g. the corner table)
        run.load_file(source)


def execute(job: Job, layer: Layer, files: list[SourceFile], report: RunReport, live: Future, batch_size: int,
            progress: Progress | None, cancel: Cancel | None = None, dask: dict | None = None) -> None:
    """The run's transaction, committed or rolled back as a whole. ``live``: the layer's LiveFeatures, being read
    since the run took the lock (gisplatform.etl.state)."""
    after_close: list[Callable[[], None]] = []  # clean-ups that must wait for the transaction to end
    try:
        with closing(adbc.connect(libpq_dsn(), autocommit=False)) as connection, \
                closing(connection.cursor()) as cursor:
            # code tables and boundaries as the transaction sees them, read on its connection: SQLAlchemy (0.2 s
            # to import) is then not needed before the commit
            ctx = _rule_context(cursor, layer, job)
            seed = _fingerprint(layer, job, _boundaries_version(cursor, layer))
            _in_transaction(job, layer, files, report, live, batch_size, progress, cancel, dask, ctx, seed,
                            connection, cursor, after_close)
    finally:
        for clean_up in after_close:
            clean_up()


def _in_transaction(job: Job, layer: Layer, files: list[SourceFile], report: RunReport, live: Future,
                    batch_size: int, progress: Progress | None, cancel: Cancel | None, dask: dict | None,
                    ctx: RuleContext, seed: bytes, connection, cursor, after_close: list) -> None:
    cursor.execute("SET LOCAL work_mem = '256MB'")
    # a first load's index builds sort a million keys and boxes: in memory (GiST 10 % faster than with 64 MB)
    cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
    cursor.execute("SET LOCAL jit = off")  # compiling the merge's large plans cost seconds, running them less
    # The staged rows of a re-run are few against the layer; at the default random_page_cost (4, for spinning
    # disks) the planner hashes the whole layer three times (≈ 2 s per million features) instead of probing its
    # indexes a few thousand times. 1.1 is the usual setting for SSDs and for tables that sit in memory.
    cursor.execute("SET LOCAL random_page_cost = 1.1")
    backend = None
    if cancel:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
        cancel.attach(backend)
    try:
        _stage_merge_commit(job, layer, files, report, live, batch_size, progress, cancel, ctx, seed, connection,
                            cursor, dask, after_close)
    finally:
        if cancel:
            cancel.detach(backend)


def _stage_merge_commit(job: Job, layer: Layer, files: list[SourceFile], report: RunReport, live: Future,
                        batch_size: int, progress: Progress | None, cancel: Cancel | None, ctx: RuleContext,
                        seed: bytes, connection, cursor, dask: dict | None = None,
                        after_close: list | None = None) -> None:
    # what the layer holds now (live features' hashes, last run's rejects) is read in the background
    run = _Run(job, layer, report, cursor, ctx, seed, live, batch_size, progress, cancel)
    try:
        if dask is not None:
            from gisplatform.schedule.executor.dask_executor import DaskStager

            run.stager = DaskStager(run.ready(), **dask)
            run.reuse_no_groups()  # held rows could not be sent to the cluster after it finished
            after_close.append(run.stager.drop_scratch)
        with report.phase("read and check rows"):
            _load_sources(run, job, layer, files)
        run.merge_staged(lambda: [source.start_checksum() for source in files])
    finally:
        try:
            if run.stager is not None:
                run.stager.close()
        finally:
            _settle(run)
            run.staging.close()
            if run.overlaps is not None:
                run.overlaps.close()
    with report.phase("report"):
        _findings(cursor, report.run_id, report)
        report.status = "succeeded"
        if not report.balanced:
            raise RuntimeError(f"row accounting does not balance: read {report.read} ≠ inserted "
                               f"{report.inserted} + updated {report.updated} + unchanged {report.unchanged} "
                               f"+ rejected {report.rejected}")
    cursor.execute(finish_sql(report.run_id), (report.read, report.inserted, report.updated, report.unchanged,
                                              report.rejected, report.retired, report.repaired, report.warnings,
                                              json.dumps(report.as_json(), ensure_ascii=False, default=str),
                                              report.features, *_sources(files)))
    if cancel:
        cancel.check()  # the last moment a cancelled run can still leave everything as it was
    connection.commit()
    report.committed_at = time.time()
