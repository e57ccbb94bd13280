"""ETL job definitions (``etl/*.yml``): which files feed which layer, how, and when.

    job: cadastral_parcels             # name (defaults to the file name)
    layer: cadastral_parcels
    mode: full                         # full snapshot (missing rows are retired) | incremental
    source:
      path: sample/cadastral/*.shp     # file or glob, relative to the project folder
      reader: vector                   # optional: vector | licence_register | point_table | derived
      crs: EPSG:9215                   # optional: CRS of the coordinates, overrides what files say
      encoding: auto                   # auto | utf-8 | tcvn3 | vni | cp1258
      layer: null                      # GeoPackage layer or workbook sheet
      related: {corners: sample/mining/giay_phep_khoang_san.xlsx}
      field_map: {parcel_no: SO_THUA}  # layer field: source column, where names differ
      files:                           # per-file overrides, by glob on the file name
        "thua_dat_06041.*": {crs: EPSG:9215, note: ".prj claims a WGS 84 datum"}
    fixes: [swap_xy]                   # coordinate repairs the officer vouches for (see gisplatform.crs.FIXES)
    schedule: {cron: "0 2 * * *", timezone: Asia/Ho_Chi_Minh}   # 5 fields; 6 = seconds first (tests)
    retries: {attempts: 3, backoff: 60, factor: 2}  # tries in all; wait 60 s, then 120 s... between them
    timeout: 2h                        # a run still going after this is cancelled (rolled back) and retried
    recompute: true                    # after a run that changed data, run the `after:` jobs (derived layers)
    after: [water_protection_corridors]
    inbox: ["thua_dat_*.shp"]          # inbox files for this job (default: the file name pattern of source.path)

A source may also be remote: ``url: https://host/path/file.gpkg`` (downloaded), ``url: OAPIF:https://host/ogc/
collections/NAME`` (OGC API - Features, read by GDAL) or ``url: WFS:https://host/wfs?typename=NAME``.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gisplatform.config import load_yaml, settings
from gisplatform.layers import Text, get_layer, is_raster_layer
from gisplatform.sources.options import SourceOptions

MODES = ("full", "incremental")
_JOB_KEYS = {"job", "layer", "title", "mode", "source", "fixes", "schedule", "after", "description", "retries",
             "timeout", "recompute", "inbox"}
_SOURCE_KEYS = {"path", "url", "reader", "crs", "encoding", "layer", "related", "field_map", "files", "derive",
                "nodata"}  # nodata: raster layers, when the GeoTIFF does not declare it
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNIT_SECONDS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


class JobDefinitionError(ValueError):
    pass


def parse_epsg(value: Any, where: str) -> int | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    match = re.fullmatch(r"(?:EPSG:)?(\d{4,5})", text, flags=re.IGNORECASE)
    if not match:
        raise JobDefinitionError(f"{where}: CRS {value!r} must be an EPSG code such as EPSG:9215")
    return int(match.group(1))


def parse_duration(value: Any, where: str, key: str) -> float | None:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"2h"``; None when not given."""
    if value in (None, ""):
        return None
    match = _DURATION.match(str(value))
    if not match or float(match.group(1)) <= 0:
        raise JobDefinitionError(f"{where}: {key}: {value!r} is not a duration; write seconds (90) or 90s, 15m, 2h")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class RetryPolicy:
    """How often to try a failing run, and how long to wait between tries (exponential back-off)."""
    attempts: int = 1  # tries in all, the first included
    backoff: float = 60.0  # seconds before the second try
    factor: float = 2.0  # each later wait is this many times the previous one
    max_backoff: float = 3600.0

    def delay(self, failed_attempt: int) -> float:
        """Seconds to wait after try number ``failed_attempt`` (1-based) failed."""
        return min(self.backoff * self.factor ** (failed_attempt - 1), self.max_backoff)


def parse_retries(value: Any, where: str) -> RetryPolicy:
    if value in (None, False):
        return RetryPolicy()
    if isinstance(value, int) and not isinstance(value, bool):
        value = {"attempts": value}
    if not isinstance(value, dict) or set(value) - {"attempts", "backoff", "factor", "max_backoff"}:
        raise JobDefinitionError(f"{where}: retries: write {{attempts: 3, backoff: 60s, factor: 2}} "
                                 f"(got {value!r})")
    attempts = value.get("attempts", 3)
    if not isinstance(attempts, int) or attempts < 1:
        raise JobDefinitionError(f"{where}: retries.attempts must be a whole number ≥ 1 (tries in all)")
    factor = value.get("factor", 2)
    if not isinstance(factor, (int, float)) or factor < 1:
        raise JobDefinitionError(f"{where}: retries.factor must be a number ≥ 1")
    backoff = parse_duration(value.get("backoff", 60), where, "retries.backoff")
    max_backoff = parse_duration(value.get("max_backoff", 3600), where, "retries.max_backoff")
    return RetryPolicy(attempts, backoff, float(factor), max_backoff)


