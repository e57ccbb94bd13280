"""Each rule, through the real pipeline and database, on files whose every value the test controls."""
from __future__ import annotations

import unicodedata
from concurrent.futures import Future

import geopandas as gpd
import numpy as np
import pytest
import shapely
import sqlalchemy as sa

from gisplatform.etl.jobs import one_off_job
from gisplatform.etl.runner import EtlError, run_job
from gisplatform.text import encode_tcvn3, encode_vni
from gisplatform.validate.overlaps import OverlapIndex
from tests.builders import ORIGIN, parcel, parcels, write_parcels


def load(path, layer="cadastral_parcels", crs=None, fixes=(), encoding="auto", mode="full"):
    return run_job(one_off_job(layer, path, crs, encoding, mode, fixes))


def fetch(db, sql, **params):
    with db.connect() as connection:
        return connection.execute(sa.text(sql), params).all()


def rejects(db):
    return fetch(db, "SELECT row_number, rule, field, message FROM etl.rejects ORDER BY row_number, rule")


def issues(db):
    return fetch(db, "SELECT row_number, kind, rule, message FROM etl.issues ORDER BY row_number, rule")


# --- codes -------------------------------------------------------------------------------------------------
def test_legacy_land_use_code_on_a_new_record_is_mapped_to_its_successor(db, tmp_path):
    source = [parcel(0, MDSD="BHK", NGAYCN="02/03/2025"), parcel(1, MDSD="BHK", NGAYCN="02/03/2020")]
    report = load(write_parcels(tmp_path / "p.gpkg", source))
    assert report.inserted == 2 and report.rejected == 0
    assert fetch(db, "SELECT parcel_no, land_use_codes FROM data.cadastral_parcels ORDER BY parcel_no") == [
        ("1", "HNK"), ("2", "BHK")]  # a 2020 record keeps the code valid at its date
    (row, kind, rule, message), = issues(db)
    assert (row, kind, rule) == (1, "repair", "codes_valid_at_date") and "BHK" in message and "HNK" in message


def test_unknown_land_use_code_is_rejected(db, tmp_path):
    load(write_parcels(tmp_path / "p.gpkg", [parcel(0, MDSD="ONT+QQQ")]))
    (row, rule, field, message), = rejects(db)
    assert (row, rule, field) == (1, "codes_valid_at_date", "land_use_codes") and "QQQ" in message


def admin_units_file(tmp_path):
    """Commune 05977 from 2025-07-01 covering the test parcels, and its predecessor 05978 before that."""
    area = shapely.multipolygons([shapely.box(ORIGIN[0] - 500, ORIGIN[1] - 500, ORIGIN[0] + 2000, ORIGIN[1] + 500)])
    frame = gpd.GeoDataFrame([
        dict(ma_xa="05977", ten_xa="Đông Kinh", cap="phuong", ma_huyen=None, hieu_luc_tu="2025-07-01",
             hieu_luc_den=None, geometry=area),
        dict(ma_xa="05978", ten_xa="Khòn Lầy", cap="xa", ma_huyen="178", hieu_luc_tu="1990-01-01",
             hieu_luc_den="2025-07-01", geometry=area)], crs=9215)
    path = tmp_path / "units.gpkg"
    frame.to_file(path, layer="don_vi_hanh_chinh")
    return path


def test_pre_2025_commune_code_after_the_merger_is_reassigned_from_the_geometry(db, tmp_path):
    assert load(admin_units_file(tmp_path), layer="admin_units").inserted == 2
    source = [parcel(0, MAXA="05978", NGAYCN="15/08/2025"), parcel(1, MAXA="05978", NGAYCN="15/08/2024")]
    report = load(write_parcels(tmp_path / "p.gpkg", source))
    assert report.inserted == 2
    assert fetch(db, "SELECT parcel_no, commune_code FROM data.cadastral_parcels ORDER BY parcel_no") == [
        ("1", "05977"), ("2", "05978")]
    (row, kind, rule, message), = issues(db)
    assert (row, kind, rule) == (1, "repair", "commune_valid_at_date") and "05978" in message


