"""Cron expressions of etl/*.yml as APScheduler triggers, and the next times they are due."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

FIELDS_5 = ("minute", "hour", "day", "month", "day_of_week")


def cron_trigger(schedule: dict) -> CronTrigger:
    """5 fields as in crontab (minute hour day month weekday), or 6 with seconds first (``*/2 * * * * *``:
    tests use it to see a schedule fire without waiting minutes). Raises ValueError with what is wrong."""
    try:
        timezone = ZoneInfo(schedule.get("timezone") or "Asia/Ho_Chi_Minh")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {schedule.get('timezone')!r}; use e.g. Asia/Ho_Chi_Minh") from exc
    parts = str(schedule["cron"]).split()
    if len(parts) == 5:
        fields = dict(zip(FIELDS_5, parts))
    elif len(parts) == 6:
        fields = dict(zip(("second", *FIELDS_5), parts))
    else:
        raise ValueError(f"cron {schedule['cron']!r} has {len(parts)} fields; write 5 (minute hour day month "
                         "weekday), e.g. \"0 2 * * *\" for 02:00 every day")
    try:
        # crontab weekdays count from Sunday = 0; APScheduler's from Monday = 0. from_crontab converts.
        if len(parts) == 5:
            return CronTrigger.from_crontab(" ".join(parts), timezone=timezone)
        trigger = CronTrigger.from_crontab(" ".join(parts[1:]), timezone=timezone)
        return CronTrigger(second=fields["second"], minute=fields["minute"], hour=fields["hour"],
                           day=fields["day"], month=fields["month"],
                           day_of_week=str(trigger.fields[trigger.FIELD_NAMES.index("day_of_week")]),
                           timezone=timezone)
    except ValueError as exc:
        raise ValueError(f"cron {schedule['cron']!r} is not valid: {exc}") from exc


def next_due(schedule: dict | None, now: datetime | None = None) -> datetime | None:
    """When a schedule fires next (in its own time zone), or None for a job without one."""
    if not schedule:
        return None
    trigger = cron_trigger(schedule)
    now = now or datetime.now(trigger.timezone)
    return trigger.get_next_fire_time(None, now)
