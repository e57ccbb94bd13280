"""Job definitions and the run policy: retries with back-off, time-out, trigger in the run log, derived layers
after, remote sources, notifications by e-mail and webhook (to real local servers)."""
from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
import sqlalchemy as sa

from gisplatform.etl.jobs import JobDefinitionError, RetryPolicy, load_jobs, parse_job
from gisplatform.schedule.notify import NotifySettings
from tests.builders import parcel, parcels, write_parcels
from tests.load.test_atomicity import snapshot
from tests.schedule.conftest import live_parcels, runner_for, runs, write_job

FAIL_ONCE = """
CREATE SEQUENCE IF NOT EXISTS public.test_fail_once;
CREATE OR REPLACE FUNCTION public.test_fail_first() RETURNS trigger AS $$ BEGIN
  IF nextval('public.test_fail_once') <= {failures} THEN
    RAISE EXCEPTION 'injected failure number %', currval('public.test_fail_once');
  END IF;
  RETURN NEW; END $$ LANGUAGE plpgsql;
CREATE TRIGGER test_fail_first BEFORE INSERT ON data.cadastral_parcels
  FOR EACH ROW EXECUTE FUNCTION public.test_fail_first();
"""


@pytest.fixture
def failing_inserts(db):
    """The database refuses the first N inserting runs (a real failure, e.g. a server restart), then accepts."""
    def install(failures: int):
        with db.begin() as connection:
            connection.execute(sa.text(FAIL_ONCE.format(failures=failures)))
    yield install
    with db.begin() as connection:
        connection.execute(sa.text("DROP TRIGGER IF EXISTS test_fail_first ON data.cadastral_parcels; "
                                   "DROP FUNCTION IF EXISTS public.test_fail_first(); "
                                   "DROP SEQUENCE IF EXISTS public.test_fail_once"))


def test_job_definition_reads_retries_timeout_recompute_schedule_and_url(tmp_path):
    job = parse_job({"layer": "water_sources", "source": {"url": "OAPIF:https://example.org/ogc/collections/x"},
                     "retries": {"attempts": 4, "backoff": "30s", "factor": 3}, "timeout": "2h",
                     "recompute": False, "schedule": {"cron": "15 2 * * *"}}, "x.yml", "x")
    assert job.retries == RetryPolicy(4, 30.0, 3.0, 3600.0)
    assert [job.retries.delay(n) for n in (1, 2, 3)] == [30.0, 90.0, 270.0]
    assert job.timeout == 7200 and job.recompute is False
    assert job.schedule == {"cron": "15 2 * * *", "timezone": "Asia/Ho_Chi_Minh"}
    assert job.url.startswith("OAPIF:")
    # the shipped jobs all parse, with the default policy (one try)
    assert load_jobs()["water_sources"].after == ("water_protection_corridors",)


@pytest.mark.parametrize("definition, expected", [
    ({"schedule": {"cron": "0 2 * *"}}, "has 4 fields; write 5"),
    ({"schedule": {"cron": "0 25 * * *"}}, "is not valid"),
    ({"schedule": {"cron": "0 2 * * *", "timezone": "Asia/Hanoi_City"}}, "unknown time zone"),
    ({"retries": {"attempts": 0}}, "retries.attempts must be a whole number"),
    ({"timeout": "soon"}, "timeout: 'soon' is not a duration"),
    ({"source": {"url": "ftp://x/y.gpkg"}}, "must be http(s)"),
    ({"source": {"path": "a.gpkg", "url": "https://x/y.gpkg"}}, "needs one of"),
])
def test_a_wrong_job_definition_says_which_file_and_what_to_write(definition, expected):
    raw = {"layer": "cadastral_parcels", "source": {"path": "a.gpkg"}, **definition}
    with pytest.raises(JobDefinitionError, match="jobs/bad.yml") as error:
        parse_job(raw, "jobs/bad.yml", "bad")
    assert expected in str(error.value)