def test_pre_2025_commune_code_is_rejected_with_a_hint_when_no_boundaries_are_loaded(db, tmp_path):
    load(write_parcels(tmp_path / "p.gpkg", [parcel(0, MAXA="05978", NGAYCN="15/08/2025")]))
    (row, rule, field, message), = rejects(db)
    assert rule == "commune_valid_at_date" and "load the admin_units layer" in message


def test_commune_code_without_leading_zero_is_padded(db, tmp_path):
    load(write_parcels(tmp_path / "p.gpkg", [parcel(0, MAXA="5977", MAXA_BD="5977")]))
    assert fetch(db, "SELECT commune_code, sheet_commune_code FROM data.cadastral_parcels") == [("05977", "05977")]


# --- values ------------------------------------------------------------------------------------------------
def test_unreadable_values_and_empty_required_fields_are_rejected_naming_the_field(db, tmp_path):
    source = [parcel(0, SOTO="ba"), parcel(1, SOTHUA=""), parcel(2, NGAYSINH="31/02/1970")]
    load(write_parcels(tmp_path / "p.gpkg", source))
    found = {(row, rule, field) for row, rule, field, _ in rejects(db)}
    assert found == {(1, "field_values", "map_sheet_no"), (2, "required_fields", "parcel_no"),
                     (3, "field_values", "user_birth_date")}
    birth = [m for row, rule, field, m in rejects(db) if field == "user_birth_date"][0]
    assert "31/02/1970" not in birth and "withheld" in birth  # personal values stay out of messages


def test_vietnamese_number_and_date_formats_are_read(db, tmp_path):
    load(write_parcels(tmp_path / "p.gpkg", [parcel(0, DIENTICH="600,0", DTPHAPLY="1.600,5",
                                                       NGAYCN="ngày 20 tháng 7 năm 2017")]))
    (area, legal, date), = fetch(db, "SELECT area_m2, legal_area_m2, record_date::text FROM data.cadastral_parcels")
    assert (area, legal, date) == (600.0, 1600.5, "2017-07-20")


# --- areas and IDs -----------------------------------------------------------------------------------------
def test_recorded_area_far_from_the_geometry_is_a_warning(db, tmp_path):
    load(write_parcels(tmp_path / "p.gpkg", [parcel(0, DIENTICH=660.0, DTPHAPLY=660.0), parcel(1, DIENTICH=603.0,
                                                                                         DTPHAPLY=603.0)]))
    assert [(r, k, rule) for r, k, rule, _ in issues(db)] == [(1, "warning", "area_matches_geometry")]


def test_parcel_id_that_decodes_outside_its_parcel_is_a_warning(db, tmp_path):
    wrong = parcel(3)["MATHUA"]  # the ID of another parcel, 90 m away
    load(write_parcels(tmp_path / "p.gpkg", [parcel(0, MATHUA=wrong), parcel(1, MATHUA="abc")]))
    found = {(r, rule): m for r, k, rule, m in issues(db)}
    assert "outside the parcel" in found[(1, "parcel_id_geohash")]
    assert "not a 12-character GeoHash" in found[(2, "parcel_id_geohash")]


# --- geometry ----------------------------------------------------------------------------------------------
def test_self_intersecting_parcel_is_rejected_but_a_harmless_defect_is_repaired(db, tmp_path):
    x, y = ORIGIN
    bow_tie = shapely.Polygon([(x, y), (x + 30, y + 20), (x + 30, y), (x, y + 20)])
    spike = shapely.Polygon([(x + 60, y), (x + 90, y), (x + 90, y + 20), (x + 75, y + 20), (x + 75, y + 20.5),
                             (x + 75, y + 20), (x + 60, y + 20)])  # a zero-width spike: invalid, area intact
    load(write_parcels(tmp_path / "p.gpkg", [parcel(0, geometry=bow_tie, DIENTICH=300.0),
                                             parcel(2, geometry=spike)]))
    (row, rule, field, message), = rejects(db)
    assert (row, rule) == (1, "geometry_valid") and "Self-intersection" in message
    assert ("repair", "geometry_valid") in {(k, r) for _, k, r, _ in issues(db)}
    assert fetch(db, "SELECT ST_IsValid(geom) FROM data.cadastral_parcels") == [(True,)]


