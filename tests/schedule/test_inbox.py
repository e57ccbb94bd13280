"""The inbox: a dropped file is matched to its job, loaded and archived; a file already loaded is not loaded
twice; a corrupt file goes to failed/ with its report and nothing is lost or changed."""
from __future__ import annotations

import shutil

from click.testing import CliRunner

from gisplatform.cli import main
from gisplatform.schedule.inbox import Inbox
from tests.builders import parcels, write_parcels
from tests.load.test_atomicity import snapshot
from tests.schedule.conftest import live_parcels, runner_for, runs, write_job


def make_inbox(tmp_path, **job):
    jobs = tmp_path / "jobs"
    write_job(jobs, "parcels", source={"path": "incoming/thua_dat_*.gpkg"}, **job)
    write_job(jobs, "water_sources", layer="water_sources", source={"path": "sample/water/nguon_nuoc.gpkg"})
    return Inbox(tmp_path / "inbox", runner_for(jobs), settle=0)


def test_a_dropped_file_is_loaded_and_archived(db, tmp_path):
    inbox = make_inbox(tmp_path)
    write_parcels(inbox.root / "thua_dat_05977.gpkg", parcels(4))
    [result] = inbox.poll()
    assert (result.status, result.job) == ("loaded", "parcels")
    assert live_parcels(db) == 4
    [run] = runs(db, "parcels")
    assert (run["trigger"], run["status"], run["inbox_file"], run["run_id"]) == (
        "inbox", "succeeded", "thua_dat_05977.gpkg", result.run_id)
    assert not (inbox.root / "thua_dat_05977.gpkg").exists()
    assert (result.moved_to / "thua_dat_05977.gpkg").is_file() and result.moved_to.parent == inbox.archive
    assert f"run{run['run_id']}" in result.moved_to.name
    assert inbox.poll() == []  # nothing left


def test_the_same_file_is_not_loaded_twice(db, tmp_path):
    inbox = make_inbox(tmp_path)
    write_parcels(tmp_path / "thua_dat_05977.gpkg", parcels(3))
    shutil.copy(tmp_path / "thua_dat_05977.gpkg", inbox.root)
    [first] = inbox.poll()
    shutil.copy(tmp_path / "thua_dat_05977.gpkg", inbox.root / "thua_dat_05977.gpkg")  # delivered again
    [again] = inbox.poll()
    assert (again.status, again.run_id) == ("duplicate", first.run_id)
    assert len(runs(db, "parcels")) == 1  # no second run
    note = (again.moved_to / "duplicate.txt").read_text()
    assert f"already loaded by run {first.run_id}" in note and "không nạp lại" in note
    assert (again.moved_to / "thua_dat_05977.gpkg").is_file()  # kept, not deleted


def test_a_corrupt_file_goes_to_failed_with_its_report_and_changes_nothing(db, tmp_path):
    inbox = make_inbox(tmp_path)
    write_parcels(inbox.root / "thua_dat_05977.gpkg", parcels(2))
    inbox.poll()
    before = snapshot(db)
    corrupt = b"SQLite format 3\x00" + b"\x13" * 3000  # a truncated copy: the header, then garbage
    (inbox.root / "thua_dat_05978.gpkg").write_bytes(corrupt)
    [result] = inbox.poll()
    assert result.status == "failed" and result.moved_to.parent == inbox.failed
    assert snapshot(db) == before
    assert (result.moved_to / "thua_dat_05978.gpkg").read_bytes() == corrupt  # nothing lost
    report = (result.moved_to / "report.txt").read_text()
    assert "thua_dat_05978.gpkg" in report and f"Run: {result.run_id}" in report
    assert "the database was not changed" in report and "Fix the file and drop it into the inbox again" in report
    [run] = [r for r in runs(db, "parcels") if r["run_id"] == result.run_id]
    assert run["status"] == "failed" and run["trigger"] == "inbox" and "thua_dat_05978.gpkg" in run["error"]


def test_a_shapefile_moves_with_its_side_cars_and_a_job_folder_names_the_job(db, tmp_path):
    inbox = make_inbox(tmp_path)
    write_parcels(inbox.root / "parcels" / "to_ban_do_3.shp", parcels(3))  # name matches no pattern: folder
    side_cars = sorted(p.name for p in (inbox.root / "parcels").iterdir())
    assert len(side_cars) >= 4
    [result] = inbox.poll()
    assert result.status == "loaded" and result.job == "parcels"
    assert sorted(p.name for p in result.moved_to.iterdir()) == side_cars
    assert live_parcels(db) == 3


def test_an_unmatched_file_is_set_aside_with_what_to_do(db, tmp_path):
    inbox = make_inbox(tmp_path)
    (inbox.root / "bao_cao.xlsx").write_bytes(b"not ours")
    [result] = inbox.poll()
    assert result.status == "failed" and result.run_id is None
    report = (result.moved_to / "report.txt").read_text()
    assert "no job takes a file named bao_cao.xlsx" in report and "parcels: thua_dat_*.gpkg" in report
    assert runs(db) == []


def test_a_piece_of_a_many_file_source_is_loaded_incrementally(db, tmp_path):
    inbox = make_inbox(tmp_path)  # the job's source is thua_dat_*.gpkg: one file is one commune's sheets
    write_parcels(inbox.root / "thua_dat_a.gpkg", parcels(3))
    inbox.poll()
    write_parcels(inbox.root / "thua_dat_b.gpkg", parcels(5)[3:])
    [result] = inbox.poll()
    assert result.status == "loaded" and live_parcels(db) == 5  # the first file's parcels are not retired


def test_etl_inbox_command_loads_what_waits(db, tmp_path):
    jobs = tmp_path / "jobs"
    write_job(jobs, "parcels", source={"path": "incoming/thua_dat_*.gpkg"})
    write_parcels(tmp_path / "inbox" / "thua_dat_1.gpkg", parcels(2))
    result = CliRunner().invoke(main, ["etl", "inbox", "--inbox", str(tmp_path / "inbox"), "--jobs", str(jobs),
                                       "--settle", "0"])
    assert result.exit_code == 0, result.output
    assert "loaded thua_dat_1.gpkg → parcels run 1" in result.output
    assert live_parcels(db) == 2


def test_the_scheduler_watches_the_inbox(db, tmp_path):
    from gisplatform.schedule.scheduler import Scheduler
    from tests.schedule.conftest import wait_for

    jobs = tmp_path / "jobs"
    write_job(jobs, "parcels", source={"path": "incoming/thua_dat_*.gpkg"})
    scheduler = Scheduler(runner_for(jobs), inbox=tmp_path / "inbox", poll=0.2, settle=0, catch_up=False)
    scheduler.start()
    try:
        write_parcels(tmp_path / "staging_area" / "thua_dat_9.gpkg", parcels(2))
        shutil.move(tmp_path / "staging_area" / "thua_dat_9.gpkg", tmp_path / "inbox")  # an atomic drop
        wait_for(lambda: list((tmp_path / "inbox" / "archive").iterdir()), what="the file to be archived")
    finally:
        scheduler.stop()
    assert [(r["trigger"], r["status"]) for r in runs(db, "parcels")] == [("inbox", "succeeded")]