def parse_schedule(value: Any, where: str) -> dict | None:
    """``{cron, timezone}`` checked now (a wrong cron must fail when the job is read, not at 2 a.m.)."""
    if value in (None, False):
        return None
    if isinstance(value, str):
        value = {"cron": value}
    if not isinstance(value, dict) or "cron" not in value or set(value) - {"cron", "timezone"}:
        raise JobDefinitionError(f"{where}: schedule: write {{cron: \"0 2 * * *\", timezone: {DEFAULT_TIMEZONE}}}")
    schedule = {"cron": str(value["cron"]).strip(), "timezone": value.get("timezone") or DEFAULT_TIMEZONE}
    from gisplatform.schedule.cron import cron_trigger  # APScheduler: imported only when a job has a schedule

    try:
        cron_trigger(schedule)
    except ValueError as exc:
        raise JobDefinitionError(f"{where}: schedule: {exc}") from exc
    return schedule


@dataclass(frozen=True)
class FileOverride:
    pattern: str
    crs: int | None = None
    encoding: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Job:
    name: str
    layer: str
    mode: str
    path: str | None
    reader: str | None = None
    options: SourceOptions = field(default_factory=SourceOptions)
    overrides: tuple[FileOverride, ...] = ()
    fixes: frozenset[str] = frozenset()
    derive_from: str | None = None
    schedule: dict | None = None
    after: tuple[str, ...] = ()
    title: Text | None = None
    definition: Path | None = None
    url: str | None = None
    retries: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float | None = None  # seconds
    recompute: bool = True
    inbox: tuple[str, ...] = ()  # file-name patterns of inbox files for this job
    nodata: float | None = None  # raster jobs: the source's nodata value when the file does not declare it

    @property
    def full_snapshot(self) -> bool:
        return self.mode == "full"

    def files(self) -> list[Path]:
        """The source files this job reads now, sorted; an error if a pattern matches nothing."""
        if self.derive_from:
            return []
        if self.url:
            from gisplatform.sources.remote import fetch

            return [fetch(self.url, settings().var_dir / "downloads" / self.name, self.name)]
        pattern = Path(self.path)
        if not pattern.is_absolute():
            pattern = settings().project_dir / pattern
        matches = sorted(p for p in pattern.parent.glob(pattern.name) if p.is_file())
        if not matches:
            raise JobDefinitionError(f"job {self.name}: no file matches {self.path} (looked in {pattern.parent})")
        return matches

    def options_for(self, path: Path) -> tuple[SourceOptions, str | None]:
        """The source options for one file, with its per-file overrides applied, and the override's note."""
        options, note = self.options, None
        for override in self.overrides:
            if fnmatch.fnmatch(path.name, override.pattern):
                if override.crs:
                    options = replace(options, crs=override.crs)
                if override.encoding:
                    options = replace(options, encoding=override.encoding)
                note = override.note or note
        return options, note

    def describe_options(self) -> dict:
        return {
            "crs": f"EPSG:{self.options.crs}" if self.options.crs else None,
            "encoding": self.options.encoding,
            "fixes": sorted(self.fixes),
            "overrides": [o.__dict__ for o in self.overrides],
            "field_map": self.options.field_map,
        }


def _resolve(path: str | None) -> Path | None:
    if not path:
        return None
    p = Path(path)
    return p if p.is_absolute() else settings().project_dir / p


def _check_fixes(fixes: frozenset[str], where: str) -> None:
    from gisplatform.crs import FIXES  # (pyproj: imported only by the jobs that name fixes)

    bad = [f for f in fixes if f not in FIXES and not f.startswith("from_epsg:")]
    if bad:
        raise JobDefinitionError(f"{where}: unknown fix(es) {bad}; known: {', '.join(FIXES)}")


