"""Licence pre-check: the conflicts a proposed mining area would raise, before the licence is issued.

The proposed area stands in for one mining licence (id 0, status "in force") in every check that names mining
licences (:mod:`gisplatform.analysis.rules`), against the live public data. Nothing is written.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import shapely
import sqlalchemy as sa

from gisplatform.analysis import rules as R

PROPOSED = "(đề xuất / proposed)"
R_SRID = 9215


@dataclass
class Proposal:
    geometry: shapely.Geometry  # EPSG:9215
    licence_no: str | None = None
    area_ha: float | None = None  # as stated on the application, for R11
    commune_code: str | None = None
    issue_date: dt.date | None = None
    expiry_date: dt.date | None = None
    term_years: float | None = None


def _candidate_sql(params: dict[str, Any], proposal: Proposal, geometry: shapely.Geometry) -> str:
    params.update(cand_no=proposal.licence_no or PROPOSED, cand_wkb=shapely.to_wkb(geometry),
                  cand_area=proposal.area_ha, cand_commune=proposal.commune_code, cand_issue=proposal.issue_date,
                  cand_expiry=proposal.expiry_date, cand_term=proposal.term_years)
    return ("(SELECT 0::bigint AS id, CAST(:cand_no AS text) AS licence_no, 'con_hieu_luc'::text AS status, "
            "CAST(:cand_issue AS date) AS issue_date, CAST(:cand_expiry AS date) AS expiry_date, "
            "CAST(:cand_term AS float8) AS term_years, CAST(:cand_area AS float8) AS area_ha, "
            "CAST(:cand_commune AS text) AS commune_code, "
            f"ST_Multi(ST_SetSRID(ST_GeomFromWKB(:cand_wkb), {R_SRID})) AS geom)")


def _invalid(proposal: Proposal, crossings: list[str]) -> list[dict]:
    """R10's corner-table check, from the table itself (the database only ever sees the repaired area)."""
    reasons = crossings or ([shapely.is_valid_reason(proposal.geometry)] if not proposal.geometry.is_valid else [])
    if not reasons:
        return []
    rules, _ = R.load_rules()
    rule = rules["R10"]
    return [_row(rule, "invalid_geometry", R.LICENCES, 0, proposal.licence_no or PROPOSED, None, None, None,
                 "; ".join(reasons), None, None)]


def _row(rule: R.RuleDef, check: str, layer_a, fid_a, key_a, layer_b, fid_b, key_b, detail, area, geometry):
    return {"rule": rule.id, "check": check, "severity": rule.severity_of(check),
            "title": {"vi": rule.title.vi, "en": rule.title.en},
            "feature_a": {"layer": layer_a, "id": fid_a, "key": key_a},
            "feature_b": {"layer": layer_b, "id": fid_b, "key": key_b} if layer_b else None,
            "detail": detail, "overlap_area_m2": None if area is None else round(area, 2),
            "overlap": geometry}


def precheck(connection: sa.Connection, proposal: Proposal, crossings: list[str] | None = None) -> dict:
    """The conflicts of a proposed licence, worst first; overlaps as GeoJSON in CRS84."""
    rules, _ = R.load_rules()
    geometry = shapely.make_valid(proposal.geometry) if not proposal.geometry.is_valid else proposal.geometry
    if geometry.geom_type not in ("Polygon", "MultiPolygon"):  # a repaired bow-tie: keep its polygonal parts
        geometry = shapely.multipolygons([p for p in shapely.get_parts(geometry) if p.geom_type == "Polygon"])
    found = _invalid(proposal, crossings or [])
    for check in R.checks():
        if R.LICENCES not in check.layers or check.name == "invalid_geometry":
            continue
        params: dict[str, Any] = {}
        sources = R.Sources(candidate=_candidate_sql(params, proposal, geometry))
        sql = R.render(check, sources, params)
        rows = connection.execute(sa.text(
            f"SELECT s.rule_id, s.check_name, s.layer_a, s.fid_a, s.key_a, s.layer_b, s.fid_b, s.key_b, s.detail, "
            f"s.area_m2, ST_AsGeoJSON(ST_Transform(s.geom, 4326), 7)::json FROM ({sql}) AS s({', '.join(R.COLUMNS)})"),
            params).all()
        for r in rows:
            overlap = r[10] if r[1] not in ("dates", "stated_area", "licence_outside_province",
                                            "licence_outside_commune") else None
            found.append(_row(rules[r[0]], r[1], *r[2:10], overlap))
    found.sort(key=lambda c: (c["severity"] != "error", c["rule"], c["check"], str(c["feature_b"])))
    return {
        "licence_no": proposal.licence_no or PROPOSED,
        "area_m2": round(geometry.area, 2),
        "area_ha": round(geometry.area / 10_000, 4),
        "conflicts": found,
        "errors": sum(c["severity"] == "error" for c in found),
        "warnings": sum(c["severity"] == "warning" for c in found),
    }
