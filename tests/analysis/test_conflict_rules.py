"""Every conflict rule of shared/domain §5 on constructed geometries: one case that must fire, one that must not."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from gisplatform.analysis import rules as R
from tests.analysis.conftest import box, point

P = "05977/3/"  # parcel keys: sheet commune / sheet / parcel no.


def test_every_rule_is_defined_once_with_bilingual_text_and_a_severity():
    rules, _ = R.load_rules()
    assert set(rules) == set(R.CHECK_BUILDERS) >= {f"R{i:02d}" for i in (1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 13)}
    for rule in rules.values():
        assert rule.title.vi and rule.title.en and rule.description.vi and rule.description.en
        for check in R.CHECK_BUILDERS[rule.id]:
            assert rule.severity_of(check[0]) in ("error", "warning")


@pytest.mark.parametrize("rule, codes", [("R01", "RPH"), ("R01", "RDD"), ("R03", "TON"), ("R03", "DDT"),
                                         ("R04", "CQP"), ("R05", "DGT"), ("R07", "ONT+CLN"), ("R07", "ODT")])
def test_mining_on_protected_land_use(world, rule, codes):
    world.licence()
    world.parcel("1", box(100, 100, 300, 300), codes)  # a quarter inside the licence: 1 ha
    world.parcel("2", box(100, 100, 300, 300), "RSX+LUC")  # production forest, rice: none of these rules
    world.parcel("3", box(1000, 1000, 1200, 1200), codes)  # the same land use far away
    world.recompute([rule])
    assert world.open(rule) == {(rule, R.CHECK_BUILDERS[rule][0][0], "GP-1", P + "1")}
    with world.engine.connect() as connection:
        area, severity = connection.execute(sa.text(
            "SELECT overlap_area_m2, severity FROM analysis.conflicts WHERE rule_id = :r"), {"r": rule}).one()
    assert area == pytest.approx(10_000, abs=0.01)
    assert severity == R.load_rules()[0][rule].severity_of(R.CHECK_BUILDERS[rule][0][0])


def test_revoked_licence_and_edge_contact_raise_nothing(world):
    world.licence("GP-REVOKED", status="thu_hoi")
    world.parcel("1", box(100, 100, 300, 300), "RPH")
    world.licence("GP-2", box(1000, 0, 1200, 200))
    world.parcel("2", box(1200, 0, 1400, 200), "RDD")  # shares an edge with GP-2 only
    world.recompute(["R01"])
    assert world.open() == set()


def test_r02_mining_in_a_water_corridor(world):
    world.licence()
    world.corridor("KC-01", box(190, -50, 210, 250))
    world.corridor("KC-02", box(220, -50, 240, 250))  # 20 m east of the licence
    world.recompute(["R02"])
    assert world.open() == {("R02", "corridor", "GP-1", "KC-01")}


def test_r02_mining_in_the_sanitary_zone_of_a_domestic_well(world):
    world.licence()
    world.well("NN-1", point(220, 100))  # 20 m from the licence: inside the 25 m well zone
    world.well("NN-2", point(230, 100))  # 30 m: outside
    world.well("NN-3", point(220, 150), purpose="tuoi")  # irrigation well: no protection zone
    world.recompute(["R02"])
    assert world.open() == {("R02", "intake_zone", "GP-1", "NN-1/G1")}
    with world.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT severity FROM analysis.conflicts")).scalar() == "warning"


def test_r06_overlapping_licences_once_per_pair(world):
    world.licence("GP-1")
    world.licence("GP-2", box(150, 150, 350, 350))  # overlaps GP-1
    world.licence("GP-3", box(200, 0, 400, 100))  # touches GP-1 along an edge, overlaps GP-2
    world.licence("GP-4", box(150, 150, 350, 350), status="tra_lai")  # returned: no longer covers land
    world.recompute(["R06"])
    assert world.open() == {("R06", "licence_overlap", "GP-1", "GP-2")}


def test_r08_land_inside_a_mine_not_coded_for_mining(world):
    world.licence()
    world.parcel("1", box(10, 10, 100, 100), "CLN")
    world.parcel("2", box(100, 10, 190, 100), "SKS")
    world.parcel("3", box(10, 100, 100, 190), "SKX+CLN")
    world.parcel("4", box(195, 10, 300, 100), "CLN")  # 5 m × 90 m inside: 450 m², above the 10 m² threshold
    world.parcel("5", box(199.95, 100, 300, 190), "CLN")  # 5 cm × 90 m inside: 4.5 m², below it
    world.recompute(["R08"])
    assert world.open() == {("R08", "not_mining_land", "GP-1", P + "1"), ("R08", "not_mining_land", "GP-1", P + "4")}


def test_r09_licence_dates(world):
    world.licence("GP-EXPIRED", expiry_date=dt.date(2020, 1, 1), issue_date=dt.date(2010, 1, 1), term_years=10)
    world.licence("GP-EXPIRED-CLOSED", expiry_date=dt.date(2020, 1, 1), issue_date=dt.date(2010, 1, 1),
                  term_years=10, status="dong_cua_mo")
    world.licence("GP-BACKWARDS", issue_date=dt.date(2041, 1, 1))
    world.licence("GP-LONG", term_years=35)
    world.licence("GP-OK")
    world.recompute(["R09"])
    assert {k[2] for k in world.open()} == {"GP-EXPIRED", "GP-BACKWARDS", "GP-LONG"}


def test_r10_outside_province_commune_and_invalid_corner_table(world):
    world.communes()
    world.licence("GP-OK")
    world.licence("GP-ABROAD", box(30_000, 0, 30_200, 200))  # east of both communes
    world.licence("GP-WRONG-COMMUNE", box(12_000, 0, 12_200, 200))  # in 05983, says 05977
    world.licence("GP-BOWTIE", "POLYGON((450000 2420000, 450200 2420200, 450200 2420000, 450000 2420200, "
                               "450000 2420000))", area_ha=None)
    world.well("NN-ABROAD", point(40_000, 0), commune_code="05983")
    world.well("NN-OK", point(15_000, 0), commune_code="05983")
    world.recompute(["R10"])
    assert world.open() == {("R10", "licence_outside_province", "GP-ABROAD", None),
                            ("R10", "licence_outside_commune", "GP-ABROAD", None),
                            ("R10", "licence_outside_commune", "GP-WRONG-COMMUNE", None),
                            ("R10", "invalid_geometry", "GP-BOWTIE", None),
                            ("R10", "intake_outside_province", "NN-ABROAD/G1", None),
                            ("R10", "intake_outside_commune", "NN-ABROAD/G1", None)}


def test_r11_stated_area_against_the_polygon(world):
    world.licence("GP-OK", area_ha=4.03)  # 0.75 % off
    world.licence("GP-OFF", box(1000, 0, 1200, 200), area_ha=4.1)  # 2.5 % off
    world.recompute(["R11"])
    assert world.open() == {("R11", "stated_area", "GP-OFF", None)}


def test_r12_well_inside_a_mine(world):
    world.licence()
    world.well("NN-IN", point(100, 100))
    world.well("NN-OUT", point(300, 100))
    world.recompute(["R12"])
    assert world.open() == {("R12", "water_in_mine", "NN-IN/G1", "GP-1")}


def test_r13_parcel_areas(world):
    world.parcel("1", box(0, 0, 30, 20), legal_area_m2=700.0)  # 600 m² measured: 14 % below legal
    world.parcel("2", box(30, 0, 60, 20), legal_area_m2=610.0)  # 1.6 %: within 5 %
    world.parcel("3", box(60, 0, 90, 20), area_m2=650.0, legal_area_m2=650.0)  # geometry 600 m²: 8 % off
    world.recompute(["R13"])
    assert world.open() == {("R13", "legal_area", P + "1", None), ("R13", "geometry_area", P + "3", None)}
