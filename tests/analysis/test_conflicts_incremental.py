"""Conflicts follow the ETL: each run re-checks only the features it changed, and that agrees with a full recompute."""
from __future__ import annotations

import time

import sqlalchemy as sa

from gisplatform.analysis import conflicts
from gisplatform.etl.jobs import one_off_job
from gisplatform.etl.runner import run_job
from tests.analysis.conftest import box
from tests.builders import parcel, parcels, write_parcels


def load(path):
    return run_job(one_off_job("cadastral_parcels", path, None, "auto", "full"))


def snapshot(engine) -> dict[tuple, tuple]:
    with engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT rule_id, check_name, key_a, key_b, first_seen, round(overlap_area_m2::numeric, 3) "
            "FROM analysis.conflicts WHERE resolved_at IS NULL")).all()
    return {r[:4]: r[4:] for r in rows}


def last_run(engine) -> tuple:
    with engine.connect() as connection:
        return connection.execute(sa.text(
            "SELECT mode, layer, changed, opened, resolved FROM analysis.runs ORDER BY run_id DESC LIMIT 1")).one()


def test_etl_runs_recompute_the_changed_parcels_only(world, tmp_path):
    world.licence()  # GP-1: 200 m × 200 m from the builders' origin, where their 30 m × 20 m parcels start
    rows = parcels(10)  # parcels 1..7 reach into the licence; all ONT+CLN (residential, not mining land)
    load(write_parcels(tmp_path / "v1.gpkg", rows))
    first = snapshot(world.engine)
    assert {k[3] for k in first if k[0] == "R07"} == {f"05977/3/{i}" for i in range(1, 8)}
    assert last_run(world.engine) == ("full (large change)", "cadastral_parcels", 10, 14, 0)  # a first load

    rows[0] = parcel(0, MDSD="SKS")  # parcel 1 becomes mining land: its R07 and R08 conflicts are resolved
    rows[9] = parcel(9, DTPHAPLY=900.0)  # parcel 10 now disagrees with its legal area (R13)
    load(write_parcels(tmp_path / "v2.gpkg", rows))
    assert last_run(world.engine) == ("incremental", "cadastral_parcels", 2, 1, 2)
    second = snapshot(world.engine)
    assert set(first) - set(second) == {("R07", "residential", "GP-1", "05977/3/1"),
                                        ("R08", "not_mining_land", "GP-1", "05977/3/1")}
    assert set(second) - set(first) == {("R13", "legal_area", "05977/3/10", None)}
    assert all(second[k] == first[k] for k in set(first) & set(second))  # first_seen kept

    summary = conflicts.recompute_all(world.engine)  # the full recompute finds exactly the same
    assert (summary.opened, summary.resolved) == (0, 0)
    assert snapshot(world.engine) == second


def test_retiring_a_parcel_resolves_its_conflicts(world, tmp_path):
    world.licence()
    load(write_parcels(tmp_path / "v1.gpkg", parcels(3)))
    assert len(snapshot(world.engine)) == 6  # R07 + R08 for each of the three parcels
    load(write_parcels(tmp_path / "v2.gpkg", parcels(3)[1:]))  # parcel 1 no longer in the snapshot
    assert {k[3] for k in snapshot(world.engine)} == {"05977/3/2", "05977/3/3"}
    with world.engine.connect() as connection:
        resolved = connection.execute(sa.text(
            "SELECT count(*) FROM analysis.conflicts WHERE resolved_at IS NOT NULL AND key_b = '05977/3/1'")).scalar()
    assert resolved == 2


def test_a_licence_change_is_checked_against_every_parcel(world, tmp_path):
    load(write_parcels(tmp_path / "v1.gpkg", parcels(10)))
    for i in range(4):  # licences elsewhere, so that one new licence is a small change
        world.licence(f"GP-FAR-{i}", box(5000 + 300 * i, 5000, 5200 + 300 * i, 5200))
    conflicts.recompute_all(world.engine)
    assert snapshot(world.engine) == {}
    fid = world.licence()  # written outside the ETL: the incremental recompute is told which feature changed
    summary = conflicts.recompute_after_run(world.engine, "mining_licences", _fake_run(world.engine, fid))
    assert summary.mode == "incremental" and summary.changed == 1
    assert {k[0] for k in snapshot(world.engine)} == {"R07", "R08"}


