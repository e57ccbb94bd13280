"""Codes checked against the versioned code tables for the record's date.

A land-use code from the 2014 list on a record dated after 2024-08-01, or a pre-2025 commune code on a record
dated after 2025-07-01, is the classic defect. Where a repair is safe and declared (``repair: true``):
  * a retired land-use code with a one-to-one successor in the table's ``maps_to`` (BHK → HNK) is replaced;
  * a commune code is replaced by the commune that, on the record date, contains the feature's geometry
    (old → new is not a pure lookup: some communes were split and some merges cross old district lines).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from gisplatform.transform.batch import Issue, LayerBatch
from gisplatform.transform.geometry import representative_xy
from gisplatform.validate.base import RowRule, RuleContext

ADMIN_TABLE = "admin_units"


def _split(value: str | None, sep: str | None) -> list[str]:
    if value is None:
        return []
    return value.split(sep) if sep else [value]


def _explode(values: np.ndarray, sep: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Multi-codes ("ONT+CLN") as (row, code) pairs, split by Arrow."""
    array = pa.array(values, pa.string(), from_pandas=True)
    if not sep:
        present = np.asarray(array.is_valid())
        return np.flatnonzero(present), np.asarray(values, dtype=object)[present]
    parts = pc.split_pattern(array, sep)
    flat = pc.list_flatten(parts)
    rows = np.asarray(pc.list_parent_indices(parts))
    codes = flat.to_numpy(zero_copy_only=False)
    keep = codes != ""
    return rows[keep], codes[keep]


class CodesValidAtDate(RowRule):
    """Codes (other than commune codes) exist in their code table on the record date."""

    def check(self, batch: LayerBatch, ctx: RuleContext) -> None:
        for f in self.layer.source_fields:
            if not f.code_table or f.code_table == ADMIN_TABLE:
                continue
            table = ctx.code_tables[f.code_table]
            values = batch.values[f.name]
            rows, codes = _explode(values, f.multi)
            if not len(rows):
                continue
            dates = batch.record_dates[rows]
            valid = table.valid_at(codes, dates)
            if valid.all():
                continue
            known = table.known(codes)
            successor = table.attribute(codes, None, "maps_to") if "maps_to" in table.columns else np.full(len(codes), None)
            successor_valid = np.array([s is not None for s in successor]) & table.valid_at(successor, dates)
            fixable = ~valid & known & successor_valid & self.rule.repair
            for j in np.flatnonzero(fixable):
                i = rows[j]
                parts = _split(values[i], f.multi)
                parts = [successor[j] if p == codes[j] else p for p in parts]
                values[i] = (f.multi or "").join(parts)
                batch.issues.add(i, _issue(self.name, "repair", f.name,
                    f"{f.name}: {codes[j]} is not used on {dates[j]} ({table.validity_text(codes[j])}); "
                    f"replaced by its successor {successor[j]}"))
            for j in np.flatnonzero(~valid & ~fixable):
                i = rows[j]
                if not known[j]:
                    text = f"{f.name}: unknown code {codes[j]!r} (not in code table {f.code_table})"
                else:
                    text = (f"{f.name}: {codes[j]} is not valid on the record date {dates[j]} "
                            f"({table.validity_text(codes[j])})")
                batch.issues.add(i, _issue(self.name, self.failure_kind, f.name, text + "; correct the code or "
                                           "the record date"))


class CommuneValidAtDate(RowRule):
    """Commune codes exist in the admin-unit table on the record date (repair: assign by geometry)."""

    def check(self, batch: LayerBatch, ctx: RuleContext) -> None:
        table = ctx.code_tables[ADMIN_TABLE]
        for f in self.layer.source_fields:
            if f.code_table != ADMIN_TABLE:
                continue
            values = batch.values[f.name]
            present = np.array([v is not None for v in values], dtype=bool)
            valid = table.valid_at(values, batch.record_dates)
            wrong = present & ~valid
            if not wrong.any():
                continue
            rows = np.flatnonzero(wrong)
            assigned = np.full(len(rows), None, dtype=object)
            if self.rule.repair and ctx.admin_units is not None:
                x, y = representative_xy(batch.geometry[rows])
                assigned = ctx.admin_units.code_at(x, y, batch.record_dates[rows])
            for i, new in zip(rows, assigned):
                old = values[i]
                reason = (table.validity_text(old) if table.known(np.array([old], dtype=object))[0]
                          else f"{old!r} is not a Lạng Sơn commune code")
                if new is not None:
                    values[i] = new
                    batch.issues.add(i, _issue(self.name, "repair", f.name,
                        f"{f.name}: {old} is not valid on {batch.record_dates[i]} ({reason}); the geometry lies in "
                        f"commune {new}, which is used instead"))
                else:
                    hint = ("load the admin_units layer so the platform can assign the commune from the geometry"
                            if ctx.admin_units is None and self.rule.repair else "correct the commune code")
                    batch.issues.add(i, _issue(self.name, self.failure_kind, f.name,
                        f"{f.name}: {old} is not valid on the record date {batch.record_dates[i]} ({reason}); {hint}"))


def _issue(rule, kind, field, message) -> Issue:
    return Issue(rule, kind, message, field)


class AdminUnitIndex:
    """Admin-unit polygons with their validity, for 'which commune contained this point on that date'."""

    def __init__(self, codes: np.ndarray, valid_from: np.ndarray, valid_to: np.ndarray, geoms: np.ndarray):
        self.codes = codes
        self.valid_from = valid_from.astype("datetime64[D]")
        self.valid_to = np.where(np.isnat(valid_to), np.datetime64("9999-12-31"), valid_to).astype("datetime64[D]")
        self.tree = shapely.STRtree(geoms)

    def code_at(self, x: np.ndarray, y: np.ndarray, dates: np.ndarray) -> np.ndarray:
        points = shapely.points(x, y)
        out = np.full(len(points), None, dtype=object)
        point_idx, unit_idx = self.tree.query(points, predicate="within")
        ok = (dates[point_idx] >= self.valid_from[unit_idx]) & (dates[point_idx] < self.valid_to[unit_idx])
        for p, u in zip(point_idx[ok], unit_idx[ok]):
            if out[p] is None:
                out[p] = self.codes[u]
        return out
