"""Reconciliation against the real database: insert, unchanged, update with history, retire, reappear."""
from __future__ import annotations

import hashlib

import sqlalchemy as sa

from gisplatform.etl.jobs import one_off_job
from gisplatform.etl.runner import run_job
from gisplatform.etl.status import RESOLVED_REJECTS, run_rejects
from tests.builders import parcel, parcels, write_parcels


def load(path, mode="full"):
    return run_job(one_off_job("cadastral_parcels", path, None, "auto", mode))


def rows(db, sql, **params):
    with db.connect() as connection:
        return connection.execute(sa.text(sql), params).all()


def live(db) -> int:
    return rows(db, "SELECT count(*) FROM data.cadastral_parcels WHERE retired_at IS NULL")[0][0]


def test_first_load_inserts_every_valid_row(db, tmp_path):
    report = load(write_parcels(tmp_path / "p.gpkg", parcels(5)))
    assert (report.read, report.inserted, report.updated, report.unchanged, report.rejected) == (5, 5, 0, 0, 0)
    assert report.features == 5
    assert rows(db, "SELECT count(*), min(version), max(version) FROM data.cadastral_parcels")[0] == (5, 1, 1)
    assert rows(db, "SELECT count(*) FROM history.cadastral_parcels")[0][0] == 0


def test_a_first_load_leaves_the_key_constraints_and_indexes_as_the_migrations_made_them(db, tmp_path):
    """A first load drops the key constraints and spatial indexes and rebuilds them once: same names, same
    definitions, and the natural key is enforced again afterwards."""
    catalogue = ("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                 "WHERE conrelid = 'data.cadastral_parcels'::regclass ORDER BY 1")
    indexes = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'data' AND tablename = 'cadastral_parcels' ORDER BY 1"
    before = rows(db, catalogue), rows(db, indexes)
    assert ("cadastral_parcels_natural_key", "UNIQUE (sheet_commune_code, map_sheet_no, parcel_no)") in before[0]
    load(write_parcels(tmp_path / "p.gpkg", parcels(5)))
    assert (rows(db, catalogue), rows(db, indexes)) == before
    with db.connect() as connection, connection.begin():
        try:
            connection.execute(sa.text(
                "INSERT INTO data.cadastral_parcels (sheet_commune_code, map_sheet_no, parcel_no, geom, row_hash, "
                "version, version_start, run_id) SELECT sheet_commune_code, map_sheet_no, parcel_no, geom, 0, 1, "
                "now(), run_id FROM data.cadastral_parcels LIMIT 1"))
        except sa.exc.IntegrityError as exc:
            assert "cadastral_parcels_natural_key" in str(exc)
        else:
            raise AssertionError("a second feature with the same natural key was accepted")


def test_second_run_of_the_same_file_changes_nothing(db, tmp_path):
    path = write_parcels(tmp_path / "p.gpkg", parcels(5))
    load(path)
    before = rows(db, "SELECT fid, xmin::text, version, row_hash FROM data.cadastral_parcels ORDER BY fid")
    report = load(path)
    assert (report.read, report.inserted, report.updated, report.unchanged, report.rejected, report.retired) == \
        (5, 0, 0, 5, 0, 0)
    assert report.files[0].skipped_unchanged == 5  # recognised from the source hash, before any parsing
    # untouched: same tuple versions (xmin), no history
    assert rows(db, "SELECT fid, xmin::text, version, row_hash FROM data.cadastral_parcels ORDER BY fid") == before
    assert rows(db, "SELECT count(*) FROM history.cadastral_parcels")[0][0] == 0


def test_a_changed_row_is_updated_and_its_old_version_kept(db, tmp_path):
    load(write_parcels(tmp_path / "a.gpkg", parcels(3)))
    changed = parcels(3)
    changed[1] = parcel(1, MDSD="CLN", TENCHU="Hoàng Thị Mới")
    report = load(write_parcels(tmp_path / "b.gpkg", changed))
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 2)
    current = rows(db, "SELECT land_use_codes, user_name, version FROM data.cadastral_parcels WHERE parcel_no = '2'")
    assert current == [("CLN", "Hoàng Thị Mới", 2)]
    old = rows(db, "SELECT land_use_codes, version, version_start < version_end, retired, ended_by_run "
                   "FROM history.cadastral_parcels")
    assert old == [("ONT+CLN", 1, True, False, report.run_id)]