def parse_job(raw: dict, where: str, default_name: str) -> Job:
    unknown = set(raw) - _JOB_KEYS
    if unknown:
        raise JobDefinitionError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_JOB_KEYS)}")
    name = raw.get("job", default_name)
    layer = raw.get("layer")
    if not layer:
        raise JobDefinitionError(f"{where}: 'layer:' is required")
    if not is_raster_layer(layer):
        get_layer(layer)  # raises with the list of layers when unknown
    mode = raw.get("mode", "full")
    if mode not in MODES:
        raise JobDefinitionError(f"{where}: mode {mode!r} must be one of {MODES}")
    source = raw.get("source") or {}
    unknown = set(source) - _SOURCE_KEYS
    if unknown:
        raise JobDefinitionError(f"{where}: unknown source key(s) {sorted(unknown)}; allowed: {sorted(_SOURCE_KEYS)}")
    if sum(bool(source.get(k)) for k in ("path", "url", "derive")) != 1:
        raise JobDefinitionError(f"{where}: source needs one of 'path:' (file or glob), 'url:' (https://..., "
                                 "OAPIF:https://..., WFS:https://...) or 'derive: <layer>'")
    if source.get("url"):
        from gisplatform.sources.remote import check_url

        check_url(source["url"], where)
    fixes = frozenset(raw.get("fixes") or ())
    if fixes:
        _check_fixes(fixes, where)
    options = SourceOptions(
        crs=parse_epsg(source.get("crs"), where),
        encoding=source.get("encoding", "auto"),
        layer=source.get("layer"),
        related={k: _resolve(v) for k, v in (source.get("related") or {}).items()},
        field_map=dict(source.get("field_map") or {}),
    )
    overrides = tuple(
        FileOverride(pattern, parse_epsg(o.get("crs"), where), o.get("encoding"), o.get("note"))
        for pattern, o in (source.get("files") or {}).items()
    )
    title = raw.get("title")
    inbox = raw.get("inbox")
    inbox = (inbox,) if isinstance(inbox, str) else tuple(inbox or ())
    if not inbox and source.get("path"):
        inbox = (Path(source["path"]).name,)
    recompute = raw.get("recompute", True)
    if not isinstance(recompute, bool):
        raise JobDefinitionError(f"{where}: recompute must be true or false")
    return Job(
        name=name, layer=layer, mode=mode, path=source.get("path"), reader=source.get("reader"), options=options,
        overrides=overrides, fixes=fixes, derive_from=source.get("derive"),
        schedule=parse_schedule(raw.get("schedule"), where),
        after=tuple(raw.get("after") or ()), title=Text(**title) if title else None, definition=Path(where),
        url=source.get("url"), retries=parse_retries(raw.get("retries"), where),
        timeout=parse_duration(raw.get("timeout"), where, "timeout"), recompute=recompute, inbox=inbox,
        nodata=float(source["nodata"]) if source.get("nodata") is not None else None,
    )


def load_jobs(directory: Path | None = None) -> dict[str, Job]:
    directory = directory or settings().etl_dir
    jobs = {}
    for path in sorted(directory.glob("*.yml")):
        raw = load_yaml(path.read_text(encoding="utf-8")) or {}
        job = parse_job(raw, str(path), path.stem)
        if job.name in jobs:
            raise JobDefinitionError(f"{path}: job name {job.name!r} is already used by {jobs[job.name].definition}")
        jobs[job.name] = job
    for job in jobs.values():
        unknown = [name for name in job.after if name not in jobs]
        if unknown:
            raise JobDefinitionError(f"{job.definition}: after: unknown job(s) {unknown}; jobs: {', '.join(jobs)}")
    return jobs


def get_job(name: str) -> Job:
    jobs = load_jobs()
    if name not in jobs:
        raise JobDefinitionError(f"unknown job {name!r}; jobs: {', '.join(jobs) or '(none in etl/)'}")
    return jobs[name]


def one_off_job(layer: str, path: Path, crs: int | None, encoding: str, mode: str, fixes: tuple[str, ...] = (),
                related: dict[str, Path] | None = None, field_map: dict[str, str] | None = None) -> Job:
    """A job for a file that has none yet (``gisplatform etl load``)."""
    raw = {"layer": layer, "mode": mode, "fixes": list(fixes),
           "source": {"path": str(path.resolve()), "encoding": encoding, "crs": f"EPSG:{crs}" if crs else None,
                      "related": {k: str(v) for k, v in (related or {}).items()}, "field_map": field_map or {}}}
    return parse_job(raw, f"one-off load of {path}", f"load:{layer}")


def run_order(jobs: dict[str, Job]) -> list[Job]:
    """Jobs in dependency order: admin units first (others check communes against them), derived layers after
    their sources, then the rest by name."""
    def rank(job: Job) -> tuple:
        return (0 if job.layer == "admin_units" else 2 if job.derive_from else 1, job.name)

    return sorted(jobs.values(), key=rank)
