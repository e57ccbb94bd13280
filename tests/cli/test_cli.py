"""The command line: help a person can use, reports, and exit codes a script can trust."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from gisplatform.cli import EXIT_DEFINITION, EXIT_FAILED, EXIT_REJECTS, main
from tests.builders import parcel, parcels, write_parcels


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_lists_the_commands_and_exit_codes():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("db", "etl", "sample", "demo", "layers"):
        assert command in result.output
    assert "Exit codes" in result.output and "gisplatform demo" in result.output
    etl_help = invoke("etl", "load", "--help").output
    for option in ("--crs", "--encoding", "--mode", "--fix", "--field-map", "EPSG:9215"):
        assert option in etl_help


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "gisplatform"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "0.1" in result.stdout


def test_one_off_load_prints_a_balanced_report(db, tmp_path):
    path = write_parcels(tmp_path / "p.gpkg", parcels(3) + [parcel(3, MDSD="XYZ")])
    result = invoke("etl", "load", "cadastral_parcels", str(path), "-q")
    assert result.exit_code == 0, result.output
    assert "balanced" in result.output and "rejected" in result.output
    strict = invoke("etl", "load", "cadastral_parcels", str(path), "-q", "--strict")
    assert strict.exit_code == EXIT_REJECTS


def test_the_console_script_ends_an_etl_run_with_its_exit_code_and_the_whole_report(db, tmp_path):
    """The installed script leaves quickly after a run (os._exit, see gisplatform.cli.console): the exit code
    and every line of the report still come out."""
    path = write_parcels(tmp_path / "p.gpkg", parcels(3) + [parcel(3, MDSD="XYZ")])
    script = Path(sys.executable).parent / "gisplatform"
    result = subprocess.run([str(script), "etl", "load", "cadastral_parcels", str(path), "-q", "--strict"],
                            capture_output=True, text=True, env=os.environ)
    assert result.returncode == EXIT_REJECTS, result.stderr
    assert "balanced" in result.stdout and "codes_valid_at_date" in result.stdout
    assert result.stdout.rstrip().endswith("┘")  # the findings table, to its last line


def test_json_report_gives_a_script_the_counts_the_commit_time_and_no_personal_data(db, tmp_path):
    path = write_parcels(tmp_path / "p.gpkg", parcels(3) + [parcel(3, MDSD="XYZ")])
    report_file = tmp_path / "report.json"
    started = time.time()
    result = invoke("etl", "load", "cadastral_parcels", str(path), "-q", "--json-report", str(report_file))
    ended = time.time()
    assert result.exit_code == 0, result.output
    (report,) = json.loads(report_file.read_text(encoding="utf-8"))
    assert (report["layer"], report["status"], report["read"], report["inserted"], report["rejected"]) == (
        "cadastral_parcels", "succeeded", 4, 3, 1)
    assert started < report["committed_at"] < ended and report["seconds"] > 0 and "merge" in report["phases"]
    assert {f["rule"] for f in report["findings"]} >= {"codes_valid_at_date"}
    text = report_file.read_text(encoding="utf-8")
    assert "Nguyễn Văn Thử" not in text and "0200900" not in text  # owners' names and ID numbers stay out


def test_status_and_rejects_show_what_happened(db, tmp_path):
    path = write_parcels(tmp_path / "p.gpkg", parcels(2) + [parcel(2, MDSD="XYZ")])
    invoke("etl", "load", "cadastral_parcels", str(path), "-q")
    status = invoke("etl", "status")
    assert "succeeded" in status.output and "load:cadastral_parcels" in status.output
    rejects = invoke("etl", "rejects", "1")
    assert "XYZ" in rejects.output and "codes_valid_at_date" in rejects.output
    out = tmp_path / "rejects.csv"
    assert invoke("etl", "rejects", "1", "--csv", str(out)).exit_code == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert len(rows) == 1 and rows[0]["row_number"] == "3" and "XYZ" in rows[0]["raw_record"]


def test_a_failed_run_exits_1_and_says_what_to_do(db, tmp_path):
    path = write_parcels(tmp_path / "p.gpkg", parcels(1), crs_code=None)
    result = CliRunner().invoke(main, ["etl", "load", "cadastral_parcels", str(path), "-q"])
    assert result.exit_code == EXIT_FAILED
    assert "nothing was changed" in result.output and "EPSG:9215" in result.output


def test_definition_errors_exit_4(db, tmp_path):
    result = CliRunner().invoke(main, ["etl", "run", "no_such_job"])
    assert result.exit_code == EXIT_DEFINITION and "unknown job" in result.output
    result = CliRunner().invoke(main, ["etl", "load", "no_such_layer", str(write_parcels(tmp_path / "p.gpkg",
                                                                                         parcels(1)))])
    assert result.exit_code == EXIT_DEFINITION and "cadastral_parcels" in result.output


def test_usage_errors_exit_2(db):
    assert CliRunner().invoke(main, ["etl", "run"]).exit_code == 2
    assert CliRunner().invoke(main, ["etl", "load", "cadastral_parcels", "/no/such/file.shp"]).exit_code == 2


def test_db_status_reports_a_ready_database(db):
    result = invoke("db", "status")
    assert result.exit_code == 0
    assert "EPSG:9215 checkpoint" in result.output and "drift from layers/" in result.output


def test_layers_command_marks_personal_fields(db):
    output = invoke("layers").output
    assert "personal" in output and "user_id_number" in output


def test_a_database_that_cannot_be_reached_exits_5_with_what_to_do(tmp_path, database_url):
    """No traceback: the reason from PostgreSQL and the next step, for a missing database and a dead server."""
    path = write_parcels(tmp_path / "p.gpkg", parcels(2))
    script = Path(sys.executable).parent / "gisplatform"
    cases = {database_url.set(database="gisplatform_no_such_db"): "gisplatform db init",
             database_url.set(host="127.0.0.1", port=1): "GISPLATFORM_DATABASE_URL"}
    for url, advice in cases.items():
        env = {"GISPLATFORM_DATABASE_URL": url.render_as_string(hide_password=False), "PATH": "/usr/bin:/bin",
               "HOME": str(tmp_path)}
        for args in (["etl", "load", "cadastral_parcels", str(path), "-q"], ["etl", "status"]):
            result = subprocess.run([str(script), *args], capture_output=True, text=True, env=env)
            assert result.returncode == 5, result.stderr
            output = result.stdout + result.stderr
            assert "Traceback" not in output and advice in output, output