def _fake_run(engine, fid: int) -> int:
    """Record the licence as written by a run, as the loader would."""
    with engine.begin() as connection:
        run_id = connection.execute(sa.text(
            "INSERT INTO etl.runs (job, layer, mode, status) VALUES ('test', 'mining_licences', 'incremental', "
            "'succeeded') RETURNING run_id")).scalar_one()
        connection.execute(sa.text("UPDATE data.mining_licences SET run_id = :r WHERE fid = :f"),
                           {"r": run_id, "f": fid})
    return run_id


def test_cli_recomputes_and_lists(world):
    from click.testing import CliRunner

    from gisplatform.cli import main

    world.licence("GP-1")
    world.licence("GP-2", box(100, 100, 300, 300))
    result = CliRunner().invoke(main, ["conflicts", "recompute", "--rule", "R06"])
    assert result.exit_code == 0 and "new 1" in result.output, result.output
    listing = CliRunner().invoke(main, ["conflicts", "list", "--lang", "en"])
    assert listing.exit_code == 0 and "Overlapping mining licences" in listing.output and "GP-2" in listing.output


def test_concurrent_recomputes_do_not_collide(world):
    """Two recomputes at once (runs of two layers finishing together) queue on a lock instead of both opening."""
    from concurrent.futures import ThreadPoolExecutor

    world.licence("GP-1")
    world.licence("GP-2", box(100, 100, 300, 300))
    with ThreadPoolExecutor(2) as pool:
        summaries = list(pool.map(lambda _: conflicts.recompute_all(world.engine, ["R06"]), range(2)))
    assert sorted(s.opened for s in summaries) == [0, 1]
    assert len(snapshot(world.engine)) == 1


def _statistics(engine) -> tuple[int, int]:
    with engine.connect() as connection:
        return connection.execute(sa.text(
            "SELECT analyze_count + autoanalyze_count, n_mod_since_analyze FROM pg_stat_user_tables "
            "WHERE relid = 'analysis.conflicts'::regclass")).one()


def test_a_recompute_analyzes_the_conflicts_table_once_much_of_it_changed(world):
    """Autovacuum may be off or behind (it is off on the CI server): without statistics the planner reconciled
    the 20,000 findings of a first million-parcel load by nested loop, for 100 s."""
    with world.engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO analysis.conflicts (rule_id, check_name, severity, layer_a, fid_a, geom) "
            "SELECT 'R13', 'legal_area', 'warning', 'cadastral_parcels', i, ST_SetSRID(ST_MakePoint(400000, 2400000 + i), 9215) "
            "FROM generate_series(1, 300) i"))
    for _ in range(100):  # the insert's counts reach the statistics view when its session is idle
        before, changed = _statistics(world.engine)
        if changed >= 300:
            break
        time.sleep(0.05)
    assert changed >= 300
    summary = conflicts.recompute_all(world.engine)
    assert summary.resolved == 300  # no parcels: every one of them is resolved
    assert _statistics(world.engine)[0] == before + 1


def test_a_run_that_changed_nothing_records_a_recompute_that_checked_nothing(world, tmp_path):
    world.licence()
    path = write_parcels(tmp_path / "v1.gpkg", parcels(3))
    load(path)
    opened = snapshot(world.engine)
    report = load(path)  # the same file again: every row unchanged
    assert (report.inserted, report.updated, report.retired) == (0, 0, 0)
    assert last_run(world.engine) == ("nothing changed", "cadastral_parcels", 0, 0, 0)
    assert snapshot(world.engine) == opened


def test_a_recompute_is_logged_from_its_start_finding_the_changed_features_included(world, tmp_path, monkeypatch):
    """analysis.runs times the whole recompute: its start precedes the search for the changed features (the
    load benchmark subtracts this window from the command's time; it must not leave part of it to the load)."""
    load(write_parcels(tmp_path / "v1.gpkg", parcels(3)))
    rows = parcels(3)
    rows[0] = parcel(0, DTPHAPLY=900.0)
    report = load(write_parcels(tmp_path / "v2.gpkg", rows))
    searched_at = []
    changed_features = conflicts.changed_features

    def timed(connection, layer, etl_run_id):
        searched_at.append(connection.execute(sa.text("SELECT clock_timestamp()")).scalar())
        return changed_features(connection, layer, etl_run_id)

    monkeypatch.setattr(conflicts, "changed_features", timed)
    summary = conflicts.recompute_after_run(world.engine, "cadastral_parcels", report.run_id)
    assert summary.changed == 1 and len(searched_at) == 1
    with world.engine.connect() as connection:
        started, finished = connection.execute(sa.text(
            "SELECT started_at, finished_at FROM analysis.runs ORDER BY run_id DESC LIMIT 1")).one()
    assert started <= searched_at[0] <= finished
