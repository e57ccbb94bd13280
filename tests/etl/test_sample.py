"""The bundled sample through every job: each defect the generator injected meets the outcome it should.

The generator's manifest lists every injected defect by file and row; this test finds each one in the
quarantine (rejected), the issues log (repaired or warned) or the stored data, and checks the accounting.
"""
from __future__ import annotations

import json
import os
import unicodedata
from collections import defaultdict

import pytest
import sqlalchemy as sa

from gisplatform.db.engine import engine
from gisplatform.etl.jobs import load_jobs, run_order
from gisplatform.etl.runner import run_job
from tests.conftest import SAMPLE

# defect class -> what must happen to the row: (outcome, rules any of which may record it)
PARCEL_OUTCOMES = {
    "unknown_land_use_code": ("rejected", {"codes_valid_at_date"}),
    "missing_required": ("rejected", {"required_fields"}),
    "duplicate_key": ("rejected", {"duplicate_natural_key"}),
    "self_intersection": ("rejected or repaired", {"geometry_valid"}),
    "legacy_land_use_code": ("repaired", {"codes_valid_at_date"}),
    "pre2025_commune_code": ("repaired", {"commune_valid_at_date"}),
    "commune_code_unpadded": ("repaired", {"field_values"}),
    "area_mismatch": ("warned", {"area_matches_geometry", "legal_area_matches"}),
    "bad_parcel_id": ("warned", {"parcel_id_geohash"}),
    "overlap": ("warned", {"overlaps"}),
    "vni_truncated": ("warned", {"text_quality"}),
}


@pytest.fixture(scope="module")
def sample_run(database_url, sample_dir, tmp_path_factory):
    """Every job on the sample, in dependency order, once for the module (rasters into a store of its own, so an
    earlier test that published the same sample rasters does not make this first run 'unchanged')."""
    previous = os.environ.get("GISPLATFORM_RASTER_DIR")
    os.environ["GISPLATFORM_RASTER_DIR"] = str(tmp_path_factory.mktemp("etl-sample-rasters"))
    yield _sample_run(sample_dir)
    if previous is None:
        os.environ.pop("GISPLATFORM_RASTER_DIR", None)
    else:
        os.environ["GISPLATFORM_RASTER_DIR"] = previous


def _sample_run(sample_dir):
    with engine().begin() as connection:
        tables = connection.execute(sa.text(
            "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables "
            "WHERE table_schema IN ('data', 'history', 'etl') AND table_type = 'BASE TABLE'")).scalars().all()
        connection.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    reports = {job.layer: run_job(job) for job in run_order(load_jobs())}
    manifest = json.loads((sample_dir / "manifest.json").read_text(encoding="utf-8"))
    return reports, manifest


def outcomes(layer: str) -> dict[tuple[str, int], dict[str, set]]:
    """(file, row) -> {'rejected': rules, 'repaired': rules, 'warned': rules} for one layer's last run."""
    found: dict = defaultdict(lambda: defaultdict(set))
    with engine().connect() as connection:
        run = connection.scalar(sa.text("SELECT max(run_id) FROM etl.runs WHERE layer = :l"), {"l": layer})
        for file, row, rule in connection.execute(sa.text(
                "SELECT file, row_number, rule FROM etl.all_rejects WHERE run_id = :r"), {"r": run}):
            found[(file, row)]["rejected"].add(rule)
        for file, row, rule, kind in connection.execute(sa.text(
                "SELECT file, row_number, rule, kind FROM etl.issues WHERE run_id = :r"), {"r": run}):
            found[(file, row)]["repaired" if kind == "repair" else "warned"].add(rule)
    return found


def test_every_job_balances_and_succeeds(sample_run):
    reports, _ = sample_run
    assert set(reports) == {"admin_units", "cadastral_parcels", "mining_licences", "water_sources",
                            "water_protection_corridors", "water_licences", "elevation", "planning_map"}
    for layer, report in reports.items():
        assert report.status == "succeeded" and report.balanced, layer
        assert report.read > 0 and report.inserted > 0, layer