class _StillSearching(Future):
    """A pair search that reports itself unfinished when the merge asks, and hands over its pairs when waited for."""

    def done(self) -> bool:
        return False


@pytest.mark.parametrize("search", ["found before the insert", "still going at the insert"])
def test_overlapping_parcels_are_both_flagged(db, tmp_path, monkeypatch, search):
    if search == "still going at the insert":  # the first load inserts, then records the warnings
        searching = OverlapIndex.pairs_in_background

        def slow(index):
            later = _StillSearching()
            searching(index).add_done_callback(lambda found: later.set_result(found.result()))
            return later

        monkeypatch.setattr(OverlapIndex, "pairs_in_background", slow)
    source = parcels(3)
    source[1] = parcel(1, geometry=shapely.box(ORIGIN[0] + 25, ORIGIN[1], ORIGIN[0] + 60, ORIGIN[1] + 20),
                       DIENTICH=700.0, DTPHAPLY=700.0)  # 5 m into parcel 1 = 100 m²
    report = load(write_parcels(tmp_path / "p.gpkg", source))
    assert report.inserted == 3
    overlaps = [(r, m) for r, k, rule, m in issues(db) if rule == "overlaps"]
    assert [r for r, _ in overlaps] == [1, 2] and all("100.0 m²" in m for _, m in overlaps)
    # whether the first load had them at the insert or recorded them after it (gisplatform.load.merge.
    # warnings_after_insert_sql), the features carry them, and the same file again changes nothing
    flags = fetch(db, "SELECT source_row, coalesce(qa_flags, '{}') FROM data.cadastral_parcels ORDER BY fid")
    assert [(row, "warning:overlaps" in f) for row, f in flags] == [(1, True), (2, True), (3, False)]
    # a search still going when the rows were inserted had the keys and indexes rebuilt while it ended (before
    # the warnings' row versions): all of them are there all the same
    assert fetch(db, "SELECT count(*) FILTER (WHERE indexdef LIKE '%USING gist%'), count(*) FROM pg_indexes "
                     "WHERE schemaname = 'data' AND tablename = 'cadastral_parcels'") == [(2, 4)]
    again = load(write_parcels(tmp_path / "p.gpkg", source))
    assert (again.unchanged, again.updated, again.inserted) == (3, 0, 0)


def test_a_new_or_changed_parcel_overlapping_a_loaded_one_is_flagged(db, tmp_path):
    """Against the loaded features that stay: a new parcel overlapping two loaded ones and a changed parcel
    overlapping a third are flagged; the old outlines of changed parcels (their own, or another's that moves
    away in the same file) do not count."""
    x, y = ORIGIN  # parcel no. k covers x + 30(k-1) .. x + 30k
    load(write_parcels(tmp_path / "v1.gpkg", parcels(4)), mode="incremental")
    intruder = parcel(9, geometry=shapely.box(x + 25, y, x + 55, y + 20), MATHUA=None)  # new: over no. 1 and 2
    moved_away = parcel(2, geometry=shapely.box(x + 60, y + 40, x + 90, y + 60), MATHUA=None)  # no. 3 leaves
    moved_in = parcel(3, geometry=shapely.box(x + 58, y, x + 88, y + 20), MATHUA=None)  # no. 4 onto 3's place
    report = load(write_parcels(tmp_path / "v2.gpkg", [intruder, moved_away, moved_in]), mode="incremental")
    assert (report.inserted, report.updated) == (1, 2)
    flagged = {r: m for r, k, rule, m in issues(db) if rule == "overlaps"}
    key = "overlaps loaded feature sheet_commune_code=05977, map_sheet_no=3, parcel_no="
    assert flagged == {1: f"{key}1 by 100.0 m²; {key}2 by 500.0 m²", 3: f"{key}2 by 40.0 m²"}