def test_retry_then_success_is_logged_per_try_and_notified(db, tmp_path, failing_inserts, smtp_server, webhook):
    source = write_parcels(tmp_path / "parcels.gpkg", parcels(3))
    write_job(tmp_path / "jobs", "parcels", source={"path": str(source)},
              retries={"attempts": 3, "backoff": 0.05, "factor": 2})
    failing_inserts(2)
    notify = NotifySettings(on="always", email_to=["gis@example.vn"], smtp_host="127.0.0.1",
                            smtp_port=smtp_server.port, webhook=webhook.url, status_url="http://gis.local/status")
    runner = runner_for(tmp_path / "jobs", notify)
    outcome = runner.run(runner.jobs["parcels"], "schedule")
    assert outcome.status == "succeeded" and outcome.attempts == 3
    log = runs(db, "parcels")
    assert [(r["trigger"], r["attempt"], r["status"]) for r in log] == [
        ("schedule", 1, "failed"), ("schedule (retry)", 2, "failed"), ("schedule (retry)", 3, "succeeded")]
    assert "injected failure number 1" in log[0]["error"] and log[2]["inserted"] == 3
    assert live_parcels(db) == 3
    # one notification for the outcome, not one per try
    assert len(smtp_server.messages) == 1
    message = email.message_from_bytes(smtp_server.messages[0].content, policy=email.policy.default)
    assert "parcels" in message["Subject"] and "succeeded" in message["Subject"]
    body = message.get_content()
    assert "Số lần thử / Attempts: 3" in body and "http://gis.local/status" in body
    assert [h["json"]["status"] for h in webhook.received] == ["succeeded"]
    assert webhook.received[0]["json"]["run_id"] == log[2]["run_id"]


def test_failure_after_every_try_notifies_by_mail_and_webhook_and_changes_nothing(db, tmp_path, failing_inserts,
                                                                                   smtp_server, webhook):
    write_parcels(tmp_path / "a.gpkg", parcels(2))
    runner = runner_for(tmp_path / "jobs")
    write_job(tmp_path / "jobs", "parcels", source={"path": str(tmp_path / "a.gpkg")})
    runner.run(load_jobs(tmp_path / "jobs")["parcels"], "manual")
    before = snapshot(db)
    write_parcels(tmp_path / "a.gpkg", parcels(4))
    write_job(tmp_path / "jobs", "parcels", source={"path": str(tmp_path / "a.gpkg")},
              retries={"attempts": 2, "backoff": 0.05})
    failing_inserts(5)
    notify = NotifySettings(email_to=["gis@example.vn", "it@example.vn"], smtp_host="127.0.0.1",
                            smtp_port=smtp_server.port, webhook=webhook.url)
    runner = runner_for(tmp_path / "jobs", notify)
    outcome = runner.run(runner.jobs["parcels"], "schedule")
    assert outcome.status == "failed" and outcome.attempts == 2
    assert snapshot(db) == before
    assert len(smtp_server.messages) == 1
    envelope = smtp_server.messages[0]
    assert sorted(envelope.rcpt_tos) == ["gis@example.vn", "it@example.vn"]
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert "thất bại / failed" in message["Subject"]
    assert "injected failure number 2" in message.get_content()
    [hook] = webhook.received
    assert hook["path"] == "/hooks/etl" and hook["content_type"].startswith("application/json")
    assert hook["json"]["event"] == "etl.run.failed" and hook["json"]["attempts"] == 2
    assert "injected failure" in hook["json"]["error"]


def test_a_success_is_not_notified_by_default(db, tmp_path, webhook):
    source = write_parcels(tmp_path / "parcels.gpkg", parcels(2))
    write_job(tmp_path / "jobs", "parcels", source={"path": str(source)})
    runner = runner_for(tmp_path / "jobs", NotifySettings(webhook=webhook.url))
    assert runner.run(runner.jobs["parcels"], "schedule").status == "succeeded"
    assert webhook.received == []


def test_a_run_over_its_timeout_is_rolled_back_and_logged(db, tmp_path):
    source = write_parcels(tmp_path / "parcels.gpkg", parcels(3))
    write_job(tmp_path / "jobs", "parcels", source={"path": str(source)}, timeout="1s")
    before = snapshot(db)
    # the table is locked by another session: the run waits inside PostgreSQL until its time-out cancels it
    with db.connect() as blocker:
        blocker.execute(sa.text("LOCK TABLE data.cadastral_parcels IN ACCESS EXCLUSIVE MODE"))
        runner = runner_for(tmp_path / "jobs")
        outcome = runner.run(runner.jobs["parcels"], "schedule")
        blocker.rollback()
    assert outcome.status == "failed"
    [run] = runs(db, "parcels")
    assert run["status"] == "failed" and "time-out" in run["error"] and "rolled back" in run["error"]
    assert snapshot(db) == before


