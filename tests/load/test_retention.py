"""Quarantine retention: old runs lose their rejects and issues, never what a kept run still needs."""
from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from click.testing import CliRunner

from gisplatform import config
from gisplatform.cli import main
from gisplatform.etl.jobs import one_off_job
from gisplatform.etl.runner import run_job
from gisplatform.load.retention import keep_runs_setting, prune_quarantine
from tests.builders import parcel, parcels, write_parcels

JOB = "retention-test"


def load(path):
    return run_job(dataclasses.replace(one_off_job("cadastral_parcels", path, 9215, "auto", "full"), name=JOB))


def fetch(db, sql, **params):
    with db.connect() as connection:
        return connection.execute(sa.text(sql), params).all()


def prune(db, keep):
    with db.begin() as connection:
        return prune_quarantine(connection, keep, JOB)


def shown_rejects(db):
    """(run, row, rule, has its raw record) as every reader sees them (etl.all_rejects)."""
    return fetch(db, "SELECT run_id, row_number, rule, raw_record IS NOT NULL FROM etl.all_rejects "
                     "ORDER BY run_id, row_number")


def test_pruned_runs_lose_rejects_and_issues_but_kept_runs_keep_their_raw_records(db, tmp_path):
    source = parcels(3)
    source[1] = parcel(1, MDSD="XYZ")  # an unknown land-use code: rejected
    source[2] = parcel(2, DIENTICH=900.0)  # recorded area far from the drawn 600 m²: a warning
    path = write_parcels(tmp_path / "p.gpkg", source)
    runs = [load(path) for _ in range(3)]  # the 2nd and 3rd reject row 2 again from the 1st run's reasons
    assert [r.rejected for r in runs] == [1, 1, 1]

    pruned = prune(db, keep=1)
    assert [(p.run_id, p.reasons, p.kept) for p in pruned] == [(runs[0].run_id, 0, 1), (runs[1].run_id, 1, 0)]
    # the kept run still shows its reject with the raw record (held by the first run's row, which stays)
    assert shown_rejects(db) == [(runs[2].run_id, 2, "codes_valid_at_date", True)]
    # the first run's warnings stay while the feature versions it wrote are live: no later run re-checks them
    warnings = fetch(db, "SELECT run_id, row_number, rule FROM etl.issues ORDER BY rule")
    assert {(run, row) for run, row, _ in warnings} == {(runs[0].run_id, 3)} and pruned[0].issues == 0
    assert fetch(db, "SELECT run_id, quarantine_pruned_at IS NOT NULL FROM etl.runs ORDER BY run_id") == [
        (runs[0].run_id, True), (runs[1].run_id, True), (runs[2].run_id, False)]
    assert prune(db, keep=1) == []  # nothing new to prune

    # the next run still rejects the row again, from reasons whose original lives in a pruned run
    again = load(path)
    assert (again.rejected, again.unchanged, again.balanced) == (1, 2, True)
    assert [(p.run_id, p.kept) for p in prune(db, keep=1)] == [(runs[2].run_id, 0)]
    assert shown_rejects(db) == [(again.run_id, 2, "codes_valid_at_date", True)]

    # once the rows are fixed at the source, nothing refers to the original reject any more, and the warnings
    # describe a version that is gone: both go at the next pruning
    source[1], source[2] = parcel(1), parcel(2)
    fixed = load(write_parcels(tmp_path / "p.gpkg", source))
    assert (fixed.rejected, fixed.inserted, fixed.updated) == (0, 1, 1)
    assert [(p.run_id, p.issues) for p in prune(db, keep=1)] == [(again.run_id, 0)]
    assert fetch(db, "SELECT count(*) FROM etl.rejects")[0][0] == 0
    assert fetch(db, "SELECT count(*) FROM etl.rejects_again")[0][0] == 0
    assert fetch(db, "SELECT count(*) FROM etl.issues WHERE run_id = :r", r=runs[0].run_id)[0][0] == 0


def test_only_the_job_asked_for_is_pruned_and_each_job_keeps_its_last_runs(db, tmp_path):
    source = [parcel(0, MDSD="XYZ")]
    path = write_parcels(tmp_path / "p.gpkg", source)
    for _ in range(2):
        load(path)
    other = run_job(one_off_job("cadastral_parcels", path, 9215, "auto", "full"))  # another job, same layer
    assert other.rejected == 1
    with db.begin() as connection:
        assert prune_quarantine(connection, 5, JOB) == []  # two runs: within the retention
        assert prune_quarantine(connection, 0, JOB) == []  # 0: retention off
        assert [p.job for p in prune_quarantine(connection, 1)] == [JOB]  # every job: the other has one run
    assert fetch(db, "SELECT count(*) FROM etl.all_rejects WHERE run_id = :r", r=other.run_id)[0][0] == 1


def test_a_run_prunes_its_job_by_the_configured_retention_and_the_cli_says_what_went(db, tmp_path, monkeypatch):
    settings_file = tmp_path / "gisplatform.toml"
    settings_file.write_text("[retention]\nquarantine_runs = 2\n", encoding="utf-8")
    monkeypatch.setenv("GISPLATFORM_CONFIG", str(settings_file))
    config.reset()
    try:
        assert keep_runs_setting() == 2
        path = write_parcels(tmp_path / "p.gpkg", [parcel(0, MDSD="XYZ"), parcel(1)])
        first, second, third = (load(path) for _ in range(3))
        assert "quarantine pruned (after commit)" not in second.phases
        assert "quarantine pruned (after commit)" in third.phases  # the first fell out of the last two
        assert fetch(db, "SELECT run_id FROM etl.runs WHERE quarantine_pruned_at IS NOT NULL") == [(first.run_id,)]

        result = CliRunner().invoke(main, ["etl", "rejects", str(first.run_id)])
        assert result.exit_code == 1 and f"The rejects of run {first.run_id} were pruned" in result.output
        assert "[retention] quarantine_runs" in result.output
        result = CliRunner().invoke(main, ["etl", "rejects", str(third.run_id)])
        assert result.exit_code == 0 and "codes_valid_at_date" in result.output

        result = CliRunner().invoke(main, ["etl", "prune", "--keep-runs", "1", "--dry-run"])
        assert result.exit_code == 0 and "Would prune" in result.output and str(second.run_id) in result.output
        assert fetch(db, "SELECT count(*) FROM etl.runs WHERE quarantine_pruned_at IS NOT NULL")[0][0] == 1
        result = CliRunner().invoke(main, ["etl", "prune", "--keep-runs", "1"])
        assert result.exit_code == 0 and "Pruned" in result.output
        assert fetch(db, "SELECT run_id FROM etl.runs WHERE quarantine_pruned_at IS NULL") == [(third.run_id,)]

        settings_file.write_text("[retention]\nquarantine_runs = -1\n", encoding="utf-8")
        config.reset()
        result = CliRunner().invoke(main, ["etl", "prune"])
        assert result.exit_code != 0 and "quarantine_runs = -1" in str(result.exception or result.output)
    finally:
        monkeypatch.delenv("GISPLATFORM_CONFIG")
        config.reset()
