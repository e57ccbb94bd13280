"""``gisplatform etl``: run jobs, load a one-off file, see what ran and what was rejected."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click
from rich.table import Table

from gisplatform.cli.render import console, progress_bars, run_report

ENCODINGS = ("auto", "utf-8", "tcvn3", "vni", "cp1258")
JSON_REPORT = click.option(  # `etl run` and `etl load`
    "--json-report", "json_report", type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also write each run's report (counts, phases, commit time, findings) to this JSON file.")


@click.group()
def etl() -> None:
    """Load files into PostGIS: validated, repaired where safe, reconciled row by row, versioned."""


def _run_and_report(jobs, strict: bool, quiet: bool, trigger: str = "manual", executor: str = "local",
                    dask_scheduler: str | None = None, dask_workers: int | None = None,
                    json_report: Path | None = None) -> None:
    from gisplatform.cli import EXIT_REJECTS, quick_exit_when_done
    from gisplatform.etl.runner import run_job

    rejected = 0
    summaries = []
    for job in jobs:
        with progress_bars(not quiet and sys.stderr.isatty()) as progress:
            report = run_job(job, trigger=trigger, progress=progress, executor=executor,
                             dask_address=dask_scheduler, dask_workers=dask_workers)
        run_report(report)
        rejected += report.rejected
        summaries.append(report.summary())
        if json_report:  # after each run: a later run that fails still leaves the earlier ones' reports
            json_report.write_text(json.dumps(summaries, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    quick_exit_when_done()
    if strict and rejected:
        sys.exit(EXIT_REJECTS)


@etl.command("run")
@click.argument("job_name", required=False)
@click.option("--all", "run_all", is_flag=True, help="Run every job in etl/, admin units first, derived layers last.")
@click.option("--strict", is_flag=True, help="Exit 6 when any row was rejected.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("--trigger", type=click.Choice(["manual", "schedule"]), default="manual", show_default=True,
              help="Recorded in the run log: schedule when cron starts the run (see `scheduler install --cron`).")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="dask: validate and stage partitions (by commune) on a Dask cluster; the merge stays one "
                   "transaction.")
@click.option("--dask-scheduler", metavar="ADDRESS", help="A running Dask scheduler, e.g. tcp://10.0.0.5:8786 "
                                                          "(default: a LocalCluster on this machine).")
@click.option("--dask-workers", type=int, help="Worker processes of the LocalCluster (default 2).")
@JSON_REPORT
def run(job_name: str | None, run_all: bool, strict: bool, quiet: bool, trigger: str, executor: str,
        dask_scheduler: str | None, dask_workers: int | None, json_report: Path | None) -> None:
    """Run JOB (an etl/*.yml) or --all of them, and print each run's report."""
    from gisplatform.etl.jobs import get_job, load_jobs, run_order

    if bool(job_name) == run_all:
        raise click.UsageError("give a JOB name or --all (see `gisplatform etl jobs`)")
    jobs = run_order(load_jobs()) if run_all else [get_job(job_name)]
    _run_and_report(jobs, strict, quiet, trigger, executor, dask_scheduler, dask_workers, json_report)


@etl.command()
@click.option("--inbox", type=click.Path(file_okay=False, path_type=Path),
              help="The watched folder (default: [scheduler] inbox in gisplatform.toml, else var/inbox).")
@click.option("--jobs", "jobs_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of job definitions (default: etl/).")
@click.option("--settle", default=10.0, show_default=True, help="Leave files changed less than this many seconds ago.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing when the inbox is empty.")
def inbox(inbox: Path | None, jobs_dir: Path | None, settle: float, quiet: bool) -> None:
    """Load the files waiting in the inbox once (the scheduler does this every --poll seconds)."""
    from gisplatform.cli.scheduler import _inbox_default
    from gisplatform.etl.jobs import load_jobs
    from gisplatform.schedule.inbox import Inbox
    from gisplatform.schedule.policy import Runner

    box = Inbox(inbox or _inbox_default(), Runner(load_jobs(jobs_dir)), settle)
    results = box.poll()
    if not results and not quiet:
        console.print(f"hộp thư trống / inbox empty: {box.root}")
    style = {"loaded": "green", "duplicate": "yellow", "failed": "red", "waiting": "yellow"}
    for r in results:
        run_text = f" run {r.run_id}" if r.run_id else ""
        console.print(f"[{style[r.status]}]{r.status}[/] {r.file} → {r.job or '—'}{run_text}"
                      + (f" ({r.moved_to})" if r.moved_to else ""))
        if r.status == "failed":
            console.print(f"  {r.message}")


@etl.command()
@click.argument("layer")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--crs", help="CRS of the coordinates, e.g. EPSG:9215 (VN-2000 KTT 107°15′) or EPSG:3405 (UTM 48N).")
@click.option("--encoding", type=click.Choice(ENCODINGS), default="auto", show_default=True,
              help="Text encoding of the attribute table (auto = detected per column).")
@click.option("--mode", type=click.Choice(["full", "incremental"]), default="incremental", show_default=True,
              help="full: features missing from the file are retired; incremental: only add and update.")
@click.option("--fix", "fixes", multiple=True, help="Declared coordinate fix, e.g. swap_xy, from_utm48 (repeatable).")
@click.option("--corners", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Corner-point table for a licence register (mining licences).")
@click.option("--field-map", "field_map", multiple=True, metavar="FIELD=COLUMN",
              help="Source column for a layer field whose column has another name (repeatable).")
@click.option("--strict", is_flag=True, help="Exit 6 when any row was rejected.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@JSON_REPORT
def load(layer: str, file: Path, crs: str | None, encoding: str, mode: str, fixes: tuple[str, ...],
         corners: Path | None, field_map: tuple[str, ...], strict: bool, quiet: bool,
         json_report: Path | None) -> None:
    """Load FILE into LAYER once, for a file that has no job yet."""
    from gisplatform.etl.jobs import one_off_job, parse_epsg

    mapping = dict(pair.split("=", 1) for pair in field_map if "=" in pair)
    if len(mapping) != len(field_map):
        raise click.BadParameter("use FIELD=COLUMN", param_hint="--field-map")
    job = one_off_job(layer, file, parse_epsg(crs, "--crs"), encoding, mode, fixes,
                      {"corners": corners} if corners else None, mapping)
    _run_and_report([job], strict, quiet, json_report=json_report)


@etl.command()
@click.option("-n", "--limit", default=20, show_default=True, help="How many recent runs.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(limit: int, as_json: bool) -> None:
    """Recent runs: when, what, how long, counts, and errors."""
    from gisplatform.etl.status import next_due_times, recent_runs

    runs = recent_runs(limit)
    due = next_due_times()
    if as_json:
        click.echo(json.dumps({"runs": runs, "next_due": due}, default=str, ensure_ascii=False, indent=2))
        return
    table = Table(title="Lượt chạy gần đây / Recent ETL runs", title_justify="left")
    for column in ("run", "job", "status", "trigger", "try", "started", "duration", "read", "ins", "upd", "same",
                   "rej", "retired"):
        table.add_column(column, justify="right" if column in ("run", "try", "read", "ins", "upd", "same", "rej",
                                                               "retired") else "left")
    style = {"succeeded": "green", "failed": "red", "running": "yellow", "skipped": "dim"}
    for r in runs:
        duration = f"{r['seconds']:.1f} s" if r["seconds"] is not None else "—"
        table.add_row(str(r["run_id"]), r["job"], f"[{style[r['status']]}]{r['status']}", r["trigger"],
                      str(r["attempt"]), f"{r['started_at']:%Y-%m-%d %H:%M}", duration,
                      *(f"{r[k]:,}" for k in ("read", "inserted", "updated", "unchanged", "rejected", "retired")))
    console.print(table)
    for r in runs:
        if r["status"] in ("failed", "skipped") and r["error"]:
            console.print(f"[{style[r['status']]}]run {r['run_id']} {r['status']}:[/] {r['error']}")
    schedule = Table("job", "cron", "next due / lần chạy tới", "last run / lần chạy trước",
                     title="Lịch chạy / Schedule (Asia/Ho_Chi_Minh)", title_justify="left")
    for d in due:
        schedule.add_row(d["job"], d["cron"] or "—", f"{d['next_due']:%Y-%m-%d %H:%M}" if d["next_due"] else "—",
                         f"{d['last_status']} {d['last_started']:%Y-%m-%d %H:%M}" if d["last_started"] else "—")
    console.print(schedule)


@etl.command()
@click.argument("run_id", type=int)
@click.option("-n", "--limit", default=50, show_default=True, help="Rows to show (0 = all).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write every reject (with the raw record) to this CSV file instead.")
def rejects(run_id: int, limit: int, csv_path: Path | None) -> None:
    """Rows RUN_ID rejected: file, row, rule, field and why. Raw records may hold personal data: internal use."""
    from gisplatform.etl.status import quarantine_pruned_at, run_rejects

    pruned = quarantine_pruned_at(run_id)
    if pruned is not None:
        console.print(f"[yellow]The rejects of run {run_id} were pruned on {pruned:%Y-%m-%d %H:%M}[/] (retention "
                      "keeps the last runs of each job: \\[retention] quarantine_runs in gisplatform.toml). Its "
                      "counts and per-rule examples remain: gisplatform etl status.")
        sys.exit(1)
    rows = run_rejects(run_id, None if csv_path or limit == 0 else limit)
    if csv_path:
        with csv_path.open("w", newline="", encoding="utf-8-sig") as fh:
            writer = csv.DictWriter(fh, fieldnames=["file", "row_number", "natural_key", "rule", "field", "message",
                                                    "raw_record"])
            writer.writeheader()
            for row in rows:
                writer.writerow({**row, "raw_record": json.dumps(row["raw_record"], ensure_ascii=False, default=str)})
        console.print(f"[green]✓[/] {len(rows)} rejects written to {csv_path}")
        return
    if not rows:
        console.print(f"run {run_id} rejected no rows")
        return
    table = Table(title=f"Rejected rows of run {run_id}", title_justify="left")
    for column in ("file", "row", "key", "rule", "why"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["file"] or "", str(row["row_number"] or ""), row["natural_key"] or "", row["rule"],
                      row["message"])
    console.print(table)


@etl.command()
@click.option("--keep-runs", type=click.IntRange(min=1), default=None,
              help="Succeeded runs of each job that keep their rejects and issues (default: [retention] "
                   "quarantine_runs in gisplatform.toml, else 20).")
@click.option("--job", "job_name", help="Only this job's runs.")
@click.option("--dry-run", is_flag=True, help="Show what would be pruned, change nothing.")
def prune(keep_runs: int | None, job_name: str | None, dry_run: bool) -> None:
    """Delete the rejects and issues of runs older than the last N succeeded runs of their job.

    Runs do this themselves after each commit; use it after lowering the setting, or to see what is kept. The run
    log keeps every run's counts and per-rule examples; rejects that a kept run still refers to stay."""
    from gisplatform.db.engine import engine
    from gisplatform.load.retention import keep_runs_setting, prune_quarantine

    keep = keep_runs or keep_runs_setting()
    if keep == 0:
        console.print("retention is off (\\[retention] quarantine_runs = 0): nothing to prune")
        return
    with engine().connect() as connection, connection.begin() as transaction:
        pruned = prune_quarantine(connection, keep, job_name)
        if dry_run:
            transaction.rollback()
    if not pruned:
        console.print(f"nothing to prune: no job has more than {keep} succeeded runs with their rejects")
        return
    table = Table("run", "job", "layer", "reasons", "issues", "kept for later runs",
                  title=f"{'Would prune' if dry_run else 'Pruned'}: runs older than the last {keep} of their job",
                  title_justify="left")
    for run in pruned:
        table.add_row(str(run.run_id), run.job, run.layer, f"{run.reasons:,}", f"{run.issues:,}", f"{run.kept:,}")
    console.print(table)
    if dry_run:
        console.print("[yellow]dry run: nothing was changed[/]")


@etl.command("jobs")
def list_jobs() -> None:
    """The jobs defined in etl/*.yml."""
    from gisplatform.etl.jobs import load_jobs, run_order

    table = Table("job", "layer", "mode", "source", "schedule", title="ETL jobs", title_justify="left")
    for job in run_order(load_jobs()):
        source = f"derived from {job.derive_from}" if job.derive_from else job.path
        cron = (job.schedule or {}).get("cron", "—")
        table.add_row(job.name, job.layer, job.mode, source, cron)
    console.print(table)


@click.command()
def layers() -> None:
    """The layers defined in layers/*.yml, with their fields (personal ones marked)."""
    from gisplatform.layers import load_layers

    for layer in load_layers().values():
        table = Table("field", "type", "title (vi / en)", "notes", title=f"{layer.name} — {layer.title.vi} / "
                      f"{layer.title.en} ({layer.geometry_type}, EPSG:{layer.storage_srid})", title_justify="left")
        for f in layer.fields:
            notes = []
            if f.name in layer.natural_key:
                notes.append("key")
            if f.required:
                notes.append("required")
            if f.personal:
                notes.append("[red]personal[/]")
            if f.code_table:
                notes.append(f"codes: {f.code_table}")
            if f.derive:
                notes.append(f"derived: {f.derive}")
            table.add_row(f.name, f.type, f"{f.title.vi} / {f.title.en}", ", ".join(notes))
        console.print(table)
    _raster_layers()


def _raster_layers() -> None:
    from gisplatform.layers import load_raster_layers

    for layer in load_raster_layers().values():
        table = Table("value", "code", "title (vi / en)", "colour", title=f"{layer.name} — {layer.title.vi} / "
                      f"{layer.title.en} (raster, {layer.raster_type}, EPSG:{layer.storage_srid}, {layer.resolution:g} m, "
                      f"{layer.dtype}, nodata {layer.nodata:g}, {layer.resampling})", title_justify="left")
        for c in layer.categories:
            table.add_row(str(c.value), c.code, f"{c.title.vi} / {c.title.en}", c.colour)
        console.print(table)
