"""Parcel report: a parcel (by ID, by commune/sheet/parcel, by a point in it) or any polygon, with every public
layer that intersects it and the areas involved (EPSG:9215, planar m²), and the open conflicts naming it.

Reads the ``api.*`` views only, so the attributes are the public ones whatever role runs it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import shapely
import sqlalchemy as sa

from gisplatform.analysis import rules as R
from gisplatform.layers import load_layers

MAX_PARCELS = 2000  # per report; a larger polygon answers with the first ones and says so
KEYS = {**R.KEYS, "admin_units": "{t}.code || ' ' || {t}.name", "water_sources": "{t}.source_code || ' ' || {t}.name"}
CURRENT = {"admin_units": "{t}.valid_to IS NULL"}
# Interiors meet: a neighbour touching the subject along an edge is not "intersecting" it (0 m² in common).
_INSIDE = "{f}.geom && s.g AND ST_Relate({f}.geom, s.g, 'T********')"


class NotFound(LookupError):
    """No parcel matches the query."""


@dataclass
class Subject:
    kind: str  # parcel_id | sheet_parcel | point | polygon
    parcel_id: str | None = None
    commune_code: str | None = None
    map_sheet_no: int | None = None
    parcel_no: str | None = None
    geometry: shapely.Geometry | None = None  # EPSG:9215

    def describe(self) -> dict[str, Any]:
        out = {"type": self.kind}
        if self.kind == "parcel_id":
            out["parcel_id"] = self.parcel_id
        elif self.kind == "sheet_parcel":
            out.update(commune_code=self.commune_code, map_sheet_no=self.map_sheet_no, parcel_no=self.parcel_no)
        else:
            out["geometry_wkt_epsg9215"] = shapely.to_wkt(self.geometry, rounding_precision=3)
        return out


def _parcel_ids(connection: sa.Connection, subject: Subject) -> list[int]:
    if subject.kind == "parcel_id":
        sql, params = "parcel_id = :v", {"v": subject.parcel_id}
    elif subject.kind == "sheet_parcel":
        sql = ("(sheet_commune_code = :c OR commune_code = :c) AND map_sheet_no = :s AND parcel_no = :n")
        params = {"c": subject.commune_code, "s": subject.map_sheet_no, "n": subject.parcel_no}
    else:
        sql, params = "ST_Intersects(geom, ST_SetSRID(ST_GeomFromWKB(:g), 9215))", {"g": shapely.to_wkb(subject.geometry)}
    return connection.execute(sa.text(
        f"SELECT id FROM api.cadastral_parcels WHERE {sql} ORDER BY id LIMIT {MAX_PARCELS + 1}"), params).scalars().all()


def _layer_sql(name: str) -> str:
    where = CURRENT.get(name, "TRUE").format(t="f")
    return f"""SELECT coalesce(json_agg(json_build_object(
                 'id', f.id, 'key', {KEYS[name].format(t='f')},
                 'area_m2', round(ST_Area(ST_Intersection(f.geom, s.g))::numeric, 2),
                 'share_of_feature', CASE WHEN ST_Area(f.geom) > 0 THEN
                     round((ST_Area(ST_Intersection(f.geom, s.g)) / ST_Area(f.geom))::numeric, 4) END)
               ORDER BY f.id), '[]')::text
               FROM api."{name}" f, subject s WHERE {_INSIDE.format(f='f')} AND {where}"""


def parcel_report(connection: sa.Connection, subject: Subject) -> dict[str, Any]:
    polygon = subject.kind == "polygon"
    ids = [] if polygon else _parcel_ids(connection, subject)
    if not polygon and not ids:
        raise NotFound("no parcel matches " + json.dumps(subject.describe(), ensure_ascii=False))
    connection.execute(sa.text("DROP TABLE IF EXISTS pg_temp.subject"))  # an earlier report in this transaction
    if polygon:
        connection.execute(sa.text("CREATE TEMP TABLE subject ON COMMIT DROP AS "
                                   "SELECT ST_SetSRID(ST_GeomFromWKB(:g), 9215) AS g"),
                           {"g": shapely.to_wkb(subject.geometry)})
    else:
        connection.execute(sa.text("CREATE TEMP TABLE subject ON COMMIT DROP AS "
                                   "SELECT ST_Union(geom) AS g FROM api.cadastral_parcels WHERE id = ANY(:ids)"),
                           {"ids": ids[:MAX_PARCELS]})
    area = connection.execute(sa.text("SELECT ST_Area(g) FROM subject")).scalar()
    parcels = json.loads(connection.execute(sa.text(f"""
        SELECT coalesce(json_agg(to_jsonb(v) - 'geom' - 'geom_wgs84'
                                 || jsonb_build_object('overlap_m2', round(ST_Area(ST_Intersection(v.geom, s.g))::numeric, 2))
                                 ORDER BY v.id), '[]')::text
        FROM (SELECT v.* FROM api.cadastral_parcels v, subject s
              WHERE {_INSIDE.format(f='v')} AND (:any OR v.id = ANY(:ids))
              ORDER BY v.id LIMIT {MAX_PARCELS}) v, subject s"""), {"any": polygon, "ids": ids}).scalar())
    layers = load_layers()
    intersecting = []
    for name, layer in layers.items():
        if name == "cadastral_parcels" or name not in KEYS:
            continue
        features = json.loads(connection.execute(sa.text(_layer_sql(name))).scalar())
        if features:
            intersecting.append({"layer": name, "title": {"vi": layer.title.vi, "en": layer.title.en},
                                 "area_m2": round(sum(f["area_m2"] or 0 for f in features), 2),
                                 "features": features})
    conflicts = json.loads(connection.execute(sa.text("""
        SELECT coalesce(json_agg(json_build_object('rule', c.rule, 'check', c.check_name, 'severity', c.severity,
                 'title', json_build_object('vi', c.rule_title, 'en', c.rule_title_en),
                 'feature_a', c.feature_a, 'layer_a', c.layer_a, 'feature_b', c.feature_b, 'layer_b', c.layer_b,
                 'overlap_area_m2', round(c.overlap_area_m2::numeric, 2), 'first_seen', c.first_seen)
               ORDER BY c.rule, c.id), '[]')::text
        FROM api.conflicts c, subject s WHERE """ + _INSIDE.format(f="c"))).scalar())
    return {"query": subject.describe(), "area_m2": round(area or 0.0, 2), "parcels": parcels,
            "parcels_truncated": len(parcels) >= MAX_PARCELS, "layers": intersecting, "conflicts": conflicts,
            "rasters": _raster_statistics(connection)}


def _raster_statistics(connection: sa.Connection) -> list[dict[str, Any]]:
    """What the published raster layers say of the subject: its elevation and slope, its planning zone(s).

    "Which planning zone is my parcel in" is the question citizens ask most (issue 7); the answer is the
    planning map's class shares over the subject and the dominant class (gisplatform.raster.zonal).
    """
    from gisplatform.layers import load_raster_layers
    from gisplatform.raster import store
    from gisplatform.raster.zonal import ZonalError, zonal_statistics

    wkb = connection.execute(sa.text("SELECT ST_AsBinary(g) FROM subject")).scalar()
    if wkb is None:
        return []
    subject = shapely.from_wkb(bytes(wkb))
    found = []
    for name, layer in load_raster_layers().items():
        if not store.current_path(name).exists():
            continue  # never published
        try:
            stats = zonal_statistics(name, [subject])[0]
        except ZonalError:
            continue  # e.g. not a polygon (an empty union): the vector part of the report still stands
        if stats.get("method") != "outside_raster":
            found.append({"layer": name, "title": {"vi": layer.title.vi, "en": layer.title.en}, **stats})
    return found
