"""What a job says about its source files, and the error a file that cannot be read raises: both needed before
any reader is (job definitions, the run log), so kept apart from the readers' heavier modules."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class SourceError(Exception):
    """A file that cannot be read at all. The message names the file and says what to do."""


@dataclass(frozen=True)
class SourceOptions:
    """What the officer or the job says about a source, overriding what the file claims."""

    crs: int | None = None  # EPSG code to assume for coordinates (overrides .prj / stated CRS)
    encoding: str = "auto"  # auto | utf-8 | tcvn3 | vni | cp1258 | latin1
    layer: str | None = None  # layer of a multi-layer container (GPKG), sheet of a workbook
    related: dict[str, Path] = field(default_factory=dict)  # e.g. {"corners": path} for licence registers
    field_map: dict[str, str] = field(default_factory=dict)  # layer field -> source column, when names differ
