"""Run one ETL job: read → transform → validate → stage → merge, all in one transaction.

The run either commits completely (data, history, quarantine, issues, run record) or leaves every table as it
was; only the run log keeps a ``failed`` record of the attempt, with the error. Unchanged source rows (same source
hash as a stored row) are recognised before any parsing, so a re-run of a barely changed file is cheap.

This module is the run's frame: files and their checksums, the run log and the layer's lock, the outcome and
what follows the commit. The data transaction itself is :mod:`gisplatform.etl.execute`, imported only once the
run has its lock and has started reading the layer's state (:mod:`gisplatform.etl.state`): its modules (pandas,
pyogrio, shapely, the rules) take most of a second to import, the database's scan of the layer about as long,
and the two then overlap on two cores instead of following each other.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from gisplatform.config import settings
from gisplatform.db.engine import engine, libpq_dsn  # (light: engine() imports SQLAlchemy when called)
from gisplatform.etl import state
from gisplatform.etl.report import RunReport
from gisplatform.layers import Layer, get_layer, is_raster_layer
from gisplatform.load.runlog import RunLog
from gisplatform.sources.options import SourceError

if TYPE_CHECKING:
    from gisplatform.etl.jobs import Job

LOGGER = logging.getLogger(__name__)
DEFAULT_BATCH_SIZE = 50_000
Progress = Callable[[str, int, int | None], None]  # (stage, rows done in this step, total rows or None)


class EtlError(RuntimeError):
    """A run that failed; the message says what went wrong and what to do. Nothing was changed."""

    def __init__(self, message: str, run_id: int | None = None):
        super().__init__(message)
        self.run_id = run_id


class Cancel:
    """Asks a run in progress to stop: the scheduler on SIGTERM, or a job's time-out.

    The run checks between batches and once more just before it commits, so a cancelled run never commits;
    a statement already running in PostgreSQL is interrupted with ``pg_cancel_backend`` so the rollback comes
    at once, not at the end of a long merge. Every connection of the run that runs statements attaches its
    backend while it does (the data transaction; the read of the layer's state, which a lock may hold up).
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self.reason: str | None = None
        self._backend_pids: set[int] = set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def trigger(self, reason: str) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self.reason = reason
            self._event.set()
            pids = sorted(self._backend_pids)
        for pid in pids:
            _cancel_backend(pid)

    def attach(self, backend_pid: int) -> None:
        """A connection of the run (its backend's pid), interrupted if the run is cancelled; raises at once if
        it already is."""
        with self._lock:
            self._backend_pids.add(backend_pid)
        self.check()

    def detach(self, backend_pid: int) -> None:
        with self._lock:
            self._backend_pids.discard(backend_pid)

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason or "cancelled")


class Cancelled(RuntimeError):
    pass


def _cancel_backend(pid: int) -> None:
    import psycopg2

    connection = psycopg2.connect(libpq_dsn())
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_cancel_backend(%s)", (pid,))
    finally:
        connection.close()