def test_full_snapshot_retires_missing_rows_and_incremental_does_not(db, tmp_path):
    load(write_parcels(tmp_path / "a.gpkg", parcels(4)))
    fewer = write_parcels(tmp_path / "b.gpkg", parcels(3))
    assert load(fewer, mode="incremental").retired == 0
    report = load(fewer, mode="full")
    assert report.retired == 1
    assert rows(db, "SELECT parcel_no, retired_at IS NOT NULL FROM data.cadastral_parcels ORDER BY fid") == [
        ("1", False), ("2", False), ("3", False), ("4", True)]  # retired, not deleted
    assert report.features == live(db) == 3  # the run's own arithmetic, checked against a count


def test_a_retired_row_that_comes_back_is_reactivated_with_its_gap_in_history(db, tmp_path):
    load(write_parcels(tmp_path / "a.gpkg", parcels(2)))
    retiring = load(write_parcels(tmp_path / "b.gpkg", parcels(1)))
    assert retiring.features == live(db) == 1
    report = load(write_parcels(tmp_path / "c.gpkg", parcels(2)))
    assert report.updated == 1
    assert report.features == live(db) == 2  # the retired feature counts as live again
    assert rows(db, "SELECT retired_at, version FROM data.cadastral_parcels WHERE parcel_no = '2'") == [(None, 2)]
    (retired, version_end_is_retirement), = rows(
        db, "SELECT h.retired, h.version_end < d.version_start FROM history.cadastral_parcels h "
            "JOIN data.cadastral_parcels d USING (fid)")
    assert retired and version_end_is_retirement


def test_rejected_rows_are_quarantined_with_their_reason_and_counted(db, tmp_path):
    source = parcels(4)
    source[2] = parcel(2, MDSD="XYZ")
    report = load(write_parcels(tmp_path / "p.gpkg", source))
    assert (report.read, report.inserted, report.rejected) == (4, 3, 1)
    assert report.balanced
    (file, row, rule, field, message, raw), = rows(
        db, "SELECT file, row_number, rule, field, message, raw_record FROM etl.rejects")
    assert file.endswith("p.gpkg") and row == 3 and rule == "codes_valid_at_date" and field == "land_use_codes"
    assert "XYZ" in message
    assert raw["MDSD"] == "XYZ" and raw["geometry"].startswith("POLYGON")


def test_a_rejected_row_keeps_the_loaded_version_of_its_key(db, tmp_path):
    """A bad new version must not retire (or overwrite) the good one already published."""
    load(write_parcels(tmp_path / "a.gpkg", parcels(2)))
    source = parcels(2)
    source[1] = parcel(1, MDSD="XYZ")
    report = load(write_parcels(tmp_path / "b.gpkg", source))
    assert (report.rejected, report.retired, report.updated) == (1, 0, 0)
    assert rows(db, "SELECT land_use_codes, retired_at FROM data.cadastral_parcels WHERE parcel_no = '2'") == [
        ("ONT+CLN", None)]


def test_a_duplicate_of_an_unchanged_row_is_rejected(db, tmp_path):
    """The first copy is skipped as unchanged before parsing; the new copy must still be caught as a duplicate."""
    load(write_parcels(tmp_path / "a.gpkg", parcels(2)))
    source = parcels(2) + [parcel(5, SOTHUA="1")]  # same sheet and number as row 1, other geometry
    report = load(write_parcels(tmp_path / "b.gpkg", source))
    assert (report.unchanged, report.rejected) == (2, 1)
    (message,), = rows(db, "SELECT message FROM etl.rejects")
    assert "duplicate natural key" in message and "loaded unchanged" in message


def test_warnings_are_flagged_on_the_row_and_logged(db, tmp_path):
    source = parcels(2)
    source[0] = parcel(0, DIENTICH=700.0)  # geometry measures 600 m²
    report = load(write_parcels(tmp_path / "p.gpkg", source))
    assert report.inserted == 2 and report.findings[("warning", "area_matches_geometry")] == 1
    flags = rows(db, "SELECT qa_flags FROM data.cadastral_parcels WHERE parcel_no = '1'")[0][0]
    assert "warning:area_matches_geometry" in flags
    assert rows(db, "SELECT rule, row_number FROM etl.issues WHERE rule = 'area_matches_geometry'") == [
        ("area_matches_geometry", 1)]


