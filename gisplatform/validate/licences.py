"""Licence dates and status (domain rule 9): consistent dates, term within the legal maximum, status current."""
from __future__ import annotations

import numpy as np

from gisplatform.transform.batch import LayerBatch
from gisplatform.validate.base import RowRule, RuleContext

ACTIVE = "con_hieu_luc"


class LicenceDates(RowRule):
    """Issue date before expiry, and a term no longer than the legal maximum."""

    def check(self, batch: LayerBatch, ctx: RuleContext) -> None:
        issued = batch.values["issue_date"]
        expiry = batch.values.get("expiry_date")
        if expiry is not None:
            bad = ~np.isnat(issued) & ~np.isnat(expiry) & (issued > expiry)
            self.fail(batch, bad, lambda i: f"issue_date {issued[i]} is after expiry_date {expiry[i]}", "expiry_date")
        term = batch.values.get("term_years")
        limit = self.param("max_term_years")
        if term is not None and limit is not None:
            self.fail(batch, term > float(limit), lambda i: (
                f"term_years = {term[i]:g} exceeds the legal maximum of {limit} years"), "term_years")


class ExpiredButActive(RowRule):
    """A licence past its expiry date still marked 'còn hiệu lực' (in force)."""

    def check(self, batch: LayerBatch, ctx: RuleContext) -> None:
        expiry = batch.values["expiry_date"]
        status = batch.values["status"]
        bad = ~np.isnat(expiry) & (expiry < ctx.today) & (status == ACTIVE)
        self.fail(batch, bad, lambda i: (
            f"expired on {expiry[i]} but status is 'còn hiệu lực' (in force): update the status "
            "(gia hạn / thu hồi / đóng cửa mỏ) or the expiry date"), "status")
