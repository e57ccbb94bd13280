"""Reading the run log and the quarantine (for the CLI and, later, the status page)."""
from __future__ import annotations

import sqlalchemy as sa

from gisplatform.db.engine import engine

# the quarantine as people read it, one row per reason: rows rejected again unchanged included, each with the
# raw record of the reject it refers to (migration 0009)
RESOLVED_REJECTS = "etl.all_rejects"


def recent_runs(limit: int = 20) -> list[dict]:
    with engine().connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT run_id, job, layer, mode, trigger, status, started_at, finished_at, "
            "extract(epoch FROM finished_at - started_at) AS seconds, read, inserted, updated, unchanged, rejected, "
            "retired, repaired, warnings, source_checksum, error, attempt, inbox_file FROM etl.runs "
            "ORDER BY run_id DESC LIMIT :n"),
            {"n": limit}).mappings().all()
    return [dict(r) for r in rows]


def run_rejects(run_id: int, limit: int | None = 50) -> list[dict]:
    with engine().connect() as connection:
        query = (f"SELECT file, row_number, natural_key, rule, field, message, raw_record FROM {RESOLVED_REJECTS} r "
                 "WHERE run_id = :run ORDER BY file, row_number, id")
        if limit:
            query += f" LIMIT {int(limit)}"
        return [dict(r) for r in connection.execute(sa.text(query), {"run": run_id}).mappings().all()]


def quarantine_pruned_at(run_id: int):
    """When the run's rejects and issues were pruned (gisplatform.load.retention), or None."""
    with engine().connect() as connection:
        return connection.execute(sa.text("SELECT quarantine_pruned_at FROM etl.runs WHERE run_id = :run"),
                                  {"run": run_id}).scalar()


def next_due_times(jobs: dict | None = None) -> list[dict]:
    """Per job: its cron, when it is due next (Asia/Ho_Chi_Minh unless the job says otherwise), its last run."""
    from gisplatform.etl.jobs import load_jobs, run_order
    from gisplatform.schedule.cron import next_due

    jobs = jobs if jobs is not None else load_jobs()
    with engine().connect() as connection:
        last = {r.job: r for r in connection.execute(sa.text(
            "SELECT DISTINCT ON (job) job, status, started_at FROM etl.runs WHERE status <> 'skipped' "
            "ORDER BY job, run_id DESC"))}
    return [{"job": job.name, "layer": job.layer, "cron": (job.schedule or {}).get("cron"),
             "timezone": (job.schedule or {}).get("timezone"), "next_due": next_due(job.schedule),
             "last_status": last[job.name].status if job.name in last else None,
             "last_started": last[job.name].started_at if job.name in last else None}
            for job in run_order(jobs)]