def test_the_copy_of_a_broken_duplicate_group_is_checked_against_loaded_features_too(db, tmp_path):
    """The search for overlaps with loaded features starts once the files are read; a copy of a duplicate key
    held until its group turns out broken (the other copy is gone) is staged after that, and searched then."""
    x, y = ORIGIN
    late_copy = parcel(5, SOTHUA="1", geometry=shapely.box(x + 85, y, x + 115, y + 20), MATHUA=None)  # over no. 3
    first = load(write_parcels(tmp_path / "v1.gpkg", parcels(3) + [late_copy]))
    assert (first.inserted, first.rejected) == (2, 2)
    # a new parcel (no. 7) is staged as it is read, the late copy only once its group is found broken
    report = load(write_parcels(tmp_path / "v2.gpkg", parcels(3)[1:] + [parcel(6), late_copy]))
    assert (report.inserted, report.unchanged, report.rejected) == (2, 2, 0)
    flagged = fetch(db, "SELECT row_number, message FROM etl.issues WHERE run_id = :r AND rule = 'overlaps'",
                    r=report.run_id)
    assert flagged == [(4, "overlaps loaded feature sheet_commune_code=05977, map_sheet_no=3, parcel_no=3 by 100.0 m²")]


def test_in_a_full_snapshot_a_feature_gone_from_the_source_does_not_count_as_overlapped(db, tmp_path):
    """A new parcel over the place of a parcel the new file no longer has (retired by the run) and over a parcel
    that stays unchanged is flagged for the one that stays only."""
    x, y = ORIGIN
    load(write_parcels(tmp_path / "v1.gpkg", parcels(4)))
    intruder = parcel(9, geometry=shapely.box(x + 25, y, x + 55, y + 20), MATHUA=None)  # over no. 1 and 2
    report = load(write_parcels(tmp_path / "v2.gpkg", [parcel(0), parcel(2), parcel(3), intruder]))
    assert (report.inserted, report.unchanged, report.retired) == (1, 3, 1)
    flagged = {r: m for r, k, rule, m in issues(db) if rule == "overlaps"}
    assert flagged == {4: "overlaps loaded feature sheet_commune_code=05977, map_sheet_no=3, parcel_no=1 by 100.0 m²"}


@pytest.mark.parametrize("transform, fix, diagnosis", [
    (lambda c: c[:, ::-1], "swap_xy", "swapped"),
])
def test_misplaced_coordinates_are_diagnosed_or_fixed_when_the_fix_is_declared(db, tmp_path, transform, fix, diagnosis):
    moved = [parcel(i, geometry=shapely.transform(parcel(i)["geometry"], transform)) for i in range(2)]
    path = write_parcels(tmp_path / "p.gpkg", moved)
    report = load(path)
    assert report.rejected == 2 and all(rule == "inside_province" for _, rule, _, _ in rejects(db))
    assert "look swapped" in rejects(db)[0][3]
    report = load(path, fixes=(fix,))
    assert report.inserted == 2
    assert fetch(db, "SELECT count(*) FROM data.cadastral_parcels WHERE ST_Within(geom, "
                     "ST_MakeEnvelope(375000, 2350000, 520000, 2495000, 9215))") == [(2,)]


def test_utm_coordinates_labelled_tm3_are_diagnosed_and_fixed_on_request(db, tmp_path):
    from gisplatform import crs

    def to_utm(coords):
        return np.column_stack(crs.transform_xy(coords[:, 0], coords[:, 1], 9215, 3405))

    moved = [parcel(i, geometry=shapely.transform(parcel(i)["geometry"], to_utm)) for i in range(2)]
    path = write_parcels(tmp_path / "p.gpkg", moved)  # labelled 9215, holding UTM 48N values
    load(path)
    assert {rule for _, rule, _, _ in rejects(db)} == {"inside_province"}
    assert "UTM 48N" in rejects(db)[0][3]
    assert load(path, fixes=("from_utm48",)).inserted == 2
    (offset,), = fetch(db, "SELECT max(ST_HausdorffDistance(d.geom, ST_GeomFromText(:wkt, 9215))) "
                           "FROM data.cadastral_parcels d WHERE parcel_no = '1'", wkt=parcel(0)["geometry"].wkt)
    assert offset < 0.01  # back where it belongs, to the centimetre


