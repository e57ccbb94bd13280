"""The regulatory conflict rules (shared/domain §5): definitions from ``layers/rules/conflicts.yml``, SQL here.

Every rule is defined once. Its id, severity, bilingual title and description, legal basis and parameters live
in the YAML file; this module holds one SQL query per *check* of a rule (a rule such as R02 has a corridor and
an intake-zone check with their own severities). Queries read the ``api.*`` views, which hold exactly the live,
public features: the same SQL serves the stored recompute (as the platform role) and the licence pre-check of
a proposed area (as the read-only API role), and a conflict can only ever name public keys.

Every check query returns the columns of :data:`COLUMNS`. Feature sources come from a :class:`Sources`: the whole
live layer, only the features an ETL run changed (incremental recompute), or a proposed licence (pre-check).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Callable

from gisplatform.config import load_yaml, settings
from gisplatform.layers import Text

COLUMNS = ("rule_id", "check_name", "severity", "layer_a", "fid_a", "key_a", "layer_b", "fid_b", "key_b",
           "detail", "area_m2", "geom")
SEVERITIES = ("error", "warning")
LICENCES, PARCELS, WATER, CORRIDORS, UNITS = (
    "mining_licences", "cadastral_parcels", "water_licences", "water_protection_corridors", "admin_units")

# Public keys by which a conflict names a feature (natural keys; never a personal field).
KEYS = {
    LICENCES: "{t}.licence_no",
    PARCELS: "{t}.sheet_commune_code || '/' || {t}.map_sheet_no || '/' || {t}.parcel_no",
    WATER: "{t}.licence_no || '/' || {t}.point_no",
    CORRIDORS: "{t}.source_code",
}


class RuleConfigError(ValueError):
    """layers/rules/conflicts.yml cannot be used; the message names the rule and key to fix."""


@dataclass(frozen=True)
class RuleDef:
    id: str
    title: Text
    description: Text
    basis: str
    severity: dict[str, str]  # check -> severity ("*" for every check)
    params: dict[str, Any]

    def severity_of(self, check: str) -> str:
        return self.severity.get(check) or self.severity["*"]


@dataclass(frozen=True)
class Check:
    """One query of a rule: the layers whose features it names, the other layers it reads, its SQL."""

    rule: str
    name: str
    layers: tuple[str, ...]
    context: tuple[str, ...]
    build: Callable[["Query"], str]


def config_path() -> Path:
    return settings().layers_dir / "rules" / "conflicts.yml"


def _text(raw: Any, where: str) -> Text:
    if not isinstance(raw, dict) or not raw.get("vi") or not raw.get("en"):
        raise RuleConfigError(f"{where}: needs {{vi: ..., en: ...}}")
    return Text(str(raw["vi"]).strip(), str(raw["en"]).strip())


@cache
def load_rules(path: Path | None = None) -> tuple[dict[str, RuleDef], dict[str, Any]]:
    """(rule id -> definition, defaults) from the YAML file."""
    path = path or config_path()
    raw = load_yaml(path.read_text(encoding="utf-8"))
    defaults = dict(raw.get("defaults") or {})
    rules = {}
    for rule_id, body in (raw.get("rules") or {}).items():
        where = f"{path}: rules.{rule_id}"
        severity = body.get("severity")
        severity = {"*": severity} if isinstance(severity, str) else dict(severity or {})
        if not severity or set(severity.values()) - set(SEVERITIES):
            raise RuleConfigError(f"{where}.severity must be error or warning (or one per check)")
        rules[rule_id] = RuleDef(rule_id, _text(body.get("title"), f"{where}.title"),
                                 _text(body.get("description"), f"{where}.description"), str(body.get("basis", "")),
                                 severity, {**defaults, **(body.get("params") or {})})
    missing = set(CHECK_BUILDERS) - set(rules)
    if missing:
        raise RuleConfigError(f"{path}: no definition for rules {sorted(missing)}")
    return rules, defaults


# ------------------------------------------------------------------------------------------ sources
@dataclass
class Sources:
    """Where each layer's features come from in a check query.

    changed: layer -> feature ids an ETL run touched; that layer's side "a" reads only those (incremental).
    candidate: SQL of a one-row proposed licence that replaces side "a" of the mining licences (pre-check).
    """

    changed: dict[str, list[int]] = field(default_factory=dict)
    candidate: str | None = None

    def __call__(self, layer: str, side: str = "a") -> str:
        if layer == LICENCES and self.candidate and side == "a":
            return self.candidate
        if layer in self.changed and side == "a":
            return f'(SELECT * FROM api."{layer}" WHERE id = ANY(:changed_{layer}))'
        return f'api."{layer}"'


class Query:
    """Builds one check's SQL: binds parameters under unique names, renders the fixed leading columns."""

    def __init__(self, rule: RuleDef, check: str, sources: Sources, params: dict[str, Any]):
        self.rule, self.check, self.src, self.params = rule, check, sources, params

    def bind(self, value: Any, cast: str | None = None) -> str:
        name = f"b{len(self.params)}"
        self.params[name] = value
        return f"CAST(:{name} AS {cast})" if cast else f":{name}"

    def p(self, name: str, cast: str | None = None) -> str:
        return self.bind(self.rule.params[name], cast)

    def head(self) -> str:
        severity = self.rule.severity_of(self.check)
        return f"'{self.rule.id}'::text, '{self.check}'::text, '{severity}'::text"

    def active(self, alias: str) -> str:
        return f"{alias}.status = ANY({self.p('active_statuses', 'text[]')})"


