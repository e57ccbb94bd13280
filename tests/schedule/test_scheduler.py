"""The scheduler: a cron fires and runs the job; two schedulers never run one job at once; SIGTERM mid-run
rolls back; runs missed while no scheduler ran are made up once; the systemd unit."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from gisplatform.cli import main
from gisplatform.schedule.scheduler import Scheduler, previous_due
from tests.builders import parcels, write_parcels
from tests.load.test_atomicity import snapshot
from tests.schedule.conftest import live_parcels, runner_for, runs, wait_for, write_job

EVERY_SECOND = {"cron": "* * * * * *", "timezone": "Asia/Ho_Chi_Minh"}
GISPLATFORM = Path(sys.executable).parent / "gisplatform"


def start_scheduler(jobs: Path, tmp_path: Path, name: str) -> subprocess.Popen:
    log = (tmp_path / f"{name}.log").open("w")
    return subprocess.Popen([str(GISPLATFORM), "scheduler", "--jobs", str(jobs), "--no-inbox", "--no-catch-up"],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ})


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=120)


def kill_left_over(processes: list[subprocess.Popen]) -> None:
    """A test that failed half-way must not leave schedulers running."""
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_schedule_fires_and_runs_the_job(db, tmp_path):
    source = write_parcels(tmp_path / "parcels.gpkg", parcels(3))
    write_job(tmp_path / "jobs", "parcels", source={"path": str(source)}, schedule=EVERY_SECOND)
    scheduler = Scheduler(runner_for(tmp_path / "jobs"), catch_up=False)
    scheduler.start()
    try:
        assert scheduler.next_due()["parcels"].tzinfo is not None
        wait_for(lambda: any(r["status"] == "succeeded" for r in runs(db, "parcels")), what="a scheduled run")
    finally:
        scheduler.stop()
    first = runs(db, "parcels")[0]
    assert first["trigger"] == "schedule" and first["status"] == "succeeded" and first["inserted"] == 3
    assert live_parcels(db) == 3


def test_two_schedulers_never_run_one_job_at_once(db, tmp_path):
    source = write_parcels(tmp_path / "parcels.gpkg", parcels(3))
    jobs = tmp_path / "jobs"
    write_job(jobs, "parcels", source={"path": str(source)}, schedule=EVERY_SECOND)
    processes: list[subprocess.Popen] = []
    with db.connect() as blocker:
        # Hold the run inside PostgreSQL: whichever scheduler starts first keeps the layer's advisory lock.
        blocker.execute(sa.text("LOCK TABLE data.cadastral_parcels IN ACCESS EXCLUSIVE MODE"))
        try:
            processes += [start_scheduler(jobs, tmp_path, f"scheduler{i}") for i in (1, 2)]
            running = wait_for(lambda: [r for r in pid_runs(db) if r["status"] == "running"], what="a running run")
            holder = f"being loaded by run {running[0]['run_id']} of job parcels"
            # (the first refusal may come before the holder's log row exists; it then names "another process")
            wait_for(lambda: [r for r in pid_runs(db) if r["status"] == "skipped" and holder in r["error"]],
                     what="the other scheduler finding the layer busy")
            skipped = [r for r in pid_runs(db) if r["status"] == "skipped"]
            assert len([r for r in pid_runs(db) if r["status"] == "running"]) == 1
            assert {r["pid"] for r in skipped} == {p.pid for p in processes} - {running[0]["pid"]}
        except BaseException:
            kill_left_over(processes)
            raise
        finally:
            blocker.rollback()
        try:
            wait_for(lambda: any(r["status"] == "succeeded" for r in pid_runs(db)), what="the run to finish")
            assert [stop(p) for p in processes] == [0, 0]
        finally:
            kill_left_over(processes)
    # every run that did start had the layer to itself: no two overlap in time
    done = sorted((r["started_at"], r["finished_at"]) for r in pid_runs(db) if r["status"] != "skipped")
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(done, done[1:]))
    # the schedule fires every second, so the stop may meet a later run in progress: rolled back, and it says so
    failed = [r for r in pid_runs(db) if r["status"] == "failed"]
    assert all("stopping (SIGTERM): the run was rolled back" in r["error"] for r in failed), failed
    assert {r["status"] for r in pid_runs(db)} <= {"succeeded", "skipped", "failed"}
    assert live_parcels(db) == 3


def pid_runs(db) -> list[dict]:
    with db.connect() as connection:
        return [dict(r) for r in connection.execute(sa.text(
            "SELECT run_id, pid, status, error, started_at, finished_at FROM etl.runs ORDER BY run_id")).mappings()]


def test_sigterm_mid_run_leaves_the_database_as_before(db, tmp_path):
    source = tmp_path / "parcels.gpkg"
    write_parcels(source, parcels(2))
    jobs = tmp_path / "jobs"
    write_job(jobs, "parcels", source={"path": str(source)})
    runner_for(jobs).run(runner_for(jobs).jobs["parcels"], "manual")
    before = snapshot(db)
    write_parcels(source, parcels(5))  # the next run would add three parcels
    write_job(jobs, "parcels", source={"path": str(source)}, schedule=EVERY_SECOND, retries=3)
    with db.connect() as blocker:
        blocker.execute(sa.text("LOCK TABLE data.cadastral_parcels IN ACCESS EXCLUSIVE MODE"))
        process = start_scheduler(jobs, tmp_path, "scheduler")
        try:
            run = wait_for(lambda: [r for r in runs(db, "parcels") if r["status"] == "running"], what="the run")[0]
            # SIGTERM while the run waits inside PostgreSQL: the scheduler must not wait for the table lock
            assert stop(process) == 0
        finally:
            kill_left_over([process])
            blocker.rollback()
    assert snapshot(db) == before
    [after] = [r for r in runs(db, "parcels") if r["run_id"] == run["run_id"]]
    assert after["status"] == "failed" and "SIGTERM" in after["error"] and "rolled back" in after["error"]
    assert [r["status"] for r in runs(db, "parcels")][-1] == "failed"  # no retry after the stop
    assert "stopping" in (tmp_path / "scheduler.log").read_text()


def test_a_run_missed_while_no_scheduler_ran_is_made_up_once(db, tmp_path):
    source = write_parcels(tmp_path / "parcels.gpkg", parcels(2))
    jobs = tmp_path / "jobs"
    write_job(jobs, "parcels", source={"path": str(source)}, schedule={"cron": "0 2 * * *"})
    now = datetime.now().astimezone()
    # due at 02:00 (Asia/Ho_Chi_Minh) every day: within a 25-hour window there is always one due time
    due = previous_due({"cron": "0 2 * * *"}, now, timedelta(hours=25))
    assert due.hour == 2 and due.utcoffset() == timedelta(hours=7)
    assert Scheduler(runner_for(jobs), misfire_grace=60, catch_up=False).missed_after_downtime(
        due + timedelta(seconds=61)) == []  # later than the grace: not made up, the next due time stands
    scheduler = Scheduler(runner_for(jobs), misfire_grace=25 * 3600)
    assert [j.name for j in scheduler.missed_after_downtime()] == ["parcels"]
    scheduler.start()
    try:
        wait_for(lambda: any(r["status"] == "succeeded" for r in runs(db, "parcels")), what="the catch-up run")
    finally:
        scheduler.stop()
    assert [r["trigger"] for r in runs(db, "parcels")] == ["schedule (catch-up)"]
    assert scheduler.missed_after_downtime() == []  # it ran since the due time


def test_install_writes_a_systemd_unit_and_prints_crontab_lines(tmp_path):
    unit = tmp_path / "gisplatform-scheduler.service"
    result = CliRunner().invoke(main, ["scheduler", "install", "--systemd", "--output", str(unit),
                                       "--run-as", "gis", "--arg=--poll=60"])
    assert result.exit_code == 0, result.output
    text = unit.read_text()
    assert f"ExecStart={GISPLATFORM} scheduler --poll=60" in text
    assert "User=gis" in text and "KillSignal=SIGTERM" in text and "WantedBy=multi-user.target" in text
    cron = CliRunner().invoke(main, ["scheduler", "install", "--cron"])
    assert "CRON_TZ=Asia/Ho_Chi_Minh" in cron.output
    assert f"0 2 * * * {GISPLATFORM} etl run cadastral_parcels -q --trigger schedule" in cron.output
    assert CliRunner().invoke(main, ["scheduler", "install"]).exit_code == 2
