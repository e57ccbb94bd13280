"""A raster ETL job inside the run log: the same ``etl.runs`` record, lock and failure rules as a vector run.

A raster run reads one file (the job's ``source.path``; a glob must match exactly one) and publishes at most one
version. In the run's counts a new version is one ``inserted`` row, an unchanged source one ``unchanged``, a
rejected file one ``rejected``; ``report.raster`` holds the version, its COG's checksum and path. The run log is
therefore also the layer's version history (:func:`raster_history`).
"""
from __future__ import annotations

import json
import time

import psycopg2.extras

from gisplatform.etl.jobs import Job
from gisplatform.etl.report import FileReport, RunReport
from gisplatform.load.runlog import RunLog
from gisplatform.raster import ingest as raster_ingest
from gisplatform.raster.layers import get_raster_layer


def _source(job: Job):
    from gisplatform.etl.runner import EtlError, _display

    files = job.files()
    if len(files) != 1:
        raise EtlError(f"job {job.name}: a raster job reads one GeoTIFF, but {job.path} matches {len(files)} files "
                       f"({', '.join(_display(p) for p in files[:5])}); make the path name a single file")
    return files[0], _display(files[0])


def run_raster_job(job: Job, *, trigger: str = "manual") -> RunReport:
    """Run a raster job. Raises EtlError (the published version stays) or RunLocked."""
    from gisplatform.etl.runner import EtlError

    layer = get_raster_layer(job.layer)
    started = time.perf_counter()
    path, display = _source(job)
    checksum = raster_ingest.sha256(path)
    log = RunLog()
    try:
        record = log.start(job.name, layer.name, job.mode, trigger, job.describe_options(),
                           [{"file": display, "sha256": checksum, "bytes": path.stat().st_size}], checksum)
        report = RunReport(record.run_id, job.name, layer.name, job.mode, read=1, features=1)
        report.files.append(FileReport(display, rows=1))
        try:
            result = raster_ingest.ingest(path, layer, run_id=record.run_id, crs=job.options.crs,
                                          nodata=job.nodata)
        except Exception as exc:  # noqa: BLE001 - logged as a failed run, reported to the caller
            message = str(exc) if isinstance(exc, raster_ingest.RasterError) else f"{type(exc).__name__}: {exc}"
            log.fail(message)
            raise EtlError(message, record.run_id) from exc
        report.inserted, report.unchanged = (1, 0) if result.new else (0, 1)
        report.status = "succeeded"
        report.seconds = time.perf_counter() - started
        _finish(log, report, raster_ingest.describe(result))
        return report
    finally:
        log.close()


def _finish(log: RunLog, report: RunReport, raster: dict) -> None:
    body = {**report.as_json(), **raster}
    with log.connection.cursor() as cur:
        cur.execute("UPDATE etl.runs SET status = 'succeeded', finished_at = clock_timestamp(), read = 1, "
                    "inserted = %s, unchanged = %s, features = 1, report = %s WHERE run_id = %s",
                    (report.inserted, report.unchanged, json.dumps(body, ensure_ascii=False, default=str),
                     report.run_id))


def raster_history(layer: str) -> list[dict]:
    """Every run of a raster layer, newest first: status, version published (if any), COG checksum, error."""
    log = RunLog()
    try:
        with log.connection.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute("SELECT run_id, status, started_at, source_checksum, sources, error, "
                        "report -> 'raster' ->> 'version' AS version, report -> 'raster' ->> 'sha256' AS sha256, "
                        "(report -> 'raster' ->> 'new_version')::boolean AS new_version "
                        "FROM etl.runs WHERE layer = %s ORDER BY run_id DESC", (layer,))
            return [dict(r) for r in cur.fetchall()]
    finally:
        log.close()
