"""``--executor dask`` on a real LocalCluster with several worker processes gives exactly the single-process
result: the same features (ids included), history, rejects, issues and counts; a failure leaves nothing."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from gisplatform.etl.jobs import load_jobs
from gisplatform.etl.runner import EtlError, run_job
from gisplatform.layers import get_layer
from tests.builders import parcel, parcels, write_parcels
from tests.load.test_atomicity import snapshot

DROP = "- 'run_id' - 'version_start' - 'version_end' - 'ended_by_run' - 'hid' - 'retired_at'"


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=3, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local


def state(db, layer: str) -> dict:
    """Everything a run leaves, without what differs by nature between two runs (run ids, times)."""
    table = get_layer(layer).qualified_table
    with db.connect() as connection:
        def rows(sql):
            return connection.execute(sa.text(sql)).scalars().all()
        return {
            "features": rows(f"SELECT (to_jsonb(t) {DROP})::text FROM {table} t ORDER BY fid"),
            "history": rows(f"SELECT (to_jsonb(t) {DROP})::text FROM history.{layer} t ORDER BY fid, version"),
            "rejects": rows("SELECT (to_jsonb(t) - 'id' - 'run_id' - 'original')::text FROM etl.all_rejects t ORDER BY 1"),
            "issues": rows("SELECT (to_jsonb(t) - 'id' - 'run_id')::text FROM etl.issues t ORDER BY 1"),
            "counts": rows("SELECT concat_ws(',', read, inserted, updated, unchanged, rejected, retired, repaired, "
                           "warnings, features) FROM etl.runs ORDER BY run_id"),
        }


def assert_same(dask: dict, local: dict) -> None:
    """Equal, or the first differing rows of each part, side by side (a plain == hides them)."""
    for layer in local:
        for part in local[layer]:
            a, b = local[layer][part], dask[layer][part]
            first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
            assert len(a) == len(b) and first is None, (layer, part, len(a), len(b), first,
                                                        first is not None and (a[first], b[first]))


def empty(db) -> None:
    with db.begin() as connection:
        connection.execute(sa.text(
            "TRUNCATE data.admin_units, history.admin_units, data.cadastral_parcels, history.cadastral_parcels, "
            "data.water_licences, history.water_licences, data.water_sources, history.water_sources, etl.runs "
            "RESTART IDENTITY CASCADE"))


def both_ways(db, cluster, runs) -> tuple[dict, dict]:
    """Run the list of (job, layer) once in this process, once on the cluster, from the same empty start."""
    results = []
    for executor in ("local", "dask"):
        empty(db)
        for job in runs:
            run_job(job, batch_size=700, executor=executor,
                    dask_address=cluster.scheduler_address if executor == "dask" else None)
        results.append({layer: state(db, layer) for layer in {j.layer for j in runs}})
    return results[0], results[1]


@pytest.mark.slow
def test_the_bundled_cadastral_sample_on_a_dask_cluster_equals_the_single_process_run(db, cluster):
    jobs = load_jobs()
    local, dask = both_ways(db, cluster, [jobs["admin_units"], jobs["cadastral_parcels"]])
    cadastral = local["cadastral_parcels"]
    assert len(cadastral["features"]) > 1000 and cadastral["rejects"] and cadastral["issues"]
    assert_same(dask, local)


@pytest.mark.slow
def test_licences_by_commune_and_water_sources_by_spatial_key_equal_the_single_process_run(db, cluster):
    jobs = load_jobs()
    local, dask = both_ways(db, cluster, [jobs["admin_units"], jobs["water_licences"], jobs["water_sources"]])
    assert local["water_sources"]["features"] and local["water_licences"]["features"]
    assert_same(dask, local)


def test_an_update_run_on_the_cluster_equals_the_single_process_update(db, cluster, tmp_path):
    from gisplatform.etl.jobs import one_off_job

    first = write_parcels(tmp_path / "a.gpkg", parcels(30))
    changed = parcels(34)
    changed[3] = parcel(3, MDSD="CLN")
    changed[7] = parcel(7, MDSD="XYZ")  # rejected
    del changed[10]  # retired (full snapshot)
    second = write_parcels(tmp_path / "b.gpkg", changed)
    results = []
    for executor in ("local", "dask"):
        empty(db)
        for path in (first, second):
            run_job(one_off_job("cadastral_parcels", path, None, "auto", "full"), batch_size=8, executor=executor,
                    dask_address=cluster.scheduler_address if executor == "dask" else None)
        results.append(state(db, "cadastral_parcels"))
    assert results[1] == results[0]
    assert results[0]["counts"][1].split(",")[:6] == ["33", "4", "1", "27", "1", "1"]


REFUSE_PARTS = """
CREATE FUNCTION public.test_refuse_row() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN RAISE EXCEPTION 'injected: the database refused a worker''s rows'; END $$;
CREATE FUNCTION public.test_arm_parts() RETURNS event_trigger LANGUAGE plpgsql AS $$
  DECLARE t record;
  BEGIN
    FOR t IN SELECT object_identity FROM pg_event_trigger_ddl_commands()
             WHERE command_tag = 'CREATE TABLE' AND object_identity LIKE 'staging.run\\_%\\_parts' LOOP
      EXECUTE format('CREATE TRIGGER refuse BEFORE INSERT ON %s FOR EACH ROW '
                     'EXECUTE FUNCTION public.test_refuse_row()', t.object_identity);
    END LOOP;
  END $$;
CREATE EVENT TRIGGER test_arm_parts ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
  EXECUTE FUNCTION public.test_arm_parts();
"""


def test_a_failure_on_a_worker_leaves_the_database_and_staging_as_before(db, cluster, tmp_path):
    from gisplatform.etl.jobs import one_off_job

    run_job(one_off_job("cadastral_parcels", write_parcels(tmp_path / "a.gpkg", parcels(3)), None, "auto", "full"))
    before = snapshot(db)
    with db.begin() as connection:  # the workers' COPY into the scratch table is refused by the database
        connection.execute(sa.text(REFUSE_PARTS))
    try:
        with pytest.raises(EtlError, match="refused a worker") as failure:
            run_job(one_off_job("cadastral_parcels", write_parcels(tmp_path / "b.gpkg", parcels(6)), None, "auto",
                                "full"), executor="dask", dask_address=cluster.scheduler_address)
    finally:
        with db.begin() as connection:
            connection.execute(sa.text("DROP EVENT TRIGGER IF EXISTS test_arm_parts; "
                                       "DROP FUNCTION IF EXISTS public.test_arm_parts(); "
                                       "DROP FUNCTION IF EXISTS public.test_refuse_row()"))
    assert snapshot(db) == before  # staging tables included: the scratch table was dropped
    with db.connect() as connection:
        assert connection.execute(sa.text("SELECT status FROM etl.runs WHERE run_id = :r"),
                                  {"r": failure.value.run_id}).scalar() == "failed"


def test_etl_run_with_the_dask_executor_from_the_command_line(db):
    """`--executor dask` without an address starts (and stops) its own LocalCluster of worker processes."""
    from click.testing import CliRunner

    from gisplatform.cli import main

    empty(db)
    result = CliRunner().invoke(main, ["etl", "run", "water_sources", "-q", "--executor", "dask",
                                       "--dask-workers", "2"])
    assert result.exit_code == 0, result.output
    with db.connect() as connection:
        assert connection.execute(sa.text("SELECT inserted FROM etl.runs")).scalar() > 0
        assert connection.execute(sa.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'staging'")).scalar() == 0
