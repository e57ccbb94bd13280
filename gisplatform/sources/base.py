"""What every reader hands to the transform stage: batches of raw rows, in the file's own terms.

Readers do not interpret values (no type parsing, no text decoding, no reprojection): they say what the file
holds, where each row came from, which CRS the file or the row states, and what they could not even read.
Everything after that is :mod:`gisplatform.transform`'s and :mod:`gisplatform.validate`'s job, so a row's fate
is decided in one place whatever format it arrived in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from gisplatform.sources.options import SourceError, SourceOptions  # noqa: F401 - re-exported for the readers


@dataclass(frozen=True)
class RowProblem:
    """Something a reader found wrong with one row (e.g. an unclosed corner table).

    ``index`` is the position in the batch; ``rule`` a short rule id (``corner_table``, ``unreadable_value``);
    ``field`` the source column concerned, if any.
    """

    index: int
    rule: str
    message: str
    field: str | None = None


@dataclass
class SourceBatch:
    """Up to ``batch_size`` consecutive rows of one file."""

    file: Path
    rows: pd.DataFrame  # raw values, columns named as in the file; text is str (see text_is_latin1)
    row_numbers: np.ndarray  # int64, the row a person finds it at: DBF record no., CSV line, sheet row
    geometry: np.ndarray | None  # shapely geometries (object array) in the stated CRS, None where absent
    crs: int | np.ndarray | None  # EPSG stated for the whole batch, or one per row (0 = not stated)
    problems: list[RowProblem] = field(default_factory=list)
    text_is_latin1: bool = False  # text columns hold raw bytes read as latin-1; decode before use
    # as read, for change detection without re-encoding; an Arrow array stays one (no Python object per row)
    raw_geometry_wkb: np.ndarray | pa.Array | None = None
    geometry_pending: bool = False  # geometry is still only raw_geometry_wkb: see parse_geometry

    def __len__(self) -> int:
        return len(self.rows)

    def parse_geometry(self) -> "SourceBatch":
        """Geometries from the WKB a reader handed over unparsed. Parsing waits until the rows that need it are
        known: a re-run recognises most rows as unchanged from the WKB bytes alone and never parses them."""
        if self.geometry_pending:
            wkb = self.raw_geometry_wkb
            if isinstance(wkb, pa.Array):
                wkb = wkb.to_numpy(zero_copy_only=False)
            self.geometry = shapely.from_wkb(wkb, on_invalid="ignore")
            self.geometry_pending = False
        return self


@dataclass(frozen=True)
class FileInfo:
    """What a reader learnt about a file before reading rows."""

    path: Path
    columns: tuple[str, ...]
    declared_crs: int | None  # EPSG code the file itself declares (.prj, GPKG srs), if recognised
    crs_note: str | None = None  # diagnosis of the file's own CRS declaration (e.g. missing datum shift)
    feature_count: int | None = None
    encoding_hint: str | None = None  # .cpg / DBF language driver, when present


class Reader(Protocol):
    """One file of one format. Readers are registered by suffix in :mod:`gisplatform.sources`."""

    def info(self) -> FileInfo: ...

    def batches(self, batch_size: int) -> Iterator[SourceBatch]: ...