def test_run_log_records_counts_checksum_and_status(db, tmp_path):
    path = write_parcels(tmp_path / "p.gpkg", parcels(3))
    report = load(path)
    (status, read, inserted, checksum, sources), = rows(
        db, "SELECT status, read, inserted, source_checksum, sources FROM etl.runs WHERE run_id = :r", r=report.run_id)
    assert (status, read, inserted) == ("succeeded", 3, 3)
    file_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert sources[0]["sha256"] == file_sha and checksum == hashlib.sha256(file_sha.encode()).hexdigest()


def _reasons(db, run_id):
    """A run's reasons as people read them (a copied reject shows the raw record it refers to)."""
    return rows(db, "SELECT file, row_number, natural_key, rule, field, message, raw_record::text "
                    f"FROM {RESOLVED_REJECTS} r WHERE run_id = :r ORDER BY row_number, rule", r=run_id)


def test_a_row_rejected_again_unchanged_keeps_its_reasons_without_being_checked_again(db, tmp_path):
    source = parcels(4)
    source[1] = parcel(1, MDSD="XYZ")
    source[3] = parcel(3, SOTHUA=None)  # no parcel number: required
    first = load(write_parcels(tmp_path / "a.gpkg", source))
    source.insert(0, parcel(7))  # every row moves down one: the copied reasons name the rows where they are now
    second = load(write_parcels(tmp_path / "b.gpkg", source))
    assert (second.read, second.inserted, second.unchanged, second.rejected) == (5, 1, 2, 2) and second.balanced
    assert second.files[0].rejected_unchanged == 2 and second.files[0].skipped_unchanged == 2
    before, after = _reasons(db, first.run_id), _reasons(db, second.run_id)
    assert [(r[1] + 1, *r[2:]) for r in before] == [r[1:] for r in after]
    assert all(r[0].endswith("b.gpkg") for r in after)
    assert second.findings[("error", "codes_valid_at_date")] == 1
    # nothing is copied: one row refers to the rejects that hold the reasons and raw records, and reads as them
    assert rows(db, "SELECT count(*) FROM etl.rejects WHERE run_id = :r", r=second.run_id) == [(0,)]
    (files, row_numbers, originals, rules, messages), = rows(
        db, "SELECT files, row_numbers, originals, rules, messages FROM etl.rejects_again WHERE run_id = :r",
        r=second.run_id)
    assert sorted(row_numbers) == [3, 5] and all(f.endswith("b.gpkg") for f in files) and messages == [None, None]
    assert sorted(rules) == sorted(r[3] for r in before)
    assert sorted(originals) == [r[0] for r in rows(db, "SELECT id FROM etl.rejects WHERE run_id = :r ORDER BY id",
                                                    r=first.run_id)]
    assert [r["raw_record"] for r in run_rejects(second.run_id)] == [r["raw_record"] for r in run_rejects(first.run_id)]
    third = load(write_parcels(tmp_path / "c.gpkg", source))  # copies of copies: the first run's rejects hold it
    assert third.files[0].rejected_unchanged == 2
    assert [r[-1] for r in _reasons(db, third.run_id)] == [r[-1] for r in before]


def test_a_row_rejected_again_unchanged_still_keeps_its_loaded_key_from_retirement(db, tmp_path):
    load(write_parcels(tmp_path / "a.gpkg", parcels(2)))
    source = parcels(2)
    source[1] = parcel(1, MDSD="XYZ")
    load(write_parcels(tmp_path / "b.gpkg", source))
    third = load(write_parcels(tmp_path / "c.gpkg", source))
    assert (third.rejected, third.retired, third.files[0].rejected_unchanged) == (1, 0, 1)
    assert rows(db, "SELECT land_use_codes, retired_at FROM data.cadastral_parcels WHERE parcel_no = '2'") == [
        ("ONT+CLN", None)]


def test_a_new_row_with_the_key_of_a_row_rejected_again_is_a_duplicate(db, tmp_path):
    source = parcels(2)
    source[1] = parcel(1, MDSD="XYZ")
    load(write_parcels(tmp_path / "a.gpkg", source))
    report = load(write_parcels(tmp_path / "b.gpkg", source + [parcel(5, SOTHUA="2")]))
    assert (report.unchanged, report.rejected, report.inserted) == (1, 2, 0)
    messages = [r[0] for r in rows(db, "SELECT message FROM etl.all_rejects WHERE run_id = :r AND row_number = 3",
                                   r=report.run_id)]
    assert len(messages) == 1 and "duplicate natural key" in messages[0] and "row 2" in messages[0]


