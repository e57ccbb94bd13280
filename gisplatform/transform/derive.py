"""Derived fields: computed from other fields, declared in layers/*.yml as ``derive: function(arg, ...)``.

Derivations are how personal data stays out of public columns: ``organisation_only`` keeps a land user's name
only when the user is an organisation, ``masked_holder`` replaces an individual licence holder's name.
"""
from __future__ import annotations

import re
from typing import Callable

import numpy as np


# TT 08/2024 land-user types that are natural persons or households: their names are personal data.
INDIVIDUAL_USER_TYPES = frozenset({"CNV", "GDC"})
MASKED_HOLDER = {"ca_nhan": "Cá nhân (ẩn tên)", "ho_kinh_doanh": "Hộ kinh doanh (ẩn tên)"}

_CALL = re.compile(r"^\s*(\w+)\((.*)\)\s*$")


def first_code(batch, ctx, codes_field: str) -> np.ndarray:
    codes = batch.values[codes_field]
    return np.array([c.split("+")[0] if c else None for c in codes], dtype=object)


def organisation_only(batch, ctx, name_field: str, type_field: str) -> np.ndarray:
    names, types = batch.values[name_field], batch.values[type_field]
    # An unknown user type counts as an individual: when in doubt, publish nothing.
    return np.array([n if t is not None and t not in INDIVIDUAL_USER_TYPES else None
                     for n, t in zip(names, types)], dtype=object)


def masked_holder(batch, ctx, name_field: str, type_field: str) -> np.ndarray:
    names, types = batch.values[name_field], batch.values[type_field]
    return np.array([n if t == "to_chuc" else MASKED_HOLDER.get(t, "Ẩn tên") if n else None
                     for n, t in zip(names, types)], dtype=object)


def code_attribute(batch, ctx, code_field: str, table: str, column: str) -> np.ndarray:
    """An attribute of the code valid on the record date (the latest version when none is)."""
    codes = batch.values[code_field]
    code_table = ctx.code_tables[table]
    at_date = code_table.attribute(codes, batch.record_dates, column)
    latest = code_table.attribute(codes, None, column)
    return np.where(np.array([v is not None for v in at_date]), at_date, latest)


DERIVATIONS: dict[str, Callable[..., np.ndarray]] = {
    "first_code": first_code,
    "organisation_only": organisation_only,
    "masked_holder": masked_holder,
    "code_attribute": code_attribute,
}


def parse(expression: str) -> tuple[str, list[str]]:
    match = _CALL.match(expression)
    if not match or match.group(1) not in DERIVATIONS:
        raise ValueError(f"derive: {expression!r} is not one of {', '.join(f'{k}(...)' for k in DERIVATIONS)}")
    return match.group(1), [a.strip() for a in match.group(2).split(",") if a.strip()]


def derive_fields(batch, ctx) -> None:
    """Fill every derived field of the batch's layer (in declaration order, so derivations may chain)."""
    for f in batch.layer.fields:
        if f.derive:
            name, args = parse(f.derive)
            batch.values[f.name] = DERIVATIONS[name](batch, ctx, *args)
