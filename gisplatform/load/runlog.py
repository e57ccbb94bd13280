"""The run log (``etl.runs``) and the lock that keeps two runs of one layer from overlapping.

The log row is written on its own connection and committed at once, so a run that fails still leaves its
record (status ``failed`` with the error). The same connection holds a session-level advisory lock on the layer
for the whole run: a second run, from any process or machine, finds the lock taken and says who holds it.
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass

import psycopg2
import psycopg2.extras

from gisplatform.db.engine import libpq_dsn

LOCK_NAMESPACE = 0x67_69_73  # "gis": keeps our advisory locks apart from other applications'


class RunLocked(RuntimeError):
    """Another run of the same layer is in progress."""


@dataclass
class RunRecord:
    run_id: int
    job: str
    layer: str


class RunLog:
    def __init__(self) -> None:
        self.connection = psycopg2.connect(libpq_dsn())
        self.connection.autocommit = True
        self.record: RunRecord | None = None

    def lock_key(self, layer: str) -> int:
        with self.connection.cursor() as cur:
            cur.execute("SELECT hashtext(%s)", (f"gisplatform.layer.{layer}",))
            return cur.fetchone()[0]

    def acquire(self, layer: str) -> None:
        """Take the layer's lock or raise RunLocked naming the run that holds it."""
        key = self.lock_key(layer)
        with self.connection.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, key))
            if cur.fetchone()[0]:
                return
            cur.execute(
                "SELECT run_id, job, started_at, host, pid FROM etl.runs WHERE layer = %s AND status = 'running' "
                "ORDER BY run_id DESC LIMIT 1", (layer,))
            holder = cur.fetchone()
        who = (f"run {holder[0]} of job {holder[1]}, started {holder[2]:%Y-%m-%d %H:%M:%S} on {holder[3]} "
               f"(pid {holder[4]})" if holder else "another process")
        raise RunLocked(f"layer {layer} is being loaded by {who}; two runs of one layer cannot overlap. "
                        "Wait for it to finish (gisplatform etl status) and run again.")

    def start(self, job: str, layer: str, mode: str, trigger: str, options: dict, sources: list[dict],
              checksum: str | None, *, attempt: int = 1, inbox: tuple[str, str] | None = None) -> RunRecord:
        self.acquire(layer)
        return self._insert(job, layer, mode, trigger, "running", options, sources, checksum, attempt, inbox)

    def skipped(self, job: str, layer: str, mode: str, trigger: str, reason: str) -> RunRecord:
        """A due run that did not start (the layer was busy): logged, so the log shows every time a job was due."""
        record = self._insert(job, layer, mode, trigger, "skipped", {}, [], None, 1, None, reason)
        self.record = None
        return record

    def _insert(self, job, layer, mode, trigger, status, options, sources, checksum, attempt, inbox,
                error: str | None = None) -> RunRecord:
        inbox_file, inbox_checksum = inbox or (None, None)
        with self.connection.cursor() as cur:
            # one statement: a reader never sees a skipped run without its reason
            cur.execute(
                "INSERT INTO etl.runs (job, layer, mode, trigger, status, host, pid, options, sources, source_checksum,"
                " attempt, inbox_file, inbox_checksum, error, finished_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " CASE WHEN %s = 'skipped' THEN clock_timestamp() END) RETURNING run_id",
                (job, layer, mode, trigger, status, socket.gethostname(), os.getpid(), json.dumps(options),
                 json.dumps(sources, ensure_ascii=False), checksum, attempt, inbox_file, inbox_checksum, error,
                 status))
            self.record = RunRecord(cur.fetchone()[0], job, layer)
        return self.record

    def fail(self, error: str, sources: str | None = None, checksum: str | None = None) -> None:
        """Mark the run failed; ``sources`` (JSON) and ``checksum`` when the files could be read to the end."""
        if self.record is None:
            return
        with self.connection.cursor() as cur:
            cur.execute("UPDATE etl.runs SET status = 'failed', finished_at = clock_timestamp(), error = %s, "
                        "sources = coalesce(%s::jsonb, sources), source_checksum = coalesce(%s, source_checksum) "
                        "WHERE run_id = %s", (error, sources, checksum, self.record.run_id))

    def close(self) -> None:
        # Release the layer lock before closing: a closed connection's backend lets go of its locks only when it
        # has finished exiting, so on a busy server the next run of the layer could still find the lock taken.
        try:
            with self.connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock_all()")
        except Exception:  # noqa: BLE001 - a broken connection: closing it releases the lock anyway
            pass
        finally:
            self.connection.close()


def finish_sql(run_id: int) -> str:
    """The statement, run inside the data transaction, that marks the run succeeded with its counts."""
    return (
        "UPDATE etl.runs SET status = 'succeeded', finished_at = clock_timestamp(), read = $1, inserted = $2, "
        "updated = $3, unchanged = $4, rejected = $5, retired = $6, repaired = $7, warnings = $8, report = $9::jsonb, "
        f"features = $10, sources = $11::jsonb, source_checksum = $12 WHERE run_id = {int(run_id)}"
    )
