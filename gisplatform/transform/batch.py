"""A batch of rows in the layer's own terms (typed fields, geometry in the storage CRS) and what happened to them.

Every row ends in exactly one of: rejected (any ``error`` issue), loaded with warnings/repairs, or loaded clean.
Issues are kept per row so the quarantine and the run report can name the file, row, field and rule.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence

import numpy as np
import pyarrow as pa

from gisplatform.layers import Layer
from gisplatform.transform.arrow import as_arrow
from gisplatform.transform.typing import missing_mask

IssueKind = Literal["error", "warning", "repair"]


@dataclass(frozen=True)
class Issue:
    rule: str
    kind: IssueKind
    message: str
    field: str | None = None

    def as_dict(self) -> dict:
        return {"rule": self.rule, "kind": self.kind, "field": self.field, "message": self.message}


class IssueLog:
    """Issues per row of one batch."""

    def __init__(self, size: int):
        self.size = size
        self._by_row: dict[int, list[Issue]] = {}

    def add(self, index: int, issue: Issue) -> None:
        self._by_row.setdefault(int(index), []).append(issue)

    def add_where(self, mask: np.ndarray, rule: str, kind: IssueKind, messages: str | Sequence[str] | Callable[[int], str],
                  field: str | None = None) -> int:
        """Record an issue on every row where mask is true; messages may be one text, one per row, or a function."""
        positions = np.flatnonzero(mask)
        for i in positions:
            if callable(messages):
                text = messages(int(i))
            elif isinstance(messages, str):
                text = messages
            else:
                text = messages[i]
            self.add(i, Issue(rule, kind, text, field))
        return len(positions)

    def of(self, index: int) -> list[Issue]:
        return self._by_row.get(int(index), [])

    def rejected(self) -> np.ndarray:
        mask = np.zeros(self.size, dtype=bool)
        for i, issues in self._by_row.items():
            if any(x.kind == "error" for x in issues):
                mask[i] = True
        return mask

    def qa_flags(self) -> list[str | None]:
        """Per row: the rule ids of its warnings and repairs, '{a,b}'-joined for a text[] column."""
        flags: list[str | None] = [None] * self.size
        for i, issues in self._by_row.items():
            kept = sorted({f"{x.kind}:{x.rule}" for x in issues if x.kind != "error"})
            if kept:
                flags[i] = "{" + ",".join(kept) + "}"
        return flags

    def as_json(self, kinds: tuple[IssueKind, ...]) -> list[str | None]:
        """Per row, the issues of the given kinds as a JSON array (None when there are none)."""
        out: list[str | None] = [None] * self.size
        for i, issues in self._by_row.items():
            chosen = [x.as_dict() for x in issues if x.kind in kinds]
            if chosen:
                out[i] = json.dumps(chosen, ensure_ascii=False)
        return out

    def counts(self) -> Counter:
        """(kind, rule) -> number of rows."""
        counter: Counter = Counter()
        for issues in self._by_row.values():
            for key in {(x.kind, x.rule) for x in issues}:
                counter[key] += 1
        return counter

    def subset(self, keep: np.ndarray) -> "IssueLog":
        """The log of the rows where keep is true, renumbered."""
        new_index = np.cumsum(keep) - 1
        log = IssueLog(int(keep.sum()))
        for i, issues in self._by_row.items():
            if keep[i]:
                log._by_row[int(new_index[i])] = list(issues)
        return log


class TypedValues(MutableMapping):
    """A batch's typed values by field name, as numpy arrays (see :class:`LayerBatch`).

    Free text may be set as the Arrow array it was read as: it becomes numpy (a Python str per value) only when
    something reads it. Names and addresses, which no rule reads, then go to staging as they came (a million
    parcels: some 3 s of a run's own thread spent making Python strings and Arrow arrays again from them)."""

    def __init__(self, values: dict | None = None):
        self._values: dict[str, np.ndarray | pa.Array] = {}
        self.update(values or {})

    def __getitem__(self, name: str) -> np.ndarray:
        value = self._values[name]
        if isinstance(value, pa.Array):  # first read: numpy from now on (edits happen in place)
            value = self._values[name] = value.to_numpy(zero_copy_only=False)
        return value

    def __setitem__(self, name: str, value: np.ndarray | pa.Array | pa.ChunkedArray) -> None:
        self._values[name] = as_arrow(value) if isinstance(value, pa.ChunkedArray) else value

    def __delitem__(self, name: str) -> None:
        del self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def missing(self, name: str) -> np.ndarray:
        """Mask of the rows without a value, without making numpy of text that is still Arrow."""
        value = self._values[name]
        if isinstance(value, pa.Array):
            return np.asarray(value.is_null(), dtype=bool)
        return missing_mask(value)

    def stored(self, name: str) -> np.ndarray | pa.Array:
        """The values as held: the Arrow array still, if nothing has read them."""
        return self._values[name]


@dataclass
class LayerBatch:
    """Rows of one source batch, transformed into the layer's fields."""

    layer: Layer
    file: str  # path as shown in reports (relative to the job's folder)
    row_numbers: np.ndarray
    values: TypedValues  # field -> object (text/boolean), float64 (number/integer), datetime64[D] (date)
    geometry: np.ndarray  # shapely geometries in the layer's storage CRS; None where missing
    record_dates: np.ndarray  # datetime64[D]: the date codes are checked against
    source_hash: np.ndarray  # int64
    source_raw: list[str | None]  # JSON of raw legacy bytes per row
    raw_records: Callable[[np.ndarray], list[dict]]  # rows as read, for the quarantine
    stated_crs: np.ndarray  # int EPSG per row, as stated (0 = none)
    issues: IssueLog = field(init=False)
    parse_failures: dict[str, np.ndarray] = field(default_factory=dict)  # field -> mask of unparseable values
    raw_values: dict[str, np.ndarray] = field(default_factory=dict)  # field -> source values before typing
    # the geometries as parsed from the source's WKB, and that WKB (Arrow), where the reader handed it over:
    # a row whose geometry is still the very object parsed is staged as those bytes (see load.staging)
    parsed_geometry: np.ndarray | None = None
    source_wkb: pa.Array | None = None

    def __post_init__(self) -> None:
        self.issues = IssueLog(len(self.row_numbers))
        if not isinstance(self.values, TypedValues):
            self.values = TypedValues(self.values)

    def __len__(self) -> int:
        return len(self.row_numbers)

    def key_text(self, index: int) -> str:
        """The natural key of one row as people read it: 'sheet_commune_code=06040, map_sheet_no=12, ...'."""
        parts = []
        for name in self.layer.natural_key:
            value = self.values[name][index]
            parts.append(f"{name}={_display(value)}")
        return ", ".join(parts)

    def where(self, index: int) -> str:
        return f"{self.file} row {self.row_numbers[index]}"


def _display(value) -> str:
    if value is None:
        return "(empty)"
    if isinstance(value, float):
        if np.isnan(value):
            return "(empty)"
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, np.datetime64):
        return "(empty)" if np.isnat(value) else str(value)
    return str(value)


def display(value) -> str:
    """A value as shown in a message."""
    return _display(value)
