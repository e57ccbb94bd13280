"""Constructed features for the conflict rules: rows written straight into the layer tables, every value chosen.

Geometries are in EPSG:9215 near Lạng Sơn city. One commune (05977) covers 440–460 km E × 2 410–2 430 km N, a
second (05983) lies east of it; the reference licence ``GP-1`` is a 200 m × 200 m square (4 ha) at 450 km E,
2 420 km N.
"""
from __future__ import annotations

import datetime as dt

import pytest
import shapely
import sqlalchemy as sa

from gisplatform.analysis import conflicts

X0, Y0 = 450_000.0, 2_420_000.0
POINT_LAYERS = {"water_licences"}


def box(dx0: float, dy0: float, dx1: float, dy1: float) -> str:
    """WKT of a rectangle given in metres from the reference licence's south-west corner."""
    return shapely.box(X0 + dx0, Y0 + dy0, X0 + dx1, Y0 + dy1).wkt


def point(dx: float, dy: float) -> str:
    return shapely.Point(X0 + dx, Y0 + dy).wkt


class World:
    """Writes features into the (emptied) test database and runs the conflict checks on them."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def add(self, layer: str, wkt: str, **values) -> int:
        geom = "ST_GeomFromText(:wkt, 9215)" if layer in POINT_LAYERS else "ST_Multi(ST_GeomFromText(:wkt, 9215))"
        columns = ", ".join(f'"{c}"' for c in values)
        marks = ", ".join(f":{c}" for c in values)
        with self.engine.begin() as connection:
            return connection.execute(sa.text(
                f'INSERT INTO data."{layer}" ({columns}, geom, row_hash, version, version_start, run_id) '
                f"VALUES ({marks}, {geom}, 0, 1, now(), 0) RETURNING fid"), {**values, "wkt": wkt}).scalar_one()

    def licence(self, no: str = "GP-1", wkt: str | None = None, **values) -> int:
        row = dict(licence_no=no, issue_date=dt.date(2020, 1, 1), authority="UBND tỉnh Lạng Sơn",
                   holder_type="to_chuc", holder_name="Công ty CP Đá Hữu Lũng", holder_public="Công ty CP Đá Hữu Lũng",
                   mineral="da_voi", commune_code="05977", area_ha=4.0, term_years=20.0,
                   expiry_date=dt.date(2040, 1, 1), status="con_hieu_luc", corner_crs="EPSG:9215")
        row.update(values)
        return self.add("mining_licences", wkt or box(0, 0, 200, 200), **row)

    def parcel(self, no: str, wkt: str, codes: str = "CLN", **values) -> int:
        area = shapely.from_wkt(wkt).area
        row = dict(commune_code="05977", sheet_commune_code="05977", map_sheet_no=3, parcel_no=no, area_m2=area,
                   legal_area_m2=area, land_use_codes=codes, land_use_code=codes.split("+")[0], user_type="CNV",
                   user_name="Nguyễn Văn Thử")
        row.update(values)
        return self.add("cadastral_parcels", wkt, **row)

    def well(self, no: str, wkt: str, **values) -> int:
        row = dict(licence_no=no, point_no="G1", issue_date=dt.date(2021, 1, 1), holder_type="to_chuc",
                   holder_name="Công ty Cấp nước Lạng Sơn", commune_code="05977", water_type="nuoc_duoi_dat",
                   purpose="sinh_hoat", status="con_hieu_luc", point_crs="EPSG:9215")
        row.update(values)
        return self.add("water_licences", wkt, **row)

    def corridor(self, code: str, wkt: str, **values) -> int:
        row = dict(source_code=code, source_name="Sông Kỳ Cùng", water_class="song", width_m=5.0, derived=True)
        row.update(values)
        return self.add("water_protection_corridors", wkt, **row)

    def communes(self) -> None:
        for code, (x0, x1) in {"05977": (-10_000, 10_000), "05983": (10_000, 20_000)}.items():
            self.add("admin_units", box(x0, -10_000, x1, 10_000), code=code, name=f"Xã {code}", level="xa",
                     valid_from=dt.date(2025, 7, 1))

    def recompute(self, rules: list[str] | None = None) -> conflicts.Summary:
        return conflicts.recompute_all(self.engine, rules)

    def open(self, rule: str | None = None) -> set[tuple]:
        """(rule, check, feature a, feature b) of the open conflicts (of one rule)."""
        with self.engine.connect() as connection:
            rows = connection.execute(sa.text(
                "SELECT rule_id, check_name, key_a, key_b FROM analysis.conflicts WHERE resolved_at IS NULL "
                "AND (CAST(:r AS text) IS NULL OR rule_id = :r)"), {"r": rule}).all()
        return {tuple(r) for r in rows}


@pytest.fixture
def world(db) -> World:
    with db.begin() as connection:
        connection.execute(sa.text("TRUNCATE analysis.conflicts, analysis.runs RESTART IDENTITY"))
    return World(db)
