"""``gisplatform scheduler``: runs the jobs of etl/*.yml when their cron says, and polls the inbox.

Built on APScheduler 3 (a BackgroundScheduler; the main thread waits for a signal). The rules:

* Times: each job's cron in its time zone (default Asia/Ho_Chi_Minh, UTC+7, no daylight saving).
* Never twice at once: ``max_instances=1`` within a process; across processes and machines the layer's
  PostgreSQL advisory lock (gisplatform.load.runlog) — the loser logs the due run as ``skipped``.
* Missed runs (the stated policy): while the scheduler runs, a run that could not start on time (all workers
  busy, machine suspended) still starts if it is late by less than ``misfire_grace`` (default 1 h); several
  missed firings of a job are coalesced into one run. After downtime (no scheduler running), at start the
  scheduler runs each job once if its most recent due time passed within ``misfire_grace`` and no run of the
  job started since; older misses are not made up (the next due time stands) and are logged.
* SIGTERM / SIGINT: no new runs; a run in progress is cancelled and rolled back (the database is as before the
  run; the run log says why), then the process exits 0. systemd's TimeoutStopSec only needs to cover a rollback.
"""
from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from gisplatform.db.engine import engine
from gisplatform.etl.jobs import DEFAULT_TIMEZONE, Job
from gisplatform.schedule.cron import cron_trigger
from gisplatform.schedule.inbox import Inbox
from gisplatform.schedule.policy import Runner

LOGGER = logging.getLogger("gisplatform.schedule")
INBOX_JOB = "__inbox__"


class Scheduler:
    def __init__(self, runner: Runner, *, inbox: Path | None = None, poll: float = 30.0, settle: float = 10.0,
                 workers: int = 2, misfire_grace: float = 3600.0, catch_up: bool = True):
        self.runner = runner
        self.inbox = Inbox(inbox, runner, settle) if inbox else None
        self.poll = poll
        self.misfire_grace = misfire_grace
        self.catch_up = catch_up
        # Two workers: a long cadastral load does not hold back the licences; same-layer runs are excluded by
        # the advisory lock anyway. The machine's other work (serving) keeps its share of the cores.
        self.aps = BackgroundScheduler(
            timezone=DEFAULT_TIMEZONE, executors={"default": ThreadPoolExecutor(max_workers=workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": int(misfire_grace)})
        self.aps.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR)
        self.stopped = threading.Event()

    def scheduled_jobs(self) -> list[Job]:
        return [j for j in self.runner.jobs.values() if j.schedule]

    def start(self) -> None:
        for job in self.scheduled_jobs():
            self.aps.add_job(self._fire, cron_trigger(job.schedule), args=(job.name, "schedule"), id=job.name,
                             name=f"ETL {job.name}")
        if self.inbox:
            self.aps.add_job(self._poll_inbox, IntervalTrigger(seconds=self.poll), id=INBOX_JOB, name="inbox",
                             next_run_time=datetime.now().astimezone())
        self.aps.start()
        if self.catch_up:
            for job in self.missed_after_downtime():
                LOGGER.info("job %s missed its run while no scheduler was running: running it now", job.name)
                self.aps.add_job(self._fire, args=(job.name, "schedule (catch-up)"), id=f"{job.name}:catch-up",
                                 next_run_time=datetime.now().astimezone())
        LOGGER.info("scheduler started: %d scheduled job(s)%s", len(self.scheduled_jobs()),
                    f", inbox {self.inbox.root} every {self.poll:g} s" if self.inbox else "")

    def next_due(self) -> dict[str, datetime | None]:
        return {j.id: j.next_run_time for j in self.aps.get_jobs() if j.id != INBOX_JOB}

    def stop(self, reason: str = "the scheduler is stopping (SIGTERM)") -> None:
        """Cancel (roll back) what is running, wait for it to wind up, stop firing."""
        LOGGER.info("stopping: %s", reason)
        self.runner.stop(reason)
        if self.aps.running:
            self.aps.shutdown(wait=True)
        self.stopped.set()

    def serve_forever(self) -> None:
        """Run until SIGTERM or SIGINT (Ctrl+C), then stop cleanly."""
        requested = threading.Event()
        received: list[str] = []

        def on_signal(signum, frame):  # noqa: ARG001 - the signal API's signature
            received.append(signal.Signals(signum).name)
            LOGGER.info("received %s", received[-1])
            requested.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        while not requested.wait(1.0):  # a timed wait keeps the main thread responsive to signals
            pass
        self.stop(f"the scheduler is stopping ({received[0] if received else 'SIGTERM'})")

    # -- what runs in the worker threads -----------------------------------------------------------------------
    def _fire(self, name: str, trigger: str) -> None:
        if self.runner.stopping.is_set():
            return
        outcome = self.runner.run(self.runner.jobs[name], trigger)
        LOGGER.info("job %s (%s): %s after %d try(s)%s", name, trigger, outcome.status, outcome.attempts,
                    f", run {outcome.run_id}" if outcome.run_id else "")

    def _poll_inbox(self) -> None:
        for result in self.inbox.poll():
            LOGGER.info("inbox: %s → %s%s", result.file, result.status,
                        f" (run {result.run_id})" if result.run_id else "")

    def _on_event(self, event) -> None:
        if event.code == EVENT_JOB_MISSED:
            LOGGER.warning("job %s was due at %s and could not start within %g s: skipped (next due time stands)",
                           event.job_id, event.scheduled_run_time, self.misfire_grace)
        elif event.code == EVENT_JOB_ERROR:
            LOGGER.error("job %s raised %r", event.job_id, event.exception)

    def missed_after_downtime(self, now: datetime | None = None) -> list[Job]:
        """Jobs whose latest due time passed within ``misfire_grace`` with no run of theirs started since."""
        now = now or datetime.now().astimezone()
        missed = []
        with engine().connect() as connection:
            last = dict(connection.execute(sa.text(
                "SELECT job, max(started_at) FROM etl.runs GROUP BY job")).all())
        for job in self.scheduled_jobs():
            due = previous_due(job.schedule, now, timedelta(seconds=self.misfire_grace))
            if due is None:
                continue
            if last.get(job.name) is None or last[job.name] < due:
                missed.append(job)
        return missed


def previous_due(schedule: dict, now: datetime, window: timedelta) -> datetime | None:
    """The latest time the schedule fired in (now - window, now], or None."""
    trigger = cron_trigger(schedule)
    due, latest = trigger.get_next_fire_time(None, now - window), None
    while due is not None and due <= now:
        latest = due
        due = trigger.get_next_fire_time(due, due + timedelta(seconds=1))
    return latest
