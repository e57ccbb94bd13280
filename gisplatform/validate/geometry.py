"""Geometry rules: present, plausibly placed in Lạng Sơn, and valid.

Misplaced data is never loaded silently: coordinates outside the province are diagnosed (swapped X/Y, UTM 48N
instead of TM-3, a 106° meridian, a Gauss-Krüger zone prefix); a fix the job declared for that diagnosis is
applied and recorded as a repair, anything else rejects the row with the diagnosis and what to do.
"""
from __future__ import annotations

import numpy as np
import shapely

from gisplatform import crs
from gisplatform.transform.batch import LayerBatch
from gisplatform.transform.geometry import polygonal_part, representative_xy
from gisplatform.validate.base import RowRule, RuleContext

_POLYGONAL = ("Polygon", "MultiPolygon")


def present_mask(geoms: np.ndarray) -> np.ndarray:
    return ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)


class GeometryPresent(RowRule):
    """Every row has a non-empty geometry."""

    def check(self, batch: LayerBatch, ctx: RuleContext) -> None:
        missing = ~present_mask(batch.geometry)
        self.fail(batch, missing, "no geometry (empty, unreadable, or no coordinates could be built)")


class InsideProvince(RowRule):
    """Coordinates fall inside Lạng Sơn (EPSG:9215 plausibility bounds); misplacements are diagnosed."""

    def check(self, batch: LayerBatch, ctx: RuleContext) -> None:
        rows = np.flatnonzero(present_mask(batch.geometry))
        if not len(rows):
            return
        x, y = representative_xy(batch.geometry[rows])
        codes = crs.diagnose_xy(x, y)
        self._outside_boundary(batch, rows[codes == "ok"], ctx)
        for code in set(codes) - {"ok"}:
            hit = rows[codes == code]
            fix = next((f for f in crs.applicable_fixes(code) if f in ctx.fixes), None)
            if fix:
                self._apply(batch, hit, code, fix)
                continue
            hx, hy = representative_xy(batch.geometry[hit])
            for i, e, n in zip(hit, hx, hy):
                self.fail_row(batch, i, crs.diagnosis_message(code, e, n))

    def _outside_boundary(self, batch: LayerBatch, rows: np.ndarray, ctx: RuleContext) -> None:
        """Inside the coarse EPSG:9215 box, but in no commune of the province on the record date."""
        if ctx.admin_units is None or self.layer.name == "admin_units" or not len(rows):
            return
        x, y = representative_xy(batch.geometry[rows])
        communes = ctx.admin_units.code_at(x, y, batch.record_dates[rows])
        for i, e, n in zip(rows[communes == None], x[communes == None], y[communes == None]):  # noqa: E711
            self.fail_row(batch, i, f"point (E {e:,.0f}, N {n:,.0f}) is outside Lạng Sơn's boundary: no commune "
                                    f"contains it on {batch.record_dates[i]}; check the coordinates and their CRS")

    def _apply(self, batch: LayerBatch, rows: np.ndarray, code: str, fix: str) -> None:
        fixed = shapely.transform(batch.geometry[rows], lambda c: np.column_stack(crs.apply_fix(c[:, 0], c[:, 1], fix)))
        fixed = shapely.transform(fixed, lambda c: np.round(c, 3))
        fx, fy = representative_xy(fixed)
        still_outside = ~crs.inside_province(fx, fy)
        batch.geometry[rows[~still_outside]] = fixed[~still_outside]
        for i in rows[~still_outside]:
            self.repaired_row(batch, i, f"coordinates were misplaced ({code}); fix `{fix}` declared by the job "
                                        f"applied ({crs.FIXES.get(fix, fix)})")
        for i in rows[still_outside]:
            self.fail_row(batch, i, f"coordinates are misplaced ({code}) and the declared fix `{fix}` does not "
                                    "bring them into the province; check the source's CRS")


class GeometryValid(RowRule):
    """Geometry is valid (OGC simple features); with repair, made valid if its area barely changes."""

    def check(self, batch: LayerBatch, ctx: RuleContext) -> None:
        present = present_mask(batch.geometry)
        invalid = present & ~shapely.is_valid(batch.geometry)
        rows = np.flatnonzero(invalid)
        if not len(rows):
            return
        reasons = shapely.is_valid_reason(batch.geometry[rows])
        if not self.rule.repair or self.layer.geometry_type not in _POLYGONAL:
            for i, reason in zip(rows, reasons):
                self.fail_row(batch, i, f"invalid geometry: {reason}; fix the outline at the source")
            return
        # Safe repairs (ring orientation, repeated points, tiny spikes) keep the area as drawn; a bow-tie's
        # shoelace area differs from its repaired area, and only the surveyor knows the intended outline.
        limit = float(self.param("max_area_change", 0.01))
        repaired = shapely.make_valid(batch.geometry[rows], method="structure", keep_collapsed=False)
        for i, reason, new in zip(rows, reasons, repaired):
            new = polygonal_part(new)
            before = shapely.area(batch.geometry[i])
            after = shapely.area(new) if new is not None else 0.0
            change = abs(after - before) / before if before else 1.0
            if new is None or change > limit:
                self.fail_row(batch, i, f"invalid geometry: {reason}; repairing it would change the area by "
                                        f"{change:.1%} (more than {limit:.0%}), so it is rejected: fix the outline "
                                        "at the source")
                continue
            batch.geometry[i] = new
            self.repaired_row(batch, i, f"invalid geometry ({reason}) made valid; area changed by {change:.2%}")