def key(layer: str, alias: str) -> str:
    return KEYS[layer].format(t=alias)


def _overlap(a: str, b: str) -> str:
    """Polygonal part of the intersection, as a MultiPolygon (lines and points of a touching edge dropped)."""
    return f"ST_Multi(ST_CollectionExtract(ST_Intersection({a}, {b}), 3))"


def _licence_on_parcels(q: Query, codes: list[str], *, without: bool = False, min_param: str = "min_overlap_m2"
                        ) -> str:
    """Active licences against parcels that carry (or, with ``without``, lack) one of ``codes``."""
    match = f"string_to_array(p.land_use_codes, '+') && {q.bind(codes, 'text[]')}"
    if without:
        match = f"NOT coalesce({match}, false)"
    return f"""
SELECT {q.head()}, '{LICENCES}', l.id, {key(LICENCES, 'l')}, '{PARCELS}', p.id, {key(PARCELS, 'p')},
       p.land_use_codes, ST_Area(x.g), x.g
FROM {q.src(LICENCES)} l
JOIN {q.src(PARCELS)} p ON ST_Intersects(l.geom, p.geom) AND {match}
CROSS JOIN LATERAL (SELECT {_overlap('l.geom', 'p.geom')} AS g) x
WHERE {q.active('l')} AND ST_Area(x.g) >= {q.p(min_param)}"""


def _codes_check(q: Query) -> str:
    return _licence_on_parcels(q, list(q.rule.params["codes"]))


def _r02_corridor(q: Query) -> str:
    return f"""
SELECT {q.head()}, '{LICENCES}', l.id, {key(LICENCES, 'l')}, '{CORRIDORS}', c.id, {key(CORRIDORS, 'c')},
       c.source_name || ' (' || c.width_m || ' m)', ST_Area(x.g), x.g
FROM {q.src(LICENCES)} l
JOIN {q.src(CORRIDORS)} c ON ST_Intersects(l.geom, c.geom)
CROSS JOIN LATERAL (SELECT {_overlap('l.geom', 'c.geom')} AS g) x
WHERE {q.active('l')} AND ST_Area(x.g) >= {q.p('min_overlap_m2')}"""


def _r02_intake(q: Query) -> str:
    radii = {k: float(v) for k, v in q.rule.params["radius_m"].items()}
    radius = "CASE w.water_type " + " ".join(
        f"WHEN {q.bind(kind)} THEN {q.bind(r, 'float8')}" for kind, r in radii.items()) + " END"
    return f"""
SELECT {q.head()}, '{LICENCES}', l.id, {key(LICENCES, 'l')}, '{WATER}', w.id, {key(WATER, 'w')},
       w.water_type || ' ' || x.r || ' m', ST_Area(x.g), x.g
FROM {q.src(LICENCES)} l
JOIN {q.src(WATER)} w ON ST_DWithin(l.geom, w.geom, {q.bind(max(radii.values()), 'float8')})
     AND w.purpose = ANY({q.p('intake_purposes', 'text[]')})
CROSS JOIN LATERAL (SELECT {radius} AS r) rr
CROSS JOIN LATERAL (SELECT rr.r AS r, {_overlap('l.geom', 'ST_Buffer(w.geom, rr.r, 32)')} AS g) x
WHERE {q.active('l')} AND rr.r IS NOT NULL AND ST_DWithin(l.geom, w.geom, rr.r)
      AND ST_Area(x.g) >= {q.p('min_overlap_m2')}"""