def test_every_injected_parcel_defect_has_its_outcome(sample_run):
    _, manifest = sample_run
    found = outcomes("cadastral_parcels")
    checked = 0
    for defect in manifest["defects"]:
        if defect["layer"] != "cadastral_parcels" or defect["defect"] not in PARCEL_OUTCOMES:
            continue
        expected, rules = PARCEL_OUTCOMES[defect["defect"]]
        at = found.get((f"sample/{defect['file']}", defect["row"]), {})
        if at.get("rejected") and expected != "rejected":
            checked += 1  # a row rejected for another defect cannot also be repaired or warned
            continue
        allowed = expected.split(" or ")
        assert any(at.get(kind, set()) & rules for kind in allowed), (defect, dict(at))
        checked += 1
    assert checked == sum(1 for d in manifest["defects"] if d["defect"] in PARCEL_OUTCOMES
                          and d["layer"] == "cadastral_parcels")


def test_duplicate_keys_reject_both_copies(sample_run):
    _, manifest = sample_run
    found = outcomes("cadastral_parcels")
    for defect in manifest["defects"]:
        if defect["defect"] == "duplicate_key" and defect["layer"] == "cadastral_parcels":
            original = (f"sample/{defect['file']}", defect["detail"]["same_key_as_row"])
            assert found[original]["rejected"], defect


def test_legacy_encodings_are_detected_and_stored_as_composed_unicode(sample_run):
    reports, manifest = sample_run
    encodings = {f.file: {v["encoding"] for v in f.plan["encodings"].values()}
                 for f in reports["cadastral_parcels"].files}
    for entry in manifest["files"]:
        variant = entry.get("encoding")
        if entry.get("layer") == "cadastral_parcels" and variant in ("tcvn3", "vni"):
            assert variant in encodings[f"sample/{entry['path']}"], entry
    with engine().connect() as connection:
        names = connection.execute(sa.text("SELECT user_name FROM data.cadastral_parcels")).scalars().all()
    assert all(n == unicodedata.normalize("NFC", n) for n in names if n)
    stored = set(names)
    for record in manifest["personal_values"]["records"]:
        if record.get("layer", "cadastral_parcels") == "cadastral_parcels" and record.get("name") and \
                not record.get("truncated"):
            assert record["name"] in stored or _was_rejected(record), record


def _was_rejected(record) -> bool:
    with engine().connect() as connection:
        return bool(connection.scalar(sa.text(
            "SELECT count(*) FROM etl.rejects WHERE coalesce(raw_record->>'TENCHU', raw_record->>'user_name') = :n"),
            {"n": record["name"]}))


def test_the_prj_that_hides_the_datum_shift_is_reported_though_the_job_declares_the_crs(sample_run):
    reports, manifest = sample_run
    trap = next(d for d in manifest["defects"] if d["defect"] == "prj_missing_datum_shift")
    plan = next(f.plan for f in reports["cadastral_parcels"].files if f.file == f"sample/{trap['file']}")
    assert plan["crs"] == "EPSG:9215" and "datum" in plan["crs_source"]


def by_key(layer: str) -> dict[str, dict[str, set]]:
    found: dict = defaultdict(lambda: defaultdict(set))
    with engine().connect() as connection:
        run = connection.scalar(sa.text("SELECT max(run_id) FROM etl.runs WHERE layer = :l"), {"l": layer})
        for key, rule in connection.execute(sa.text(
                "SELECT natural_key, rule FROM etl.all_rejects WHERE run_id = :r"), {"r": run}):
            found[key]["rejected"].add(rule)
        for key, rule, kind in connection.execute(sa.text(
                "SELECT natural_key, rule, kind FROM etl.issues WHERE run_id = :r"), {"r": run}):
            found[key]["repaired" if kind == "repair" else "warned"].add(rule)
    return found


