"""One job run as the scheduler and the inbox do it: tries with back-off, a time-out, derived layers after,
a notification at the end. Manual runs (``gisplatform etl run``) stay a single try.

* A failed try is logged (``etl.runs``, status failed, its ``attempt``) and changed nothing; the next try
  waits ``retries.backoff`` seconds, then ``factor`` times longer each time.
* A try still running after ``timeout`` is cancelled: rolled back, logged as failed, retried like any failure.
* The layer busy (another run, in any process or on any machine, holds its advisory lock): not retried,
  logged as ``skipped``; the next due time will try again.
* Stop requested (SIGTERM): the try in progress is cancelled and rolled back; no further try or derived run.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from gisplatform.etl.jobs import Job, load_jobs
from gisplatform.etl.report import RunReport
from gisplatform.etl.runner import Cancel, EtlError, run_job
from gisplatform.load.runlog import RunLocked, RunLog
from gisplatform.schedule.notify import Notifier, RunEvent

LOGGER = logging.getLogger("gisplatform.schedule")


@dataclass
class Outcome:
    job: str
    status: str  # succeeded | failed | skipped | stopped
    attempts: int = 0
    report: RunReport | None = None
    run_id: int | None = None
    error: str | None = None
    derived: list["Outcome"] = field(default_factory=list)


class Runner:
    """Runs jobs under their policy. One per scheduler process; ``stop()`` is safe from a signal handler."""

    def __init__(self, jobs: dict[str, Job] | None = None, notifier: Notifier | None = None):
        self.jobs = jobs if jobs is not None else load_jobs()
        self.notifier = notifier if notifier is not None else Notifier()
        self.stopping = threading.Event()
        self._running: set[Cancel] = set()
        self._lock = threading.Lock()

    def stop(self, reason: str = "the scheduler is stopping (SIGTERM)") -> None:
        """No new tries; the tries in progress are cancelled and roll back."""
        self.stopping.set()
        with self._lock:
            running = list(self._running)
        for cancel in running:
            cancel.trigger(reason)

    def run(self, job: Job, trigger: str, inbox: tuple[str, str] | None = None) -> Outcome:
        outcome = self._tries(job, trigger, inbox)
        if outcome.status == "succeeded" and job.recompute and job.after and _changed(outcome.report):
            for name in job.after:  # derived layers (e.g. corridors from water sources) follow their source
                if self.stopping.is_set():
                    break
                outcome.derived.append(self.run(self.jobs[name], f"after {job.name}"))
        return outcome

    def _tries(self, job: Job, trigger: str, inbox) -> Outcome:
        outcome = Outcome(job.name, "failed")
        for attempt in range(1, job.retries.attempts + 1):
            if self.stopping.is_set():
                outcome.status = "stopped"
                break
            outcome.attempts = attempt
            try:
                outcome.report = self._one_try(job, trigger, attempt, inbox)
            except RunLocked as exc:
                outcome.status, outcome.error = "skipped", str(exc)
                outcome.run_id = _log_skipped(job, trigger, str(exc))
                LOGGER.warning("job %s skipped: %s", job.name, exc)
                break
            except EtlError as exc:
                outcome.run_id, outcome.error = exc.run_id, str(exc)
                LOGGER.error("job %s try %d/%d failed (run %s): %s", job.name, attempt, job.retries.attempts,
                             exc.run_id, exc)
                if self.stopping.is_set():
                    outcome.status = "stopped"
                    break
                if attempt < job.retries.attempts:
                    delay = job.retries.delay(attempt)
                    LOGGER.info("job %s: next try in %.0f s", job.name, delay)
                    if self.stopping.wait(delay):  # a stop during the back-off ends the wait at once
                        outcome.status = "stopped"
                        break
                continue
            outcome.status, outcome.run_id, outcome.error = "succeeded", outcome.report.run_id, None
            break
        self._notify(job, trigger, outcome, inbox)
        return outcome

    def _one_try(self, job: Job, trigger: str, attempt: int, inbox) -> RunReport:
        cancel = Cancel()
        timer = None
        if job.timeout:
            timer = threading.Timer(job.timeout, cancel.trigger,
                                    (f"time-out: the run took longer than {job.timeout:g} s (timeout: in "
                                     f"{job.definition.name if job.definition else job.name})",))
            timer.daemon = True
        with self._lock:
            self._running.add(cancel)
        if self.stopping.is_set():  # stop() came between the check and the registration
            cancel.trigger("the scheduler is stopping (SIGTERM)")
        try:
            if timer:
                timer.start()
            return run_job(job, trigger=trigger if attempt == 1 else f"{trigger} (retry)", cancel=cancel,
                           attempt=attempt, inbox=inbox)
        finally:
            if timer:
                timer.cancel()
            with self._lock:
                self._running.discard(cancel)

    def _notify(self, job: Job, trigger: str, outcome: Outcome, inbox) -> None:
        if outcome.status == "stopped":
            return  # the operator stopped the scheduler: not news
        report = outcome.report
        counts = ({k: getattr(report, k) for k in ("read", "inserted", "updated", "unchanged", "rejected",
                                                    "retired")} if report else {})
        self.notifier.send(RunEvent(job.name, outcome.status, trigger, outcome.attempts, outcome.run_id,
                                    outcome.error, counts, inbox[0] if inbox else None))


def _changed(report: RunReport | None) -> bool:
    return bool(report and (report.inserted or report.updated or report.retired))


def _log_skipped(job: Job, trigger: str, reason: str) -> int | None:
    log = RunLog()
    try:
        return log.skipped(job.name, job.layer, job.mode, trigger, reason).run_id
    finally:
        log.close()
