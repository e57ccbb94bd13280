"""gisplatform.crs: VN-2000 transformations, PostGIS registration, diagnosis and stated-CRS parsing.

Reference values: /work/shared/domain/vietnam-land-data.md §1.4-§1.6.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import shapely
from pyproj import CRS, Geod, Transformer

from gisplatform import crs as C

GEOD = Geod(ellps="WGS84")

# §1.6 Lạng Sơn regression vectors, EPSG:9215 -> EPSG:4326 (PROJ 9.5.1 with EPSG:6960).
LANG_SON = [
    (450_000.000, 2_420_000.000, 21.875849983, 106.768059047),
    (400_000.000, 2_380_000.000, 21.512486741, 106.286673196),
    (480_000.000, 2_460_000.000, 22.237714529, 107.057867808),
    (430_000.000, 2_410_000.000, 21.784855715, 106.574959540),
]
E = np.array([p[0] for p in LANG_SON])
N = np.array([p[1] for p in LANG_SON])
LAT = np.array([p[2] for p in LANG_SON])
LON = np.array([p[3] for p in LANG_SON])
# §1.4: Lạng Sơn city in WGS 84 and its EPSG:9215 reference.
CITY_LONLAT = (106.7615, 21.8537)
CITY_9215 = (449_314.377, 2_417_549.695)


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


# --------------------------------------------------------------------------------------------- transformations
def test_towgs84_signs_are_position_vector():
    assert C.TOWGS84_9215[3:6] == (0.00928836, -0.01975479, 0.00427372)
    assert C.TOWGS84_COORDINATE_FRAME[3:6] == (-0.00928836, 0.01975479, -0.00427372)
    assert C.TOWGS84_9215_PROJ == ("+towgs84=-191.90441429,-39.30318279,-111.45032835,"
                                   "0.00928836,-0.01975479,0.00427372,0.252906278")


@pytest.mark.parametrize("src,dst", [(9215, 4326), (4326, 9215), (9215, 3857), (3405, 4326), (4756, 4326)])
def test_transformer_uses_epsg_6960(src, dst):
    t = C.transformer(src, dst)
    assert "VN-2000 to WGS 84 (2)" in t.description
    assert "VN-2000 to WGS 84 (1)" not in t.description
    assert C.transformer(src, dst) is t  # cached


def test_lang_son_regression_vectors_both_ways():
    lon, lat = C.transform_xy(E, N, 9215, 4326)
    assert metres(lon, lat, LON, LAT).max() < 0.03
    e, n = C.transform_xy(LON, LAT, 4326, 9215)
    assert np.hypot(e - E, n - N).max() < 0.03


def test_lang_son_city_reference():
    e, n = C.transform_xy([CITY_LONLAT[0]], [CITY_LONLAT[1]], 4326, 9215)
    assert np.hypot(e[0] - CITY_9215[0], n[0] - CITY_9215[1]) < 0.03


def test_quang_tri_published_pair_epsg_9212():
    """Doc §1.6: ΔN -0.015 m, ΔE +0.026 m, i.e. each component within 3 cm."""
    lon, lat = C.transform_xy([546_151.8072], [1_855_759.3584], 9212, 4326)
    assert metres(lon, lat, [106.68477742], [16.77839876])[0] < 0.035
    e, n = C.transform_xy([106.68477742], [16.77839876], 4326, 9212)
    assert abs(e[0] - 546_151.8072) < 0.03 and abs(n[0] - 1_855_759.3584) < 0.03


def test_proj4_without_towgs84_is_off_by_about_200_m():
    """The trap: pyproj's own to_proj4() of EPSG:9215 has no +towgs84."""
    bare = CRS.from_proj4("+proj=tmerc +lat_0=0 +lon_0=107.25 +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 +units=m")
    lon, lat = Transformer.from_crs(bare, 4326, always_xy=True).transform(E, N)
    err = metres(lon, lat, LON, LAT)
    assert (err > 180).all() and (err < 260).all()


def test_proj4_with_towgs84_is_right_and_coordinate_frame_signs_are_not():
    good = CRS.from_proj4(C.proj4_with_towgs84(9215))
    lon, lat = Transformer.from_crs(good, 4326, always_xy=True).transform(E, N)
    assert metres(lon, lat, LON, LAT).max() < 0.03
    cf = C.proj4_with_towgs84(9215).replace(C.TOWGS84_9215_PROJ, "+towgs84=" + ",".join(
        repr(v) for v in C.TOWGS84_COORDINATE_FRAME))
    lon, lat = Transformer.from_crs(CRS.from_proj4(cf), 4326, always_xy=True).transform(E, N)
    err = metres(lon, lat, LON, LAT)
    assert (err > 0.5).all() and (err < 1.2).all()  # §1.4: +0.74 m E, +0.20 m N


