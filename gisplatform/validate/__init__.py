"""Validation rules, registered by name like pygeoapi's plugins (a rule is a dotted class path).

A layer lists the rules it wants, with a severity and parameters (layers/*.yml). Two kinds:

* row rules look at one batch at a time in Python, vectorised (geometry, codes, areas, IDs);
* set rules need every row of the run at once (duplicate keys, overlaps) and run as SQL on the staging table.

A failing ``error`` rule rejects the row into the quarantine; a ``warning`` flags it; a rule with ``repair: true``
fixes what is safe to fix and records the repair.
"""
from __future__ import annotations

import importlib
from functools import cache

from gisplatform.layers import Layer, LayerDefinitionError, Rule
from gisplatform.transform.batch import LayerBatch
from gisplatform.validate.base import RowRule, RuleContext, SetRule

RULES: dict[str, str] = {
    "geometry_present": "gisplatform.validate.geometry.GeometryPresent",
    "geometry_valid": "gisplatform.validate.geometry.GeometryValid",
    "inside_province": "gisplatform.validate.geometry.InsideProvince",
    "required_fields": "gisplatform.validate.fields.RequiredFields",
    "field_values": "gisplatform.validate.fields.FieldValues",
    "codes_valid_at_date": "gisplatform.validate.codes.CodesValidAtDate",
    "commune_valid_at_date": "gisplatform.validate.codes.CommuneValidAtDate",
    "area_matches_geometry": "gisplatform.validate.areas.AreaMatchesGeometry",
    "stated_area_matches": "gisplatform.validate.areas.AreaMatchesGeometry",
    "legal_area_matches": "gisplatform.validate.areas.FieldsAgree",
    "parcel_id_geohash": "gisplatform.validate.parcel_id.ParcelIdGeohash",
    "licence_dates": "gisplatform.validate.licences.LicenceDates",
    "licence_expired_but_active": "gisplatform.validate.licences.ExpiredButActive",
    "duplicate_natural_key": "gisplatform.validate.sets.DuplicateNaturalKey",
    "overlaps": "gisplatform.validate.sets.Overlaps",
}

__all__ = ["RULES", "RowRule", "RuleContext", "SetRule", "rules_for", "run_row_rules"]


@cache
def rule_class(name: str) -> type:
    try:
        dotted = RULES[name]
    except KeyError:
        raise LayerDefinitionError(f"unknown rule {name!r}; known rules: {', '.join(sorted(RULES))}") from None
    module, _, cls = dotted.rpartition(".")
    return getattr(importlib.import_module(module), cls)


def rules_for(layer: Layer) -> tuple[list[RowRule], list[SetRule]]:
    """Instantiate the layer's rules (raises LayerDefinitionError naming the file for an unknown rule)."""
    row_rules, set_rules = [], []
    for rule in layer.rules:
        try:
            instance = rule_class(rule.rule)(rule, layer)
        except LayerDefinitionError as exc:
            raise LayerDefinitionError(f"{layer.path}: {exc}") from None
        (set_rules if isinstance(instance, SetRule) else row_rules).append(instance)
    return row_rules, set_rules


def run_row_rules(batch: LayerBatch, rules: list[RowRule], ctx: RuleContext) -> None:
    for rule in rules:
        rule.check(batch, ctx)


def describe(rule: Rule) -> str:
    cls = rule_class(rule.rule)
    return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else rule.rule
