"""Seeing it: `gisplatform etl status` and the read-only status page beside the portal (runs, failures,
rejects as CSV, next due times), bilingual, without personal data."""
from __future__ import annotations

import csv
import io
import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from werkzeug.test import Client

from gisplatform.cli import main
from gisplatform.publish.server import STATUS_PREFIX, Dispatcher, portal_app
from gisplatform.publish.status import status_app
from tests.builders import parcel, parcels, write_parcels
from tests.schedule.conftest import runner_for, write_job

PERSONAL = "Nguyễn Văn Thử"  # the owners' names of tests.builders.parcel


@pytest.fixture
def history(db, tmp_path):
    """A success with rejects (one of them on a personal field), a failure, and a job with a schedule."""
    rows = parcels(4)
    rows[1] = parcel(1, MDSD="XYZ")  # not a land-use code: rejected
    source = write_parcels(tmp_path / "parcels.gpkg", rows)
    jobs = tmp_path / "jobs"
    write_job(jobs, "parcels", source={"path": str(source)}, schedule={"cron": "0 2 * * *"},
              title={"vi": "Bản đồ địa chính", "en": "Cadastral maps"})
    write_job(jobs, "broken", source={"path": str(tmp_path / "missing.gpkg")})
    runner = runner_for(jobs)
    ok = runner.run(runner.jobs["parcels"], "schedule")
    (tmp_path / "missing.gpkg").write_bytes(b"not a geopackage")
    bad = runner.run(runner.jobs["broken"], "inbox")
    # No shipped rule rejects on a personal field today; a future one might quote the value in its message.
    with db.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO etl.rejects (run_id, layer, file, row_number, natural_key, rule, field, message, raw_record) "
            "VALUES (:r, 'cadastral_parcels', 'parcels.gpkg', 3, 'parcel_no=3', 'name_format', 'user_name', "
            ":m, CAST(:raw AS jsonb))"),
            {"r": ok.run_id, "m": f"user_name: '{PERSONAL} 2' has digits", "raw": json.dumps({"TENCHU": PERSONAL})})
    return {"jobs": jobs, "ok": ok, "bad": bad}


def client(history) -> Client:
    app = Dispatcher(portal_app(), {STATUS_PREFIX: status_app(jobs_dir=history["jobs"])})
    return Client(app)


def test_the_status_page_lists_runs_failures_and_next_due_times(history):
    ok, bad = history["ok"], history["bad"]
    assert ok.report.rejected >= 1
    page = client(history).get("/status/")
    assert page.status_code == 200 and page.content_type.startswith("text/html")
    text = page.get_data(as_text=True)
    assert "Tình trạng nạp dữ liệu" in text and "ETL status" in text
    assert f'href="runs/{ok.run_id}"' in text and "thành công" in text and "thất bại" in text
    assert "theo lịch" in text and "Lần chạy tới" in text and "Next due" in text
    assert "02:00:00" in text  # the next due time of the 02:00 job, in Asia/Ho_Chi_Minh
    assert "missing.gpkg" in text  # the failure says which file
    assert PERSONAL not in text
    assert client(history).get("/status").status_code == 301


def test_a_run_page_and_its_rejects_csv_show_no_personal_data(history):
    ok = history["ok"]
    page = client(history).get(f"/status/runs/{ok.run_id}").get_data(as_text=True)
    assert "Rejected rows by rule" in page and "codes_valid_at_date" in page and "unknown code &#x27;XYZ&#x27;" in page
    assert "personal field, see internally" in page
    assert f'href="{ok.run_id}/rejects.csv"' in page and PERSONAL not in page
    answer = client(history).get(f"/status/runs/{ok.run_id}/rejects.csv")
    assert answer.status_code == 200 and answer.content_type.startswith("text/csv")
    assert f"run-{ok.run_id}-rejects.csv" in answer.headers["Content-Disposition"]
    data = answer.get_data().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(data)))
    assert len(rows) == ok.report.rejected + 1 and "raw_record" not in rows[0]
    assert [(r["row_number"], r["rule"]) for r in rows] == [("2", "codes_valid_at_date"), ("3", "name_format")]
    assert "unknown code 'XYZ'" in rows[0]["message"]
    assert rows[1]["message"].startswith("(personal field") and PERSONAL not in data


def test_a_pruned_run_page_says_its_rejects_were_pruned(history, db):
    """Retention (gisplatform.load.retention) removed the run's rejects: the page keeps the counts and says so."""
    ok = history["ok"]
    with db.begin() as connection:
        connection.execute(sa.text("UPDATE etl.runs SET quarantine_pruned_at = now() WHERE run_id = :r"),
                           {"r": ok.run_id})
    page = client(history).get(f"/status/runs/{ok.run_id}").get_data(as_text=True)
    assert "pruned by the retention policy" in page and "đã xoá theo chính sách lưu giữ" in page
    assert "Rejected rows by rule" not in page  # the views no longer list the run's own rejects
    assert f"{ok.report.read:,}" in page


def test_the_status_json_and_unknown_runs(history):
    summary = json.loads(client(history).get("/status/runs.json").get_data())
    assert {r["job"] for r in summary["runs"]} == {"parcels", "broken"}
    assert [s["job"] for s in summary["schedule"] if s["next_due"]] == ["parcels"]
    assert client(history).get("/status/runs/999999").status_code == 404
    assert client(history).post("/status/").status_code == 405


def test_a_configured_token_guards_the_page(history, monkeypatch):
    monkeypatch.setenv("GISPLATFORM_STATUS_TOKEN", "s3cret")
    c = client(history)
    assert c.get("/status/").status_code == 401
    assert c.get("/status/?token=wrong").status_code == 401
    assert c.get("/status/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert c.get("/status/?token=s3cret").status_code == 200
    assert c.get(f"/status/runs/{history['ok'].run_id}/rejects.csv").status_code == 200  # the cookie


def test_etl_status_shows_triggers_tries_and_the_schedule(history, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(main, ["etl", "status"])
    assert result.exit_code == 0, result.output
    assert "Recent ETL runs" in result.output and "schedule" in result.output and "inbox" in result.output
    assert "Lịch chạy / Schedule" in result.output and "missing.gpkg" in result.output
    as_json = json.loads(CliRunner().invoke(main, ["etl", "status", "--json"]).output)
    assert {r["trigger"] for r in as_json["runs"]} == {"schedule", "inbox"}
    assert any(d["job"] == "cadastral_parcels" and d["next_due"] for d in as_json["next_due"])
