"""What every rule gets: its configuration, the layer, and the run's context."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gisplatform.codes import CodeTable
from gisplatform.layers import Layer, Rule
from gisplatform.transform.batch import Issue, IssueKind, LayerBatch


@dataclass
class RuleContext:
    code_tables: dict[str, CodeTable]
    today: np.datetime64
    fixes: frozenset[str] = frozenset()  # repairs the job declared (swap_xy, from_utm48, ...)
    admin_units: "AdminUnitIndex | None" = None  # noqa: F821 - set by the runner when admin units are loaded
    notes: list[str] = field(default_factory=list)


class RowRule:
    """A rule checked batch by batch. Subclasses implement ``check``."""

    def __init__(self, rule: Rule, layer: Layer):
        self.rule = rule
        self.layer = layer
        self.name = rule.rule

    @property
    def failure_kind(self) -> IssueKind:
        return "error" if self.rule.severity == "error" else "warning"

    def statements(self, ctx: SetContext) -> list[str]:  # pragma: no cover - interface
        raise NotImplementedError

    def findings(self, ctx: SetContext) -> list[str]:
        """SQL of the findings (columns sid, message) that :meth:`statements` records on the staged rows, for a
        rule whose findings may be written elsewhere (a pair rule's warnings after a first load's insert)."""
        raise NotImplementedError(f"{type(self).__name__} records its findings only through statements()")

    def param(self, name: str, default=None):
        return self.rule.params.get(name, default)

    def check(self, batch: LayerBatch, ctx: RuleContext) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def fail_row(self, batch: LayerBatch, index: int, message: str, field: str | None = None) -> None:
        batch.issues.add(index, Issue(self.name, self.failure_kind, message, field))

    def repaired_row(self, batch: LayerBatch, index: int, message: str, field: str | None = None) -> None:
        batch.issues.add(index, Issue(self.name, "repair", message, field))

    def fail(self, batch: LayerBatch, mask: np.ndarray, messages, field: str | None = None) -> int:
        return batch.issues.add_where(mask, self.name, self.failure_kind, messages, field)

    def repaired(self, batch: LayerBatch, mask: np.ndarray, messages, field: str | None = None) -> int:
        return batch.issues.add_where(mask, self.name, "repair", messages, field)


@dataclass(frozen=True)
class SetContext:
    """Where a set rule finds the run's rows (tables of the run's transaction) and what else is loaded."""

    staging: str  # staged rows (accepted and rejected)
    unmatched: str  # fids of live features no source row matched unchanged (all others are in the source as stored)
    pairs: str  # overlapping pairs found in Python (a_sid, b_sid, area)
    loaded_pairs: str  # staged rows overlapping loaded features, found in Python (sid, fid, natural_key, area)
    again: str  # rows rejected again unchanged, not staged (source_hash, src_file, src_row, natural_key text)
    data: str  # the layer's table
    incremental: bool  # mode: rows missing from the source stay
    others_loaded: bool  # the layer had live rows before this run
    empty: bool = False  # the layer had no rows at all, not even retired ones: a first load
    # natural keys that may repeat among the staged rows (every repeated key is there), or None: any may
    duplicate_candidates: str | None = None


class SetRule:
    """A rule over all rows of a run, evaluated in SQL on the staging table (see gisplatform.load.merge)."""

    needs_pairs = False  # True: runs after the Python pair search (see gisplatform.validate.overlaps)

    def __init__(self, rule: Rule, layer: Layer):
        self.rule = rule
        self.layer = layer
        self.name = rule.rule

    def param(self, name: str, default=None):
        return self.rule.params.get(name, default)

    @property
    def failure_kind(self) -> IssueKind:
        return "error" if self.rule.severity == "error" else "warning"

    def search(self, cursor, ctx: SetContext) -> None:
        """Work done in Python before :meth:`statements` (none by default); ``cursor`` is the run's."""

    def statements(self, ctx: SetContext) -> list[str]:  # pragma: no cover - interface
        raise NotImplementedError

    def findings(self, ctx: SetContext) -> list[str]:
        """SQL of the findings (columns sid, message) that :meth:`statements` records on the staged rows, for a
        rule whose findings may be written elsewhere (a pair rule's warnings after a first load's insert)."""
        raise NotImplementedError(f"{type(self).__name__} records its findings only through statements()")