def test_rows_rejected_as_duplicates_are_checked_again(db, tmp_path):
    """A duplicate depends on other rows: fix the other copy and the row must load."""
    source = parcels(2) + [parcel(5, SOTHUA="1")]
    first = load(write_parcels(tmp_path / "a.gpkg", source))
    assert first.rejected == 2
    second = load(write_parcels(tmp_path / "b.gpkg", source[:2] + [parcel(5, SOTHUA="9")]))
    assert second.files[0].rejected_unchanged == 0
    assert (second.rejected, second.inserted, second.unchanged) == (0, 2, 1)


def test_new_commune_boundaries_make_every_row_checked_again(db, tmp_path):
    """Row rules place features in the communes: once the boundaries change, nothing is taken as unchanged."""
    path = write_parcels(tmp_path / "p.gpkg", parcels(3))
    load(path)
    assert load(path).files[0].skipped_unchanged == 3
    with db.begin() as connection:  # as an admin-units run that changed a boundary leaves the run log
        connection.execute(sa.text("INSERT INTO etl.runs (job, layer, mode, status, updated, finished_at) "
                                   "VALUES ('admin_units', 'admin_units', 'full', 'succeeded', 1, now())"))
    report = load(path)
    assert report.files[0].skipped_unchanged == 0 and report.unchanged == 3 and report.updated == 0


def test_a_first_load_keeps_a_key_that_a_foreign_key_depends_on(db, tmp_path):
    """A key another table references cannot be dropped for the rebuild: the first load maintains it instead."""
    with db.begin() as connection:
        connection.execute(sa.text("CREATE TABLE public.parcel_notes (fid bigint REFERENCES data.cadastral_parcels (fid))"))
    try:
        report = load(write_parcels(tmp_path / "p.gpkg", parcels(3)))
        assert report.inserted == 3
        assert ("cadastral_parcels_pkey",) in rows(db, "SELECT conname FROM pg_constraint "
                                                       "WHERE conrelid = 'data.cadastral_parcels'::regclass")
    finally:
        with db.begin() as connection:
            connection.execute(sa.text("DROP TABLE public.parcel_notes"))


DUPLICATE_OF_ROW = ("duplicate natural key (sheet_commune_code=05977, map_sheet_no=3, parcel_no=1): also in {} "
                    "row {}; every copy is rejected: correct the numbering at the source")


def test_an_unchanged_duplicate_group_is_rejected_again_naming_its_copies_where_they_are_now(db, tmp_path):
    """All copies of a duplicate key again, unchanged, and no other row with the key: rejected again without
    being checked, each message naming the other copy at the row it has now."""
    source = parcels(3) + [parcel(5, SOTHUA="1")]  # rows 1 and 4 share parcel number 1
    first = load(write_parcels(tmp_path / "a.gpkg", source))
    assert first.rejected == 2
    source.insert(0, parcel(7))  # every row moves down one
    second = load(write_parcels(tmp_path / "b.gpkg", source))
    assert second.files[0].rejected_unchanged == 2
    assert (second.read, second.rejected, second.inserted, second.unchanged) == (5, 2, 1, 2) and second.balanced
    (file, _, _), _ = found = rows(db, "SELECT file, row_number, message FROM etl.all_rejects WHERE run_id = :r "
                                       "ORDER BY row_number", r=second.run_id)
    assert file.endswith("b.gpkg")
    assert found == [(file, 2, DUPLICATE_OF_ROW.format(file, 5)), (file, 5, DUPLICATE_OF_ROW.format(file, 2))]
    assert second.findings[("error", "duplicate_natural_key")] == 2


def test_a_new_copy_of_a_duplicate_key_rejected_again_makes_the_group_checked_again(db, tmp_path):
    source = parcels(3) + [parcel(5, SOTHUA="1")]
    load(write_parcels(tmp_path / "a.gpkg", source))
    third = load(write_parcels(tmp_path / "b.gpkg", source + [parcel(9, SOTHUA="1")]))
    assert third.files[0].rejected_unchanged == 0
    assert (third.rejected, third.unchanged, third.inserted) == (3, 2, 0) and third.balanced
    messages = dict(rows(db, "SELECT row_number, message FROM etl.all_rejects WHERE run_id = :r", r=third.run_id))
    assert sorted(messages) == [1, 4, 5]
    assert "row 4, " in messages[1] and "row 5;" in messages[1] and "row 1, " in messages[5]


