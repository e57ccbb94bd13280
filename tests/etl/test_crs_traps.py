"""The VN-2000 traps (domain notes §1.4, §1.5): never load misplaced data silently.

Each trap file holds ~20 parcels of the generator's survey commune 06187, written the wrong way. Without a
declared fix the rows are rejected (or the run refuses to start) with a diagnosis; with the fix the officer
declares, they land where they belong, to the centimetre.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from gisplatform.etl.jobs import one_off_job
from gisplatform.etl.runner import EtlError, run_job
from gisplatform.sample import SampleConfig, generate_sample


@pytest.fixture(scope="module")
def traps(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("crs_traps")
    generate_sample(out, SampleConfig(parcels=300, with_other_layers=False, crs_defect_files=True, defect_rate=0))
    return out


def load(path: Path, crs=None, fixes=()):
    return run_job(one_off_job("cadastral_parcels", path, crs, "auto", "full", fixes))


def reference(traps: Path) -> dict[str, tuple[float, float]]:
    """parcel → centroid in EPSG:9215 from the correctly written commune file."""
    import pyogrio
    import shapely

    frame = pyogrio.read_dataframe(traps / "cadastral" / "thua_dat_06187.shp")
    frame = frame[frame["MAXA_BD"] == "06187"]
    return {f"{s}/{p}": (c.x, c.y) for s, p, c in zip(frame["SOTO"], frame["SOTHUA"],
                                                       shapely.centroid(frame.geometry.values))}


def stored_offsets(db, traps: Path) -> list[float]:
    """Distance in metres between each stored parcel and the same parcel in the correct file."""
    ref = reference(traps)
    with db.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT map_sheet_no, parcel_no, ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) "
            "FROM data.cadastral_parcels")).all()
    return [((x - ref[f"{s}/{p}"][0]) ** 2 + (y - ref[f"{s}/{p}"][1]) ** 2) ** 0.5 for s, p, x, y in rows]


def reasons(db) -> set[str]:
    with db.connect() as connection:
        return set(connection.execute(sa.text("SELECT message FROM etl.rejects")).scalars())


def test_swapped_axes_are_diagnosed_then_fixed_when_declared(db, traps):
    path = traps / "cadastral_crs_defects" / "swapped_xy.shp"
    report = load(path)
    assert report.inserted == 0 and report.rejected == report.read == 20
    assert all("swapped" in m for m in reasons(db))
    assert load(path, fixes=("swap_xy",)).inserted == 20
    assert max(stored_offsets(db, traps)) < 0.01


def test_utm_coordinates_behind_a_tm3_prj_are_diagnosed_then_fixed(db, traps):
    path = traps / "cadastral_crs_defects" / "utm48.shp"
    assert load(path).rejected == 20
    assert all("UTM 48N" in m for m in reasons(db))
    assert load(path, fixes=("from_utm48",)).inserted == 20
    assert max(stored_offsets(db, traps)) < 0.01


def test_hn72_coordinates_need_a_declared_crs_and_are_not_taken_for_tm3(db, traps):
    path = traps / "cadastral_crs_defects" / "hn72.shp"
    with pytest.raises(EtlError, match="no .prj"):
        load(path)  # no .prj: no guessing
    assert load(path, crs=9215).rejected == 20  # declared TM-3, but the values are not
    assert all("106" in m for m in reasons(db))
    assert load(path, crs=2093).inserted == 20  # HN-72 / GK 106 declared: reprojected through WGS 84
    # HN-72's only EPSG shift is defined for Vũng Tàu; in Lạng Sơn the result is indicative (tens of metres)
    assert max(stored_offsets(db, traps)) < 100


def test_a_missing_datum_shift_shows_in_the_parcel_ids(db, traps):
    """Coordinates converted without the VN-2000 shift sit ~225 m off; only the parcel IDs can tell."""
    report = load(traps / "cadastral_crs_defects" / "missing_datum_shift.shp")
    assert report.inserted == 20
    assert report.findings[("warning", "parcel_id_geohash")] == 20
    with db.connect() as connection:
        messages = connection.execute(sa.text(
            "SELECT message FROM etl.issues WHERE rule = 'parcel_id_geohash'")).scalars().all()
    distances = [float(m.split("point ")[1].split(" m")[0].replace(",", "")) for m in messages]
    assert all(150 < d < 300 for d in distances)


def test_a_prj_with_coordinate_frame_rotation_signs_needs_a_declared_crs(db, traps):
    path = traps / "cadastral_crs_defects" / "rotation_sign.shp"
    with pytest.raises(EtlError, match="rotation") as failure:
        load(path)
    assert "EPSG:9215" in str(failure.value)
    assert load(path, crs=9215).inserted == 20
    assert max(stored_offsets(db, traps)) < 0.01