def test_transform_geometries_vectorised_and_keeps_none():
    geoms = np.array([shapely.Point(450_000, 2_420_000), None,
                      shapely.box(400_000, 2_380_000, 400_100, 2_380_100)], dtype=object)
    out = C.transform_geometries(geoms, 9215, 4326)
    assert out[1] is None
    assert metres(out[0].x, out[0].y, LON[0], LAT[0]) < 0.03
    back = C.transform_geometries(out, 4326, 9215)
    assert shapely.equals_exact(back[2], geoms[2], tolerance=0.001)


def test_hn72_code_for_lang_son_and_its_shift():
    """EPSG's only HN-72 projection covering Lạng Sơn is GK zone 18 (2044); 2093 is defined for Vũng Tàu."""
    lon0, lat0, lon1, lat1 = C.PROVINCE_BBOX_WGS84
    area_2044 = CRS.from_epsg(2044).area_of_use
    assert area_2044.west <= lon0 and area_2044.east >= lon1 and area_2044.north >= lat1
    assert CRS.from_epsg(2093).area_of_use.north < 12
    # HN-72 goes through WGS 84 with EPSG:1544 (not a ballpark); doc §1.4: GK 106 E 578 669, N 2 417 858.
    e, n = C.transform_xy([578_669.438], [2_417_857.694], 2093, 9215)
    assert np.hypot(e[0] - CITY_9215[0], n[0] - CITY_9215[1]) < 0.05
    gx, gy = C.transform_xy([CITY_9215[0]], [CITY_9215[1]], 9215, 2044)
    assert 18_600_000 < gx[0] < 18_700_000
    e, n = C.transform_xy(gx, gy, 2044, 9215)
    assert np.hypot(e[0] - CITY_9215[0], n[0] - CITY_9215[1]) < 0.01


# --------------------------------------------------------------------------------------------- PostGIS
PG = dict(host="127.0.0.1", user="postgres")


@pytest.fixture(scope="module")
def pg_db():
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(dbname="postgres", connect_timeout=5, **PG)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"no local PostgreSQL: {exc}")
    admin.autocommit = True
    name = f"crs_test_{os.getpid()}"
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
        cur.execute(f"CREATE DATABASE {name}")
    try:
        conn = psycopg2.connect(dbname=name, **PG)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION postgis")
        yield conn
        conn.close()
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


def test_postgis_lacks_the_provincial_codes(pg_db):
    with pg_db.cursor() as cur:
        cur.execute("SELECT srid FROM spatial_ref_sys WHERE srid = ANY(%s)",
                    ([3405, 3406, 4756, 5896, 5897, 5898, 5899, *C.MISSING_IN_POSTGIS_33],))
        present = {r[0] for r in cur.fetchall()}
    assert present.isdisjoint(C.MISSING_IN_POSTGIS_33)
    assert {3405, 3406, 4756, 5896, 5897, 5898, 5899} <= present


def test_postgis_st_transform_after_registration(pg_db):
    rows = C.spatial_ref_sys_rows()
    assert [r[0] for r in rows] == list(range(9205, 9219))
    assert all(C.TOWGS84_9215_PROJ in r[4] and r[3].startswith("PROJCS[") for r in rows)
    wkt, proj4 = next(r[3:] for r in rows if r[0] == 9215)
    with pg_db.cursor() as cur:
        cur.executemany("INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text) "
                        "VALUES (%s, %s, %s, %s, %s)", rows)
        # The same definition without the EPSG authority: proves srtext and proj4text alone are right too.
        cur.execute("INSERT INTO spatial_ref_sys (srid, srtext, proj4text) VALUES (909215, NULL, %s), "
                    "(919215, %s, NULL)", (proj4, wkt))
        for srid in (9215, 909215, 919215):
            cur.execute("SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(e, n), %s), 4326)"
                        " AS g FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS t(e, n, i) ORDER BY i) q",
                        (srid, E.tolist(), N.tolist()))
            lon, lat = np.array(cur.fetchall()).T
            assert metres(lon, lat, LON, LAT).max() < 0.03, srid
        pj_lon, pj_lat = C.transform_xy(E, N, 9215, 4326)
        assert metres(pj_lon, pj_lat, LON, LAT).max() < 0.03