def test_the_last_copy_of_a_duplicate_key_loads_once_the_others_are_gone(db, tmp_path):
    source = parcels(3) + [parcel(5, SOTHUA="1")]
    load(write_parcels(tmp_path / "a.gpkg", source))
    report = load(write_parcels(tmp_path / "b.gpkg", source[:3]))
    assert report.files[0].rejected_unchanged == 0
    assert (report.rejected, report.inserted, report.unchanged) == (0, 1, 2) and report.balanced
    assert rows(db, "SELECT count(*) FROM data.cadastral_parcels WHERE parcel_no = '1' AND retired_at IS NULL") == [(1,)]


def test_a_first_load_finds_duplicate_keys_across_batches_from_the_candidates_it_hashed(db, tmp_path, monkeypatch):
    """The duplicate check of a first load groups only the rows whose key repeats among the staged rows' key
    hashes, fetched by staging id (the staging table gets no key index): copies in different batches, three
    copies of one key and a row rejected for itself that shares a key are all caught, and only rows of repeated
    keys are candidates."""
    from gisplatform.load.staging import Staging

    seen = {}
    staging_candidates = Staging.stage_duplicate_candidates

    def recording(staging):
        table = staging_candidates(staging)
        staging.cursor.execute(f"SELECT s.parcel_no FROM {table} c JOIN {staging.table} s USING (sid) ORDER BY 1")
        seen["candidates"] = [r[0] for r in staging.cursor.fetchall()]
        return table

    staging_index = Staging.index

    def index(staging, by_key=True):
        seen["by_key"] = by_key
        return staging_index(staging, by_key)

    monkeypatch.setattr(Staging, "stage_duplicate_candidates", recording)
    monkeypatch.setattr(Staging, "index", index)
    source = parcels(6) + [parcel(7, SOTHUA="2"), parcel(8, SOTHUA="5"), parcel(9, SOTHUA="2", MDSD="XYZ")]
    report = run_job(one_off_job("cadastral_parcels", write_parcels(tmp_path / "p.gpkg", source), None, "auto",
                                 "full"), batch_size=4)
    assert sorted(seen["candidates"]) == ["2", "2", "2", "5", "5"] and seen["by_key"] is False
    assert (report.read, report.inserted, report.rejected) == (9, 4, 5)
    duplicates = rows(db, "SELECT row_number FROM etl.rejects WHERE rule = 'duplicate_natural_key' ORDER BY 1")
    assert [r for r, in duplicates] == [2, 5, 7, 8, 9]
    again = load(write_parcels(tmp_path / "p.gpkg", source))  # a re-run indexes its few staged rows by key
    assert (again.unchanged, again.rejected) == (4, 5) and seen["by_key"] is True


def test_the_late_warnings_know_whether_the_natural_key_is_indexed(db):
    """The late warnings of a first load find their features through the natural key's index once it is rebuilt
    (gisplatform.load.merge._natural_key_indexed), by a hash join while it is not."""
    from contextlib import closing

    import adbc_driver_postgresql.dbapi as adbc

    from gisplatform.db.engine import libpq_dsn
    from gisplatform.layers import get_layer
    from gisplatform.load.merge import _natural_key_indexed

    parcels_layer = get_layer("cadastral_parcels")
    with closing(adbc.connect(libpq_dsn())) as connection, closing(connection.cursor()) as cursor:
        assert _natural_key_indexed(cursor, parcels_layer)
        cursor.execute(f"ALTER TABLE {parcels_layer.qualified_table} DROP CONSTRAINT cadastral_parcels_natural_key")
        assert not _natural_key_indexed(cursor, parcels_layer)
        cursor.execute(f"ALTER TABLE {parcels_layer.qualified_table} ADD CONSTRAINT cadastral_parcels_natural_key "
                       "UNIQUE (parcel_no, map_sheet_no, sheet_commune_code)")  # the same columns, another order
        assert not _natural_key_indexed(cursor, parcels_layer)
        connection.rollback()
