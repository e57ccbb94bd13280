"""Install helpers: a systemd unit for ``gisplatform scheduler``, and the crontab alternative."""
from __future__ import annotations

import getpass
import shlex
import sys
from pathlib import Path

from gisplatform.config import settings

UNIT_NAME = "gisplatform-scheduler.service"


def executable() -> Path:
    """The ``gisplatform`` script of this installation (the virtualenv's, not whatever is on PATH)."""
    script = Path(sys.executable).parent / "gisplatform"
    return script if script.exists() else Path(sys.argv[0]).resolve()


def systemd_unit(user: str | None = None, args: tuple[str, ...] = (), user_unit: bool = False) -> str:
    home = settings().project_dir
    command = " ".join(shlex.quote(a) for a in (str(executable()), "scheduler", *args))
    config = settings().config_file
    lines = [
        "# Written by `gisplatform scheduler install --systemd`.",
        "# Enable:  systemctl " + ("--user " if user_unit else "") + f"daemon-reload && systemctl "
        + ("--user " if user_unit else "") + f"enable --now {UNIT_NAME}",
        "# Logs:    journalctl " + ("--user " if user_unit else "") + f"-u {UNIT_NAME} -f",
        "[Unit]",
        "Description=gisplatform ETL scheduler (Lạng Sơn GIS data platform)",
        "After=network-online.target postgresql.service",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
    ]
    if not user_unit:
        lines.append(f"User={user or getpass.getuser()}")
    lines += [
        f"WorkingDirectory={home}",
        f"Environment=GISPLATFORM_HOME={home}",
        *([f"Environment=GISPLATFORM_CONFIG={config}"] if config else []),
        "# Secrets (GISPLATFORM_DATABASE_URL with a password, GISPLATFORM_SMTP_PASSWORD) go in this file:",
        "EnvironmentFile=-/etc/gisplatform/scheduler.env",
        f"ExecStart={command}",
        "# SIGTERM: the scheduler cancels a run in progress, which rolls back; 120 s covers the rollback.",
        "KillSignal=SIGTERM",
        "KillMode=mixed",
        "TimeoutStopSec=120",
        "Restart=on-failure",
        "RestartSec=30",
        "",
        "[Install]",
        f"WantedBy={'default.target' if user_unit else 'multi-user.target'}",
    ]
    return "\n".join(lines) + "\n"


def default_unit_path(user_unit: bool) -> Path:
    if user_unit:
        return Path.home() / ".config" / "systemd" / "user" / UNIT_NAME
    return Path("/etc/systemd/system") / UNIT_NAME


def crontab_lines() -> str:
    """For machines without systemd: cron starts each due job (``etl run``) and polls the inbox each minute."""
    from gisplatform.etl.jobs import load_jobs

    home = settings().project_dir
    script = executable()
    lines = [f"# gisplatform ETL (crontab -e; cron uses the machine's time zone, set CRON_TZ when it is not "
             f"Asia/Ho_Chi_Minh)", "CRON_TZ=Asia/Ho_Chi_Minh", f"GISPLATFORM_HOME={home}"]
    for job in load_jobs().values():
        if job.schedule and len(job.schedule["cron"].split()) == 5:
            lines.append(f"{job.schedule['cron']} {script} etl run {job.name} -q --trigger schedule")
    lines.append(f"* * * * * {script} etl inbox -q")
    return "\n".join(lines) + "\n"
