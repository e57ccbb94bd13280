"""Rules on attribute values: required fields present, values readable and inside their domain."""
from __future__ import annotations

import numpy as np

from gisplatform.transform.batch import LayerBatch, display
from gisplatform.validate.base import RowRule, RuleContext

WITHHELD = "(value withheld: personal field)"


def shown(field, value) -> str:
    """A value for a message, unless the field is personal: messages end up in reports and logs."""
    return WITHHELD if field.personal else repr(display(value))


class RequiredFields(RowRule):
    """Every required field has a value."""

    def check(self, batch: LayerBatch, ctx: RuleContext) -> None:
        for f in self.layer.source_fields:
            if not f.required:
                continue
            unreadable = batch.parse_failures.get(f.name, np.zeros(len(batch), dtype=bool))
            empty = batch.values.missing(f.name) & ~unreadable
            self.fail(batch, empty, f"required field {f.name} ({f.title.en} / {f.title.vi}) is empty", f.name)


class FieldValues(RowRule):
    """Values are readable as the field's type, inside its domain and its min/max."""

    def check(self, batch: LayerBatch, ctx: RuleContext) -> None:
        for f in self.layer.source_fields:
            failed = batch.parse_failures.get(f.name)
            if failed is not None and failed.any():
                raw = batch.raw_values.get(f.name)
                # unreadable values cannot be stored whatever the severity: always an error
                batch.issues.add_where(failed, self.name, "error", lambda i, f=f, raw=raw: (
                    f"{f.name}: {shown(f, raw[i].as_py()) if raw is not None else 'value'} is not a valid "
                    f"{f.type}{_hint(f)}"), f.name)
            if f.type in ("number", "integer") and (f.min is not None or f.max is not None):
                values = batch.values[f.name]
                low = values < f.min if f.min is not None else np.zeros(len(values), bool)
                high = values > f.max if f.max is not None else np.zeros(len(values), bool)
                self.fail(batch, low | high, lambda i, f=f, v=values: (
                    f"{f.name} = {shown(f, v[i])} is outside [{_fmt(f.min)}, {_fmt(f.max)}]"), f.name)


def _fmt(v) -> str:
    return "" if v is None else display(float(v))


def _hint(field) -> str:
    if field.domain:
        return f"; expected one of {', '.join(field.domain)}" + (
            " (or their Vietnamese/English labels)" if field.values else "")
    return {
        "date": "; expected a date such as 20/07/2017 or 2017-07-20",
        "number": "; expected a number such as 1234,5 or 1.234,5",
        "integer": "; expected a whole number",
        "boolean": "; expected có/không, x/blank, 1/0",
    }.get(field.type, "")