# --------------------------------------------------------------------------------------------- diagnosis
def test_diagnose_xy_codes():
    x = np.array([404_490, 2_380_800, 681_834, 578_669, 637_549.58, 18_682_106, 18_449_314, 100, np.nan])
    y = np.array([2_380_800, 404_490, 2_417_783, 2_417_858, 2_380_388.74, 2_418_686, 2_417_549, 100, 1])
    codes = C.diagnose_xy(x, y)
    assert codes.dtype == object
    assert codes.tolist() == ["ok", "swapped", "utm48", "cm106", "utm48_or_cm106", "gk_prefix", "gk_prefix",
                              "outside", "missing"]
    for code, e, n in zip(codes, x, y):
        assert C.diagnosis_message(code, e, n)
    msg = C.diagnosis_message("swapped", 2_380_800, 404_490)
    assert "2 380 800" in msg and "swap_xy" in msg
    assert set(C.DIAGNOSIS_TEXT) >= set(codes)


def test_suggest_and_apply_fixes():
    assert C.suggest_fix("swapped") == "swap_xy"
    assert C.suggest_fix("utm48") == "from_utm48"
    assert C.suggest_fix("gk_prefix") == "drop_zone_prefix"
    assert C.suggest_fix("ok") is None and C.suggest_fix("outside") is None
    assert C.suggest_fix("utm48_or_cm106") == "from_utm48"  # most likely; message names the alternatives
    assert "from_hn72_gk106" in C.applicable_fixes("utm48_or_cm106")
    assert all(f in C.FIXES for code in C.FIXES_FOR for f in C.applicable_fixes(code))
    # §3.3: the same corners in UTM 48N.
    ex, ny = C.apply_fix([637_549.58, 637_948.97], [2_380_388.74, 2_380_429.50], "from_utm48")
    assert np.allclose(ex, [404_490, 404_890], atol=0.05) and np.allclose(ny, [2_380_800, 2_380_835], atol=0.05)
    assert np.array_equal(C.apply_fix([2_380_800.0], [404_490.0], "swap_xy")[0], [404_490.0])
    ex, ny = C.apply_fix([578_669.438], [2_417_857.694], "from_hn72_gk106")
    assert abs(ex[0] - CITY_9215[0]) < 0.05
    gx, gy = C.transform_xy([CITY_9215[0]], [CITY_9215[1]], 9215, 2044)
    for fix, xs in (("from_hn72", gx - 18_000_000), ("from_hn72", gx), ("drop_zone_prefix", gx)):
        ex, ny = C.apply_fix(xs, gy, fix)
        assert np.hypot(ex[0] - CITY_9215[0], ny[0] - CITY_9215[1]) < 0.01, fix
    ex, ny = C.apply_fix([18_449_314.0], [2_417_549.0], "drop_zone_prefix")  # prefix glued onto a TM-3 easting
    assert ex[0] == 449_314.0 and ny[0] == 2_417_549.0
    ex, _ = C.apply_fix([637_549.58], [2_380_388.74], "from_epsg:3405")
    assert abs(ex[0] - 404_490) < 0.05
    with pytest.raises(ValueError, match="known fixes"):
        C.apply_fix([1.0], [1.0], "rotate")


# --------------------------------------------------------------------------------------------- .prj
PV = ",".join(repr(v) for v in C.TOWGS84_9215)
CF = ",".join(repr(v) for v in C.TOWGS84_COORDINATE_FRAME)
ESRI_9215 = (
    'PROJCS["VN_2000_TM3_107_15",GEOGCS["GCS_VN_2000",DATUM["D_Vietnam_2000",SPHEROID["WGS_1984",6378137.0,'
    '298.257223563]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
    'PARAMETER["False_Easting",500000.0],PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",107.25],'
    'PARAMETER["Scale_Factor",0.9999],PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]')


def wkt1(datum: str, towgs84: str | None = None, lon0: float = 107.25, k: float = 0.9999) -> str:
    shift = f",TOWGS84[{towgs84}]" if towgs84 else ""
    return (f'PROJCS["custom",GEOGCS["custom",DATUM["{datum}",SPHEROID["WGS 84",6378137,298.257223563]{shift}],'
            f'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
            f'PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",{lon0}],PARAMETER["scale_factor",{k}],'
            f'PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1]]')


