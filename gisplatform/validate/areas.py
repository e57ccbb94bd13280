"""Recorded areas against the geometry (planar, EPSG:9215) and against each other.

Areas are computed in the storage CRS (VN-2000 TM-3, scale error ≤ 0.015 % in the province), never in Web
Mercator, which inflates them by 16 % at Lạng Sơn's latitude.
"""
from __future__ import annotations

import numpy as np
import shapely

from gisplatform.transform.batch import LayerBatch, display
from gisplatform.validate.base import RowRule, RuleContext


def _differs(recorded: np.ndarray, actual: np.ndarray, tolerance: float, min_abs: float) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.abs(recorded - actual)
        return (diff > tolerance * np.abs(actual)) & (diff > min_abs) & ~np.isnan(recorded) & (actual > 0)


class AreaMatchesGeometry(RowRule):
    """A recorded area (field × unit_m2) agrees with the geometry's area within a relative tolerance."""

    def check(self, batch: LayerBatch, ctx: RuleContext) -> None:
        name = self.param("field")
        unit = float(self.param("unit_m2", 1.0))
        tolerance = float(self.param("tolerance", 0.01))
        recorded = batch.values[name].astype(float) * unit
        present = ~shapely.is_missing(batch.geometry)
        actual = np.full(len(batch), np.nan)
        actual[present] = shapely.area(batch.geometry[present])
        bad = _differs(recorded, actual, tolerance, float(self.param("min_m2", 0.0)))
        label = "ha" if unit == 10_000 else "m²"
        self.fail(batch, bad, lambda i: (
            f"{name} = {display(recorded[i] / unit)} {label} but the geometry measures "
            f"{actual[i] / unit:,.{2 if unit > 1 else 1}f} {label} in EPSG:9215 "
            f"({(recorded[i] - actual[i]) / actual[i]:+.1%}; tolerance {tolerance:.0%})"), name)


class FieldsAgree(RowRule):
    """Two area fields agree within a relative tolerance (e.g. measured and legal parcel area)."""

    def check(self, batch: LayerBatch, ctx: RuleContext) -> None:
        name, against = self.param("field"), self.param("against")
        tolerance = float(self.param("tolerance", 0.05))
        a = batch.values[name].astype(float)
        b = batch.values[against].astype(float)
        bad = _differs(a, b, tolerance, 0.0) & (b > 0)
        self.fail(batch, bad, lambda i: (
            f"{name} = {display(a[i])} differs from {against} = {display(b[i])} by "
            f"{(a[i] - b[i]) / b[i]:+.1%} (tolerance {tolerance:.0%})"), name)