def _r06_overlapping_licences(q: Query) -> str:
    # Each pair once, the smaller id first, whichever side was restricted (incremental) or proposed (pre-check).
    return f"""
SELECT DISTINCT ON (s.fid_a, s.fid_b) s.* FROM (
  SELECT {q.head()}, '{LICENCES}' AS layer_a, least(a.id, b.id) AS fid_a,
         CASE WHEN a.id < b.id THEN a.licence_no ELSE b.licence_no END AS key_a,
         '{LICENCES}' AS layer_b, greatest(a.id, b.id) AS fid_b,
         CASE WHEN a.id < b.id THEN b.licence_no ELSE a.licence_no END AS key_b,
         NULL::text AS detail, ST_Area(x.g) AS area_m2, x.g AS geom
  FROM {q.src(LICENCES, 'a')} a
  JOIN {q.src(LICENCES, 'b')} b ON a.id <> b.id AND ST_Intersects(a.geom, b.geom)
  CROSS JOIN LATERAL (SELECT {_overlap('a.geom', 'b.geom')} AS g) x
  WHERE {q.active('a')} AND {q.active('b')} AND ST_Area(x.g) >= {q.p('min_overlap_m2')}) s
ORDER BY s.fid_a, s.fid_b"""


def _r08_not_mining_land(q: Query) -> str:
    return _licence_on_parcels(q, list(q.rule.params["codes"]), without=True, min_param="min_overlap_m2")


def _r09_dates(q: Query) -> str:
    in_force = q.p("in_force_statuses", "text[]")
    max_term = q.p("max_term_years", "float8")
    reasons = [
        (f"l.expiry_date < CURRENT_DATE AND l.status = ANY({in_force})",
         "'expired ' || l.expiry_date || ', status ' || l.status"),
        ("l.issue_date > l.expiry_date", "'issued ' || l.issue_date || ' after expiry ' || l.expiry_date"),
        (f"l.term_years > {max_term}", f"'term ' || l.term_years || ' > ' || {max_term} || ' years'"),
    ]
    detail = "concat_ws('; ', " + ", ".join(f"CASE WHEN {c} THEN {t} END" for c, t in reasons) + ")"
    return f"""
SELECT {q.head()}, '{LICENCES}', l.id, {key(LICENCES, 'l')}, NULL, NULL::bigint, NULL, {detail}, NULL::float8, l.geom
FROM {q.src(LICENCES)} l
WHERE {' OR '.join(f'coalesce({c}, false)' for c, _ in reasons)}"""


def _r10_province(layer: str) -> Callable[[Query], str]:
    def build(q: Query) -> str:
        return f"""
WITH province AS (SELECT ST_Buffer(ST_Union(geom), {q.p('province_tolerance_m', 'float8')}) AS g
                  FROM api."{UNITS}" WHERE valid_to IS NULL)
SELECT {q.head()}, '{layer}', f.id, {key(layer, 'f')}, NULL, NULL::bigint, NULL, 'outside the province',
       NULL::float8, f.geom
FROM {q.src(layer)} f, province
WHERE province.g IS NOT NULL AND NOT ST_CoveredBy(f.geom, province.g)"""
    return build


def _r10_commune(layer: str) -> Callable[[Query], str]:
    def build(q: Query) -> str:
        # Only codes the boundaries know (an unknown code is the ETL's commune check); any version of the unit.
        return f"""
SELECT {q.head()}, '{layer}', f.id, {key(layer, 'f')}, NULL, NULL::bigint, NULL,
       'outside commune ' || f.commune_code, NULL::float8, f.geom
FROM {q.src(layer)} f
WHERE f.commune_code IS NOT NULL
  AND EXISTS (SELECT 1 FROM api."{UNITS}" u WHERE u.code = f.commune_code)
  AND NOT EXISTS (SELECT 1 FROM api."{UNITS}" u WHERE u.code = f.commune_code AND ST_Intersects(u.geom, f.geom))"""
    return build


def _r10_invalid(q: Query) -> str:
    return f"""
SELECT {q.head()}, '{LICENCES}', l.id, {key(LICENCES, 'l')}, NULL, NULL::bigint, NULL, ST_IsValidReason(l.geom),
       NULL::float8, l.geom
FROM {q.src(LICENCES)} l WHERE NOT ST_IsValid(l.geom)"""


def _r11_stated_area(q: Query) -> str:
    tolerance = q.p("tolerance", "float8")
    return f"""
SELECT {q.head()}, '{LICENCES}', l.id, {key(LICENCES, 'l')}, NULL, NULL::bigint, NULL,
       'stated ' || l.area_ha || ' ha, polygon ' || round((ST_Area(l.geom) / 10000)::numeric, 4) || ' ha',
       ST_Area(l.geom), l.geom
FROM {q.src(LICENCES)} l
WHERE l.area_ha IS NOT NULL AND abs(l.area_ha * 10000 - ST_Area(l.geom)) > {tolerance} * ST_Area(l.geom)"""