@pytest.mark.parametrize("defect, outcome, rules", [
    ("swapped_xy", "repaired", {"inside_province"}),  # the job declares swap_xy
    ("utm_stated_as_tm3", "rejected", {"inside_province"}),
    ("self_intersection", "rejected", {"corner_table", "geometry_valid"}),
    ("not_closed", "rejected", {"corner_table", "geometry_present"}),
    ("area_mismatch", "warned", {"stated_area_matches"}),
    ("expired_but_active", "warned", {"licence_expired_but_active"}),
    ("term_too_long", "rejected", {"licence_dates"}),
    ("orphan_corners", "rejected", {"orphan_corners"}),
    ("duplicate_key", "rejected", {"duplicate_natural_key"}),
])
def test_mining_licence_defects(sample_run, defect, outcome, rules):
    _, manifest = sample_run
    entry = next(d for d in manifest["defects"] if d["layer"] == "mining_licences" and d["defect"] == defect)
    found = by_key("mining_licences")[f"licence_no={entry['key']['licence_no']}"]
    assert found[outcome] & rules, dict(found)


def test_individual_licence_holders_are_masked_in_the_public_column(sample_run):
    _, manifest = sample_run
    with engine().connect() as connection:
        for entry in manifest["defects"]:
            if entry["defect"] == "personal_holder":
                name, public = connection.execute(sa.text(
                    "SELECT holder_name, holder_public FROM data.mining_licences WHERE licence_no = :n"),
                    {"n": entry["key"]["licence_no"]}).one()
                assert name and public and name not in public and "ẩn tên" in public


@pytest.mark.parametrize("defect, outcome", [("swapped_xy", "repaired"), ("outside_province", "rejected")])
def test_water_licence_defects(sample_run, defect, outcome):
    _, manifest = sample_run
    entry = next(d for d in manifest["defects"] if d["layer"] == "water_licences" and d["defect"] == defect)
    key = f"licence_no={entry['key']['licence_no']}, point_no={entry['key']['point_no']}"
    assert by_key("water_licences")[key][outcome] & {"inside_province"}


def test_corridors_are_derived_around_the_water_sources_that_need_them(sample_run):
    with engine().connect() as connection:
        sources, corridors, outside = connection.execute(sa.text("""
            SELECT (SELECT count(*) FROM data.water_sources WHERE needs_corridor),
                   (SELECT count(*) FROM data.water_protection_corridors),
                   (SELECT count(*) FROM data.water_protection_corridors c JOIN data.water_sources s
                      USING (source_code) WHERE ST_Area(ST_Intersection(c.geom, s.geom)) > 1)""")).one()
    assert corridors == sources > 0 and outside == 0  # corridors start at the bank edge


def test_every_stored_geometry_has_its_wgs84_copy(sample_run):
    """The merge writes the copy the staging table computed (gisplatform.load.staging): it must be exactly what
    PostGIS gives for the stored geometry, in every layer and history table."""
    with engine().connect() as connection:
        tables = connection.execute(sa.text(
            "SELECT format('%I.%I', table_schema, table_name) FROM information_schema.columns "
            "WHERE table_schema IN ('data', 'history') AND column_name = 'geom_wgs84'")).scalars().all()
        assert len(tables) == 2 * 6
        for table in tables:
            stored, wrong = connection.execute(sa.text(
                f"SELECT count(*), count(*) FILTER (WHERE ST_AsBinary(geom_wgs84) IS DISTINCT FROM "
                f"ST_AsBinary(ST_Transform(geom, 4326))) FROM {table}")).one()
            assert wrong == 0, table
            assert stored > 0 or table.startswith("history."), table


def test_a_second_run_of_every_job_changes_nothing(sample_run):
    with engine().connect() as connection:
        before = connection.execute(sa.text(
            "SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM data.cadastral_parcels t")).scalar()
    for job in run_order(load_jobs()):
        report = run_job(job)
        assert report.inserted == report.updated == report.retired == 0, job.name
    with engine().connect() as connection:
        after = connection.execute(sa.text(
            "SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM data.cadastral_parcels t")).scalar()
    assert after == before