@dataclass
class SourceFile:
    path: Path
    display: str
    size: int
    hasher: ThreadPoolExecutor  # computes the file's SHA-256 (see start_checksum)
    _digest: Future | None = None

    def start_checksum(self) -> None:
        """Start computing the SHA-256 in the background, once the run has read the file (see source_files)."""
        if self._digest is None:
            self._digest = self.hasher.submit(_sha256, self.path)

    @property
    def sha256(self) -> str:
        """The SHA-256 (hex); computed now if the run has not started it (a run that failed before reading)."""
        self.start_checksum()
        return self._digest.result()


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(settings().project_dir))
    except ValueError:
        return str(path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_files(job: Job, hasher: ThreadPoolExecutor) -> list[SourceFile]:
    """The job's files; ``hasher`` computes their checksums once the run has read them and its merge proper
    begins (``start_checksum``, called by gisplatform.etl.execute), beside the upsert, which waits on the database
    and leaves the run's Python a core to spare. Computed at the start, the 0.4 s of a 475 MB file took CPU from
    the imports and the first batch, which every run waits for; computed as soon as the file was read, from the
    search for overlaps with loaded features. A file the page cache no longer holds is read from disk once either
    way: by the run, then by the checksum."""
    paths = job.files()
    related = [p for p in job.options.related.values() if p and p.exists() and p not in paths]
    return [SourceFile(p, _display(p), p.stat().st_size, hasher) for p in paths + related]


def _sources(files: list[SourceFile]) -> tuple[str, str | None]:
    """The run log's ``sources`` (JSON: file, SHA-256, bytes) and ``source_checksum`` (one over all files)."""
    listed = [{"file": f.display, "sha256": f.sha256, "bytes": f.size} for f in files]
    checksum = hashlib.sha256("".join(f.sha256 for f in files).encode()).hexdigest() if files else None
    return json.dumps(listed, ensure_ascii=False), checksum


def _sources_if_readable(files: list[SourceFile]) -> tuple[str | None, str | None]:
    try:
        return _sources(files)
    except OSError:  # a file that vanished or cannot be read: the failure's message says so
        return None, None


def run_job(job: Job, *, trigger: str = "manual", batch_size: int = DEFAULT_BATCH_SIZE,
            progress: Progress | None = None, cancel: Cancel | None = None, attempt: int = 1,
            inbox: tuple[str, str] | None = None, executor: str = "local", dask_address: str | None = None,
            dask_workers: int | None = None) -> RunReport:
    """Run a job to completion. Raises EtlError (nothing changed) or RunLocked (another run holds the layer).

    ``trigger`` is recorded in the run log (manual, schedule, inbox, retry...), with ``attempt`` (1 = first try)
    and ``inbox`` = (file, checksum) for a file taken from the inbox. ``cancel`` stops the run (rolled back).
    ``executor="dask"`` does the per-row work on a Dask cluster (``dask_address``, else a LocalCluster of
    ``dask_workers`` processes); the result is the same as in one process.
    """
    if executor not in ("local", "dask"):
        raise ValueError(f"executor {executor!r}: use local or dask")
    executor_options = {"address": dask_address, "workers": dask_workers} if executor == "dask" else None
    if is_raster_layer(job.layer):  # GeoTIFF -> COG in the raster store (gisplatform.raster.etl)
        from gisplatform.raster.etl import run_raster_job

        return run_raster_job(job, trigger=trigger)
    layer = get_layer(job.layer)
    started = time.perf_counter()
    hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
    try:
        try:
            files = [] if job.derive_from else source_files(job, hasher)
        except (SourceError, OSError) as exc:  # a download that failed: logged like any failed run
            raise EtlError(_explain(exc), _log_unstarted(job, layer, trigger, attempt, inbox, exc)) from exc
        report = _logged_run(job, layer, files, trigger, attempt, inbox, batch_size, progress, cancel,
                             executor_options)
    finally:
        hasher.shutdown(wait=False, cancel_futures=True)  # a run refused (layer busy) need not wait for it
    report.seconds = time.perf_counter() - started
    return report


def _logged_run(job: Job, layer: Layer, files: list[SourceFile], trigger: str, attempt: int, inbox,
                batch_size: int, progress: Progress | None, cancel: Cancel | None,
                executor_options: dict | None) -> RunReport:
    """The run between its log entry and its outcome, then the conflict recompute, holding the layer's lock."""
    log = RunLog()
    try:
        # the checksums are recorded with the outcome (finish_sql, RunLog.fail): they are still being computed
        record = log.start(job.name, layer.name, job.mode, trigger, job.describe_options(),
                           [{"file": f.display, "bytes": f.size} for f in files], None, attempt=attempt, inbox=inbox)
        report = RunReport(record.run_id, job.name, layer.name, job.mode)
        try:
            # the layer is locked: its live features are read now, while the transaction's modules are imported
            live = state.start_reading(libpq_dsn(), layer.qualified_table, cancel)
            from gisplatform.etl.execute import execute

            execute(job, layer, files, report, live, batch_size, progress, cancel, executor_options)
        except Exception as exc:  # noqa: BLE001 - every failure is logged, then reported
            message = cancel.reason if cancel and cancel.is_set() and not isinstance(exc, EtlError) else None
            message = f"{message}: the run was rolled back, nothing was changed" if message else _explain(exc)
            log.fail(message, *_sources_if_readable(files))
            raise EtlError(message, record.run_id) from exc
        with report.phase("conflicts (after commit)"):
            _recompute_conflicts(layer, report.run_id, report.inserted + report.updated + report.retired > 0)
        if report.updated + report.retired:  # only they leave dead row versions behind
            from gisplatform.load.upkeep import vacuum_if_due

            started = time.perf_counter()
            if vacuum_if_due(engine(), layer):
                report.phases["vacuum (after commit)"] = time.perf_counter() - started
        _prune_quarantine(job, report)
        return report
    finally:
        log.close()


def _prune_quarantine(job: Job, report: RunReport) -> None:
    """The job's runs that this one pushed out of the retention lose their rejects and issues (after the commit,
    under the layer's lock: gisplatform.load.retention)."""
    from gisplatform.load.retention import prune_after_run

    started = time.perf_counter()
    if prune_after_run(engine(), job.name):
        report.phases["quarantine pruned (after commit)"] = time.perf_counter() - started


def _log_unstarted(job: Job, layer: Layer, trigger: str, attempt: int, inbox, exc: Exception) -> int:
    """A run that failed before it could read anything (e.g. the download failed) still gets its log row."""
    log = RunLog()
    try:
        record = log.start(job.name, layer.name, job.mode, trigger, job.describe_options(), [], None,
                           attempt=attempt, inbox=inbox)
        log.fail(_explain(exc))
        return record.run_id
    finally:
        log.close()


def _recompute_conflicts(layer: Layer, run_id: int, changed_any: bool = True) -> None:
    """Re-check the conflict rules for the features this run changed (gisplatform.analysis.conflicts).

    After the commit: conflicts are derived data, so a failure here is logged and leaves the load in place
    (the next run or `gisplatform conflicts recompute` catches up).
    """
    from gisplatform.analysis.conflicts import recompute_after_run

    try:
        summary = recompute_after_run(engine(), layer.name, run_id, changed_any)
    except Exception:  # noqa: BLE001 - the load itself succeeded and stays
        LOGGER.exception("conflict recompute after run %s of %s failed", run_id, layer.name)
        return
    if summary is not None:
        LOGGER.info("conflicts after run %s: %s", run_id, summary)


def _explain(exc: Exception) -> str:
    if isinstance(exc, (SourceError, ValueError)):
        return str(exc)
    text = str(exc).strip() or type(exc).__name__
    # database errors echo the whole statement: keep the server's message and hint, not our SQL
    kept = []
    for line in text.splitlines():
        if line.lstrip().startswith(("LINE ", "QUERY:", "CONTEXT:")) or line.strip() == "^":
            continue
        kept.append(line)
        if len("\n".join(kept)) > 600:
            break
    return f"{type(exc).__name__}: " + "\n".join(kept).replace("NOT_FOUND: Failed to prepare query: ", "")