def _r12_water_in_mine(q: Query) -> str:
    return f"""
SELECT {q.head()}, '{WATER}', w.id, {key(WATER, 'w')}, '{LICENCES}', l.id, {key(LICENCES, 'l')}, w.water_type,
       NULL::float8, w.geom
FROM {q.src(WATER)} w JOIN {q.src(LICENCES)} l ON ST_Intersects(l.geom, w.geom)
WHERE {q.active('l')}"""


def _r13_legal_area(q: Query) -> str:
    return f"""
SELECT {q.head()}, '{PARCELS}', p.id, {key(PARCELS, 'p')}, NULL, NULL::bigint, NULL,
       'area ' || p.area_m2 || ' m², legal ' || p.legal_area_m2 || ' m²', NULL::float8, p.geom
FROM {q.src(PARCELS)} p
WHERE p.legal_area_m2 IS NOT NULL AND abs(p.area_m2 - p.legal_area_m2) > {q.p('legal_tolerance', 'float8')} * p.legal_area_m2"""


def _r13_geometry_area(q: Query) -> str:
    return f"""
SELECT {q.head()}, '{PARCELS}', p.id, {key(PARCELS, 'p')}, NULL, NULL::bigint, NULL,
       'area ' || p.area_m2 || ' m², geometry ' || round(ST_Area(p.geom)::numeric, 1) || ' m²', NULL::float8, p.geom
FROM {q.src(PARCELS)} p
WHERE abs(p.area_m2 - ST_Area(p.geom)) > {q.p('geometry_tolerance', 'float8')} * ST_Area(p.geom)"""


# rule id -> its checks: (check name, layers named, other layers read, SQL builder)
CHECK_BUILDERS: dict[str, list[tuple[str, tuple[str, ...], tuple[str, ...], Callable[[Query], str]]]] = {
    "R01": [("forest", (LICENCES, PARCELS), (), _codes_check)],
    "R02": [("corridor", (LICENCES, CORRIDORS), (), _r02_corridor),
            ("intake_zone", (LICENCES, WATER), (), _r02_intake)],
    "R03": [("heritage_religious", (LICENCES, PARCELS), (), _codes_check)],
    "R04": [("defence_security", (LICENCES, PARCELS), (), _codes_check)],
    "R05": [("transport_irrigation", (LICENCES, PARCELS), (), _codes_check)],
    "R06": [("licence_overlap", (LICENCES,), (), _r06_overlapping_licences)],
    "R07": [("residential", (LICENCES, PARCELS), (), _codes_check)],
    "R08": [("not_mining_land", (LICENCES, PARCELS), (), _r08_not_mining_land)],
    "R09": [("dates", (LICENCES,), (), _r09_dates)],
    "R10": [("licence_outside_province", (LICENCES,), (UNITS,), _r10_province(LICENCES)),
            ("licence_outside_commune", (LICENCES,), (UNITS,), _r10_commune(LICENCES)),
            ("intake_outside_province", (WATER,), (UNITS,), _r10_province(WATER)),
            ("intake_outside_commune", (WATER,), (UNITS,), _r10_commune(WATER)),
            ("invalid_geometry", (LICENCES,), (), _r10_invalid)],
    "R11": [("stated_area", (LICENCES,), (), _r11_stated_area)],
    "R12": [("water_in_mine", (WATER, LICENCES), (), _r12_water_in_mine)],
    "R13": [("legal_area", (PARCELS,), (), _r13_legal_area),
            ("geometry_area", (PARCELS,), (), _r13_geometry_area)],
}


def checks(rule_ids: list[str] | None = None) -> list[Check]:
    rules, _ = load_rules()
    wanted = rule_ids or list(CHECK_BUILDERS)
    unknown = set(wanted) - set(CHECK_BUILDERS)
    if unknown:
        raise RuleConfigError(f"unknown rules {sorted(unknown)}; rules: {', '.join(CHECK_BUILDERS)}")
    return [Check(rule_id, name, layers, context, build)
            for rule_id in wanted for name, layers, context, build in CHECK_BUILDERS[rule_id]]


def render(check: Check, sources: Sources, params: dict[str, Any]) -> str:
    """The SQL of one check (its parameters are added to ``params``)."""
    rules, _ = load_rules()
    return check.build(Query(rules[check.rule], check.name, sources, params))


def layers_read() -> set[str]:
    """Every layer some rule reads: an ETL run of any other layer leaves the conflicts as they are."""
    return {layer for c in checks() for layer in c.layers + c.context}