@pytest.mark.parametrize("wkt,epsg,problem,candidate", [
    (ESRI_9215, 9215, None, None),
    (CRS.from_epsg(9215).to_wkt("WKT1_GDAL"), 9215, None, None),
    (wkt1("Vietnam_2000", PV), 9215, None, None),
    (wkt1("WGS_1984"), None, "missing_datum_shift", 9215),
    (wkt1("unknown"), None, "missing_datum_shift", 9215),
    (wkt1("Vietnam_2000", CF), None, "rotation_sign", 9215),
    (wkt1("WGS_1984", lon0=106.5), None, "missing_datum_shift", 9213),
    (CRS.from_epsg(3405).to_wkt("WKT1_GDAL"), 3405, None, None),
    (CRS.from_epsg(3405).to_wkt("WKT1_ESRI"), 3405, None, None),
    (CRS.from_epsg(4326).to_wkt("WKT1_ESRI"), 4326, None, None),
    (CRS.from_epsg(32648).to_wkt("WKT1_ESRI"), 32648, None, None),
    (CRS.from_epsg(2044).to_wkt("WKT1_GDAL"), 2044, None, None),
    ('PROJCS["broken', None, "unrecognised", None),
    (wkt1("Bessel_custom", lon0=107.1, k=1.0), None, "unrecognised", None),
])
def test_analyse_prj(wkt, epsg, problem, candidate):
    a = C.analyse_prj(wkt)
    assert (a.epsg, a.problem, a.candidate_epsg) == (epsg, problem, candidate), a.message
    assert a.message


def test_analyse_prj_messages_are_actionable():
    assert "crs: EPSG:9215" in C.analyse_prj(wkt1("WGS_1984")).message
    assert "200 m" in C.analyse_prj(wkt1("WGS_1984")).message
    assert "0.74 m" in C.analyse_prj(wkt1("Vietnam_2000", CF)).message


# --------------------------------------------------------------------------------------------- stated CRS
@pytest.mark.parametrize("text,epsg", [
    ("VN-2000, KTT 107°15', múi chiếu 3°", 9215),
    ("VN2000 kinh tuyến trục 107 15 múi 3", 9215),
    ("VN-2000 KTT 107°15′ múi 3°", 9215),
    ("Hệ VN-2000, kinh tuyến trục 107°15′, múi chiếu 3 độ", 9215),
    ("HỆ VN-2000  KTT 107°15′  MÚI CHIẾU 3°", 9215),
    ("VN-2000 KTT 107.25", 9215),
    ("VN-2000 TM-3 107-15", 9215),
    ("VN-2000, KTT 105°, múi chiếu 6°", 3405),
    ("VN-2000 UTM 48N", 3405),
    ("VN-2000, KTT 105°, múi chiếu 3°", 5897),
    ("EPSG:9215", 9215),
    ("epsg 3405", 3405),
    ("9215", 9215),
    (9215, 9215),
    ("WGS84", 4326),
    ("WGS 84", 4326),
    ("HN-72", C.HN72_LANG_SON),
    ("Hà Nội 72", 2044),
    ("VN-2000 KTT 106°30′ múi 3°", 9213),
    ("VN-2000 KTT 107°00′", 9214),
    ("VN-2000 KTT 105°45' múi chiếu 3°", 9210),
    ("VN-2000 KTT 107°45′", 5899),
    ("VN-2000 KTT 106°15′", 9212),
])
def test_parse_crs_statement(text, epsg):
    assert C.parse_crs_statement(text) == epsg


@pytest.mark.parametrize("text", ["VN-2000", "", "tọa độ giả định", "EPSG:99999", "VN-2000 KTT 105°",
                                  "VN-2000 KTT 109°", None])
def test_parse_crs_statement_rejects(text):
    with pytest.raises(ValueError, match="CRS|accepted"):
        C.parse_crs_statement(text)


def test_meridian_table_matches_epsg():
    for lon, code in {**C.TM3_BY_MERIDIAN, **C.UTM_BY_MERIDIAN}.items():
        p = {q["id"]["code"]: q["value"] for q in CRS.from_epsg(code).to_json_dict()["conversion"]["parameters"]}
        assert p[8802] == lon and p[8806] == 500_000, code
