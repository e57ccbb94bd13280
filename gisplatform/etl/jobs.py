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
    schedule: {cron: "0 2 * * *", timezone: Asia/Ho_Chi_Minh}
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from gisplatform.config import settings
from gisplatform.crs import FIXES
from gisplatform.layers import Text, get_layer, is_raster_layer
from gisplatform.sources.base import SourceOptions

MODES = ("full", "incremental")
_JOB_KEYS = {"job", "layer", "title", "mode", "source", "fixes", "schedule", "after", "description"}
_SOURCE_KEYS = {"path", "reader", "crs", "encoding", "layer", "related", "field_map", "files", "derive",
                "nodata"}  # nodata: raster layers, when the GeoTIFF does not declare it


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
    nodata: float | None = None  # raster jobs: the source's nodata value when the file does not declare it

    @property
    def full_snapshot(self) -> bool:
        return self.mode == "full"

    def files(self) -> list[Path]:
        """The source files this job reads now, sorted; an error if a pattern matches nothing."""
        if self.derive_from:
            return []
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
    if not source.get("path") and not source.get("derive"):
        raise JobDefinitionError(f"{where}: source needs 'path:' (file or glob) or 'derive: <layer>'")
    fixes = frozenset(raw.get("fixes") or ())
    bad = [f for f in fixes if f not in FIXES and not f.startswith("from_epsg:")]
    if bad:
        raise JobDefinitionError(f"{where}: unknown fix(es) {bad}; known: {', '.join(FIXES)}")
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
    return Job(
        name=name, layer=layer, mode=mode, path=source.get("path"), reader=source.get("reader"), options=options,
        overrides=overrides, fixes=fixes, derive_from=source.get("derive"), schedule=raw.get("schedule"),
        after=tuple(raw.get("after") or ()), title=Text(**title) if title else None, definition=Path(where),
        nodata=float(source["nodata"]) if source.get("nodata") is not None else None,
    )


def load_jobs(directory: Path | None = None) -> dict[str, Job]:
    directory = directory or settings().etl_dir
    jobs = {}
    for path in sorted(directory.glob("*.yml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        job = parse_job(raw, str(path), path.stem)
        if job.name in jobs:
            raise JobDefinitionError(f"{path}: job name {job.name!r} is already used by {jobs[job.name].definition}")
        jobs[job.name] = job
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
