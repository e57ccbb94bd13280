"""``gisplatform scheduler``: the long-running ETL scheduler, and its install helpers."""
from __future__ import annotations

import logging
from pathlib import Path

import click

from gisplatform.cli.render import console


def _inbox_default() -> Path:
    from gisplatform.config import settings

    configured = settings().section("scheduler").get("inbox")
    return Path(configured) if configured else settings().var_dir / "inbox"


@click.group(invoke_without_command=True)
@click.option("--jobs", "jobs_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of job definitions (default: etl/ of the project).")
@click.option("--inbox", type=click.Path(file_okay=False, path_type=Path),
              help="Watched folder (default: [scheduler] inbox in gisplatform.toml, else var/inbox).")
@click.option("--no-inbox", is_flag=True, help="Do not watch an inbox.")
@click.option("--poll", default=30.0, show_default=True, help="Seconds between inbox checks.")
@click.option("--settle", default=10.0, show_default=True,
              help="A dropped file is taken once unchanged for this many seconds (still being copied otherwise).")
@click.option("--workers", default=2, show_default=True, help="Jobs that may run at the same time (other layers).")
@click.option("--misfire-grace", default=3600.0, show_default=True,
              help="Seconds a missed run may be late and still run (once, coalesced); older misses are skipped.")
@click.option("--no-catch-up", is_flag=True, help="At start, do not run jobs missed while the scheduler was down.")
@click.pass_context
def scheduler(ctx: click.Context, jobs_dir: Path | None, inbox: Path | None, no_inbox: bool, poll: float,
              settle: float, workers: int, misfire_grace: float, no_catch_up: bool) -> None:
    """Run ETL jobs on their schedules (etl/*.yml `schedule:`) and load files dropped into the inbox.

    \b
    Runs until SIGTERM or Ctrl+C; a run in progress is then rolled back. Every run lands in the run log
    (gisplatform etl status). Install as a service: gisplatform scheduler install --systemd
    """
    if ctx.invoked_subcommand:
        return
    from gisplatform.etl.jobs import load_jobs
    from gisplatform.schedule.policy import Runner
    from gisplatform.schedule.scheduler import Scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner = Runner(load_jobs(jobs_dir))
    sched = Scheduler(runner, inbox=None if no_inbox else (inbox or _inbox_default()), poll=poll, settle=settle,
                      workers=workers, misfire_grace=misfire_grace, catch_up=not no_catch_up)
    sched.serve_forever()


@scheduler.command()
@click.option("--systemd", "systemd", is_flag=True, help="Write a systemd unit file.")
@click.option("--cron", "cron", is_flag=True, help="Print crontab lines instead (machines without systemd).")
@click.option("--user", "user_unit", is_flag=True, help="A user unit (~/.config/systemd/user) instead of a system one.")
@click.option("--run-as", help="System unit: the account the scheduler runs as (default: you).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the unit (default: /etc/systemd/system/ or ~/.config/systemd/user/).")
@click.option("--arg", "args", multiple=True, help="Extra option for `gisplatform scheduler` (repeatable).")
def install(systemd: bool, cron: bool, user_unit: bool, run_as: str | None, output: Path | None,
            args: tuple[str, ...]) -> None:
    """Install the scheduler as a systemd service (--systemd), or print crontab lines (--cron)."""
    from gisplatform.schedule import install as helpers

    if systemd == cron:
        raise click.UsageError("give --systemd or --cron")
    if cron:
        click.echo(helpers.crontab_lines(), nl=False)
        return
    target = output or helpers.default_unit_path(user_unit)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(helpers.systemd_unit(run_as, args, user_unit), encoding="utf-8")
    except PermissionError as exc:
        raise click.ClickException(f"cannot write {target} ({exc.strerror}): run with sudo, or use --user, "
                                   "or --output FILE and copy it yourself") from exc
    flag = "--user " if user_unit else ""
    console.print(f"[green]✓[/] đã ghi / wrote {target}\n  systemctl {flag}daemon-reload && "
                  f"systemctl {flag}enable --now {helpers.UNIT_NAME}")


@scheduler.command("next")
@click.option("--jobs", "jobs_dir", type=click.Path(file_okay=False, path_type=Path))
def next_runs(jobs_dir: Path | None) -> None:
    """When each scheduled job is due next (Asia/Ho_Chi_Minh)."""
    from gisplatform.etl.jobs import load_jobs
    from gisplatform.schedule.cron import next_due

    for job in load_jobs(jobs_dir).values():
        due = next_due(job.schedule)
        click.echo(f"{job.name:32} {job.schedule['cron'] if job.schedule else '—':16} "
                   f"{due:%Y-%m-%d %H:%M %Z}" if due else f"{job.name:32} —")
