"""A run commits fully or leaves the database exactly as it was; two runs of one layer never overlap."""
from __future__ import annotations

import hashlib

import psycopg2
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from gisplatform.cli import EXIT_LOCKED, main
from gisplatform.db.engine import libpq_dsn
from gisplatform.etl.jobs import one_off_job
from gisplatform.etl.runner import EtlError, run_job
from gisplatform.load.runlog import LOCK_NAMESPACE, RunLocked, RunLog
from tests.builders import parcel, parcels, write_parcels

TABLES = ("data.cadastral_parcels", "history.cadastral_parcels", "etl.rejects", "etl.rejects_again", "etl.issues")


def snapshot(db) -> dict:
    """Every row of every table a run writes, as text: equal snapshots mean an unchanged database."""
    with db.connect() as connection:
        state = {t: connection.execute(sa.text(f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {t} t"))
                 .scalar() for t in TABLES}
        state["staging"] = connection.execute(sa.text(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'staging'")).scalar()
    return state


def load(path, mode="full"):
    return run_job(one_off_job("cadastral_parcels", path, None, "auto", mode))


def test_failure_in_the_middle_of_the_merge_leaves_everything_as_it_was(db, tmp_path):
    load(write_parcels(tmp_path / "a.gpkg", parcels(4)))
    changed = parcels(5)
    changed[0] = parcel(0, MDSD="CLN")
    changed[3] = parcel(3, MDSD="LUC", DIENTICH=900.0)  # a warning too, so etl.issues would be written
    changed[2] = parcel(2, MDSD="XYZ")  # and a reject
    # a real failure inside the merge: the database refuses the update of parcel 4 after history was written
    with db.begin() as connection:
        connection.execute(sa.text("""
            CREATE FUNCTION test_refuse() RETURNS trigger AS $$ BEGIN
              IF NEW.parcel_no = '4' THEN RAISE EXCEPTION 'injected failure while updating parcel 4'; END IF;
              RETURN NEW; END $$ LANGUAGE plpgsql;
            CREATE TRIGGER test_refuse BEFORE UPDATE ON data.cadastral_parcels
              FOR EACH ROW EXECUTE FUNCTION test_refuse();"""))
    before = snapshot(db)
    try:
        with pytest.raises(EtlError, match="injected failure") as failure:
            load(write_parcels(tmp_path / "b.gpkg", changed))
    finally:
        with db.begin() as connection:
            connection.execute(sa.text("DROP TRIGGER test_refuse ON data.cadastral_parcels; "
                                       "DROP FUNCTION test_refuse()"))
    assert snapshot(db) == before
    with db.connect() as connection:
        status, error, checksum, sources = connection.execute(sa.text(
            "SELECT status, error, source_checksum, sources FROM etl.runs WHERE run_id = :r"),
            {"r": failure.value.run_id}).one()
    assert status == "failed" and "injected failure" in error
    # the file's checksum, computed while the run read, is logged with the failure too
    assert len(checksum) == 64 and sources[0]["sha256"] == hashlib.sha256((tmp_path / "b.gpkg").read_bytes()).hexdigest()
    # and the same file loads once the cause is gone
    assert load(tmp_path / "b.gpkg").updated == 2


def test_a_bad_file_changes_nothing_and_says_what_to_do(db, tmp_path):
    load(write_parcels(tmp_path / "a.gpkg", parcels(2)))
    before = snapshot(db)
    no_crs = write_parcels(tmp_path / "no_crs.gpkg", parcels(2), crs_code=None)
    with pytest.raises(EtlError) as failure:
        load(no_crs)
    assert "no_crs.gpkg" in str(failure.value) and "EPSG:9215" in str(failure.value)
    assert snapshot(db) == before
    # failed at its first batch, before a checksum was started: the failure's log computes it
    with db.connect() as connection:
        sources = connection.execute(sa.text("SELECT sources FROM etl.runs WHERE run_id = :r"),
                                     {"r": failure.value.run_id}).scalar()
    assert sources[0]["sha256"] == hashlib.sha256(no_crs.read_bytes()).hexdigest()


def hold_lock(layer: str):
    """Take the layer's run lock from another session, as a second process would."""
    connection = psycopg2.connect(libpq_dsn())
    connection.autocommit = True
    key = RunLog().lock_key(layer)
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, key))
    return connection


def test_two_runs_of_one_layer_cannot_overlap(db, tmp_path):
    path = write_parcels(tmp_path / "a.gpkg", parcels(2))
    holder = hold_lock("cadastral_parcels")
    try:
        with pytest.raises(RunLocked, match="cadastral_parcels is being loaded"):
            load(path)
        result = CliRunner().invoke(main, ["etl", "load", "cadastral_parcels", str(path), "-q"])
        assert result.exit_code == EXIT_LOCKED
        assert "cannot overlap" in result.output
        other = RunLog()  # another layer is not blocked
        try:
            other.acquire("water_sources")
        finally:
            other.close()
    finally:
        holder.close()
    assert load(path).inserted == 2  # the lock went with the holder's session


def test_the_lock_is_released_when_a_run_fails(db, tmp_path):
    with pytest.raises(EtlError):
        load(write_parcels(tmp_path / "x.gpkg", parcels(1), crs_code=None))
    assert load(write_parcels(tmp_path / "a.gpkg", parcels(1))).inserted == 1