def test_derived_layers_are_recomputed_after_a_run_that_changed_data(db, tmp_path):
    from tests.conftest import SAMPLE

    jobs = tmp_path / "jobs"
    write_job(jobs, "water_sources", layer="water_sources", source={"path": str(SAMPLE / "water/nguon_nuoc.gpkg")},
              after=["corridors"])
    write_job(jobs, "corridors", layer="water_protection_corridors", source={"derive": "water_sources"})
    runner = runner_for(jobs)
    outcome = runner.run(runner.jobs["water_sources"], "schedule")
    assert outcome.status == "succeeded" and [d.status for d in outcome.derived] == ["succeeded"]
    assert [(r["job"], r["trigger"]) for r in runs(db)] == [("water_sources", "schedule"),
                                                            ("corridors", "after water_sources")]
    # unchanged source: nothing to recompute
    again = runner.run(runner.jobs["water_sources"], "schedule")
    assert again.status == "succeeded" and again.derived == []
    # recompute: false turns it off
    write_job(jobs, "water_sources", layer="water_sources", source={"path": str(SAMPLE / "water/nguon_nuoc.gpkg")},
              after=["corridors"], recompute=False)
    with db.begin() as connection:
        connection.execute(sa.text("UPDATE data.water_sources SET source_hash = NULL"))  # forces a re-read
    assert runner_for(jobs).run(load_jobs(jobs)["water_sources"], "schedule").derived == []


def test_a_url_source_is_downloaded_and_its_checksum_logged(db, tmp_path, static_server):
    import hashlib

    served = write_parcels(static_server.folder / "thua_dat.gpkg", parcels(3))
    write_job(tmp_path / "jobs", "remote", source={"url": f"{static_server.base}/thua_dat.gpkg"})
    runner = runner_for(tmp_path / "jobs")
    outcome = runner.run(runner.jobs["remote"], "schedule")
    assert outcome.status == "succeeded" and outcome.report.inserted == 3
    with db.connect() as connection:
        sources = connection.execute(sa.text("SELECT sources FROM etl.runs WHERE job = 'remote'")).scalar()
    assert sources[0]["sha256"] == hashlib.sha256(served.read_bytes()).hexdigest()


def test_a_failed_download_is_logged_and_named(db, tmp_path, static_server):
    write_job(tmp_path / "jobs", "remote", source={"url": f"{static_server.base}/missing.gpkg"})
    runner = runner_for(tmp_path / "jobs")
    outcome = runner.run(runner.jobs["remote"], "schedule")
    assert outcome.status == "failed"
    [run] = runs(db, "remote")
    assert run["status"] == "failed" and "missing.gpkg: download failed" in run["error"] and "404" in run["error"]


def test_an_ogc_api_features_source_is_read_through_gdal(db, tmp_path):
    """`url: OAPIF:...`: GDAL pages through the service; the features (CRS84) land in VN-2000 like a file's."""
    import subprocess
    import sys

    import geopandas as gpd

    from tests.builders import ORIGIN

    frame = gpd.GeoDataFrame(parcels(3), geometry="geometry", crs=9215).to_crs(4326)
    (tmp_path / "features.geojson").write_text(frame.to_json(), encoding="utf-8")
    server = subprocess.Popen([sys.executable, str(Path(__file__).parent / "oapif_server.py"),
                               str(tmp_path / "features.geojson"), "thua_dat"], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        write_job(tmp_path / "jobs", "remote", source={"url": f"OAPIF:http://127.0.0.1:{port}/collections/thua_dat"})
        runner = runner_for(tmp_path / "jobs")
        outcome = runner.run(runner.jobs["remote"], "schedule")
    finally:
        server.terminate()
        server.wait()
    assert outcome.status == "succeeded", outcome.error
    assert outcome.report.inserted == 3
    with db.connect() as connection:
        x, y = connection.execute(sa.text(
            "SELECT ST_XMin(geom), ST_YMin(geom) FROM data.cadastral_parcels WHERE parcel_no = '1'")).one()
    assert abs(x - ORIGIN[0]) < 0.01 and abs(y - ORIGIN[1]) < 0.01  # back in VN-2000 to the centimetre
