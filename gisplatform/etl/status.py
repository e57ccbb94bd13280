"""Reading the run log and the quarantine (for the CLI and, later, the status page)."""
from __future__ import annotations

import sqlalchemy as sa

from gisplatform.db.engine import engine


def recent_runs(limit: int = 20) -> list[dict]:
    with engine().connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT run_id, job, layer, mode, trigger, status, started_at, finished_at, "
            "extract(epoch FROM finished_at - started_at) AS seconds, read, inserted, updated, unchanged, rejected, "
            "retired, repaired, warnings, source_checksum, error FROM etl.runs ORDER BY run_id DESC LIMIT :n"),
            {"n": limit}).mappings().all()
    return [dict(r) for r in rows]


def run_rejects(run_id: int, limit: int | None = 50) -> list[dict]:
    with engine().connect() as connection:
        query = ("SELECT file, row_number, natural_key, rule, field, message, raw_record FROM etl.rejects "
                 "WHERE run_id = :run ORDER BY file, row_number, id")
        if limit:
            query += f" LIMIT {int(limit)}"
        return [dict(r) for r in connection.execute(sa.text(query), {"run": run_id}).mappings().all()]