def test_a_prj_that_hides_the_datum_shift_stops_the_run_until_the_crs_is_declared(db, tmp_path):
    path = write_parcels(tmp_path / "p.shp", parcels(2))
    path.with_suffix(".prj").write_text(
        'PROJCS["TM3_107_15",GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137,298.257223563]],'
        'PRIMEM["Greenwich",0],UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
        'PARAMETER["False_Easting",500000],PARAMETER["False_Northing",0],PARAMETER["Central_Meridian",107.25],'
        'PARAMETER["Scale_Factor",0.9999],PARAMETER["Latitude_Of_Origin",0],UNIT["Meter",1]]')
    with pytest.raises(EtlError, match="p.shp") as failure:
        load(path)
    assert "EPSG:9215" in str(failure.value)
    assert load(path, crs=9215).inserted == 2


# --- text --------------------------------------------------------------------------------------------------
def _legacy_shapefile(tmp_path, encode, names):
    def legacy(text: str) -> str:
        return encode(text).decode("latin-1")

    rows = [parcel(i, TENCHU=legacy(n), DIACHI=legacy("Thôn Bản Chu"), THOIHAN=legacy("Lâu dài"),
                   DCTT=legacy("Thôn Nà Pài, xã Đông Kinh")) for i, n in enumerate(names)]
    frame = gpd.GeoDataFrame(rows, crs=9215)
    path = tmp_path / "legacy.shp"
    frame.to_file(path, encoding="latin1")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    return path


NAMES = ["Nguyễn Văn Trường", "Hoàng Thị Hường", "Lường Văn Phủ", "Nông Thị Thuỷ", "Đàm Văn Đức"]


@pytest.mark.parametrize("encode, expected", [(encode_tcvn3, "tcvn3"), (encode_vni, "vni")])
def test_legacy_dbf_text_is_detected_per_column_and_stored_as_unicode(db, tmp_path, encode, expected):
    path = _legacy_shapefile(tmp_path, encode, NAMES)
    report = load(path, crs=9215)
    assert report.files[0].plan["encodings"]["TENCHU"]["encoding"] == expected
    stored = [r[0] for r in fetch(db, "SELECT user_name FROM data.cadastral_parcels ORDER BY fid")]
    assert stored == [unicodedata.normalize("NFC", n) for n in NAMES]
    raw = fetch(db, "SELECT source_raw FROM data.cadastral_parcels ORDER BY fid")[0][0]
    assert bytes.fromhex(raw["TENCHU"]) == encode(NAMES[0])  # the original bytes are kept


def test_tcvn3_soft_hyphen_byte_is_the_letter_u_horn(db, tmp_path):
    path = _legacy_shapefile(tmp_path, encode_tcvn3, ["Trường", "Người", "Hường"])
    assert encode_tcvn3("Trường").count(b"\xad") == 1
    load(path, crs=9215)
    assert [r[0] for r in fetch(db, "SELECT user_name FROM data.cadastral_parcels ORDER BY fid")] == [
        "Trường", "Người", "Hường"]


def test_decomposed_unicode_is_stored_composed(db, tmp_path):
    nfd = unicodedata.normalize("NFD", "Lương Văn Tri")
    load(write_parcels(tmp_path / "p.gpkg", [parcel(0, TENCHU=nfd)]))
    (name,), = fetch(db, "SELECT user_name FROM data.cadastral_parcels")
    assert name == unicodedata.normalize("NFC", "Lương Văn Tri") and name != nfd


def test_geojson_is_read_as_wgs84_and_stored_in_vn2000(db, tmp_path):
    """RFC 7946: GeoJSON is always WGS 84 lon/lat; it is reprojected through EPSG:6960 on the way in."""
    from gisplatform import crs

    source = parcels(2)
    wgs84 = [parcel(i, geometry=shapely.transform(p["geometry"], lambda c: np.column_stack(
        crs.transform_xy(c[:, 0], c[:, 1], 9215, 4326)))) for i, p in enumerate(source)]
    path = write_parcels(tmp_path / "p.geojson", wgs84, crs_code=4326)
    report = load(path)
    assert report.inserted == 2 and report.files[0].plan["crs"] == "EPSG:4326"
    (offset,), = fetch(db, "SELECT max(ST_HausdorffDistance(geom, ST_GeomFromText(:wkt, 9215))) "
                           "FROM data.cadastral_parcels WHERE parcel_no = '1'", wkt=source[0]["geometry"].wkt)
    assert offset < 0.01
