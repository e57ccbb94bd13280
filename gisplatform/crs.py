"""VN-2000 and the other coordinate systems Lạng Sơn data arrives in.

Storage is EPSG:9215 (VN-2000 / TM-3 107-15). The datum shift to WGS 84 must be EPSG:6960 ("VN-2000 to WGS 84 (2)",
national parameters of Decision 05/2007), never EPSG:5194 (Mekong delta only). PROJ's ``+towgs84`` uses the
position-vector convention, so the rotation signs are the opposite of EPSG:6960's coordinate-frame values; copying
them unchanged (as epsg.io's WKT1 does) misplaces everything by ~0.8 m, and leaving ``+towgs84`` out by ~200 m.
See /work/shared/domain/vietnam-land-data.md §1.
"""
from __future__ import annotations

import re
import unicodedata
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.aoi import AreaOfInterest
from pyproj.exceptions import CRSError
from pyproj.transformer import TransformerGroup

STORAGE_SRID = 9215
PROVINCE_BOUNDS = (375_000.0, 2_350_000.0, 520_000.0, 2_495_000.0)  # E min, N min, E max, N max in EPSG:9215
PROVINCE_BBOX_WGS84 = (106.09, 21.32, 107.37, 22.47)  # EPSG area of use of 9215 (lon min, lat min, lon max, lat max)

# EPSG:6960 in PROJ's +towgs84 (position-vector) order: tx, ty, tz (m), rx, ry, rz (arc-seconds), ds (ppm).
TOWGS84_9215 = (-191.90441429, -39.30318279, -111.45032835, 0.00928836, -0.01975479, 0.00427372, 0.252906278)
# The same rotations as EPSG publishes them (coordinate-frame): wrong inside a +towgs84 / WKT1 TOWGS84.
TOWGS84_COORDINATE_FRAME = TOWGS84_9215[:3] + tuple(-r for r in TOWGS84_9215[3:6]) + TOWGS84_9215[6:]
TOWGS84_9215_PROJ = "+towgs84=" + ",".join(repr(v) for v in TOWGS84_9215)

# Central meridian -> VN-2000 TM-3 code (k 0.9999, FE 500 000), and 6° UTM codes (k 0.9996).
TM3_BY_MERIDIAN: dict[float, int] = {
    102.0: 5896, 103.0: 9205, 104.0: 9206, 104.5: 9207, 104.75: 9208, 105.0: 5897, 105.5: 9209, 105.75: 9210,
    106.0: 9211, 106.25: 9212, 106.5: 9213, 107.0: 9214, 107.25: 9215, 107.5: 9216, 107.75: 5899, 108.0: 5898,
    108.25: 9217, 108.5: 9218,
}
UTM_BY_MERIDIAN: dict[float, int] = {105.0: 3405, 111.0: 3406}
# HN-72 Gauss-Krüger. EPSG's only HN-72 projection whose area covers Lạng Sơn is zone 18 (CM 105°, EPSG:2044, whose
# false easting 18 500 000 carries the zone prefix). EPSG:2093 "GK 106 NE" is defined for the Vũng Tàu area only.
HN72_LANG_SON = 2044
HN72_BY_MERIDIAN: dict[float, int] = {105.0: 2044, 111.0: 2045, 106.0: 2093}
TM3_106 = 9211
UTM48 = 3405

# Codes Debian's PostGIS 3.3 spatial_ref_sys lacks (checked against a fresh `create extension postgis`, 3.3.2):
# it has 3405/3406, 4756 and 5896-5899 (with position-vector +towgs84) but none of the provincial 9205-9218.
MISSING_IN_POSTGIS_33 = tuple(range(9205, 9219))

_AOI = AreaOfInterest(*PROVINCE_BBOX_WGS84)
_VN2000_DATUM = "Vietnam 2000"


# --------------------------------------------------------------------------------------------- PostGIS rows
def proj4_with_towgs84(epsg: int) -> str:
    """PROJ.4 string of a VN-2000 CRS *with* the position-vector datum shift (pyproj's own omits it)."""
    crs = CRS.from_epsg(epsg)
    if crs.datum is None or crs.datum.name != _VN2000_DATUM:
        raise ValueError(f"EPSG:{epsg} is not a VN-2000 CRS")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "you will lose projection information": we add back what matters
        parts = crs.to_proj4().replace("+type=crs", "").split()
    ellps = parts.index("+ellps=WGS84")
    return " ".join(parts[: ellps + 1] + [TOWGS84_9215_PROJ] + parts[ellps + 1:])


def spatial_ref_sys_rows(srids: tuple[int, ...] = MISSING_IN_POSTGIS_33) -> list[tuple[int, str, int, str, str]]:
    """(srid, auth_name, auth_srid, srtext, proj4text) rows to insert into PostGIS ``spatial_ref_sys``."""
    return [(s, "EPSG", s, CRS.from_epsg(s).to_wkt("WKT1_GDAL"), proj4_with_towgs84(s)) for s in srids]


# --------------------------------------------------------------------------------------------- transforming
def _datum_name(crs: CRS) -> str | None:
    return crs.datum.name if crs.datum is not None else None


def _is_wgs84(datum: str | None) -> bool:
    return datum is not None and datum.startswith("World Geodetic System 1984")


def _chain(first: Transformer, second: Transformer) -> Transformer:
    """One PROJ pipeline doing ``first`` then ``second`` (both always_xy; first ends in lon/lat degrees)."""
    steps = []
    for t in (first, second):
        d = t.definition
        steps.append(d[len("proj=pipeline"):].strip() if d.startswith("proj=pipeline") else f"step {d}")
    return Transformer.from_pipeline("proj=pipeline " + " ".join(steps))


def _best(src: CRS, dst: CRS, aoi: AreaOfInterest | None) -> tuple[Transformer | None, list[Transformer]]:
    """First real (non-ballpark) operation PROJ ranks for the area, never EPSG:5194; and all candidates."""
    ops = [t for t in TransformerGroup(src, dst, always_xy=True, area_of_interest=aoi).transformers
           if "VN-2000 to WGS 84 (1)" not in t.description]
    return next((t for t in ops if "Ballpark" not in t.description), None), ops


@lru_cache(maxsize=128)
def transformer(src_epsg: int, dst_epsg: int) -> Transformer:
    """Transformer (always_xy) between two EPSG codes, fixed to the operation right for Lạng Sơn.

    Candidates are ranked for the province's area, EPSG:5194 is excluded, and a "ballpark" (no datum shift) is
    never accepted between different datums. HN-72 has no EPSG shift valid in the north (EPSG:1544 is defined for
    Vũng Tàu only), so HN-72 goes through WGS 84 with EPSG:1544's parameters, as GDAL's and PostGIS's +towgs84 do:
    indicative only (tens of metres).
    """
    src, dst = CRS.from_epsg(src_epsg), CRS.from_epsg(dst_epsg)
    chosen, ops = _best(src, dst, _AOI)
    if not ops:  # CRSs defined far from Lạng Sơn: let PROJ rank for their own area
        chosen, ops = _best(src, dst, None)
    if chosen is None and _datum_name(src) == _datum_name(dst) and ops:
        chosen = ops[0]
    if chosen is None:
        chosen = _via_wgs84(src, dst)
    datums = {_datum_name(src), _datum_name(dst)}
    if _VN2000_DATUM in datums and any(_is_wgs84(d) for d in datums) and \
            "VN-2000 to WGS 84 (2)" not in chosen.description:
        raise RuntimeError(f"EPSG:{src_epsg} -> EPSG:{dst_epsg} would not use EPSG:6960: {chosen.description}")
    return chosen


def _via_wgs84(src: CRS, dst: CRS) -> Transformer:
    # Without an area of interest PROJ also offers shifts valid elsewhere in Vietnam (EPSG:1544 for HN-72).
    wgs84 = CRS.from_epsg(4326)
    first, second = _best(src, wgs84, None)[0], _best(wgs84, dst, None)[0]
    if first is None or second is None:
        raise ValueError(f"no datum transformation from {src.name} to {dst.name} (only a ballpark)")
    return _chain(first, second)


def transform_xy(x, y, src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised (x, y) = (easting/lon, northing/lat) transform."""
    x, y = np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64")
    if src == dst:
        return x.copy(), y.copy()
    tx, ty = transformer(src, dst).transform(x, y)
    return np.asarray(tx, dtype="float64"), np.asarray(ty, dtype="float64")


def transform_geometries(geoms: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Reproject an object array of shapely geometries (None stays None)."""
    geoms = np.asarray(geoms, dtype=object)
    if src == dst:
        return geoms.copy()
    t = transformer(src, dst)
    return shapely.transform(geoms, lambda x, y: t.transform(x, y), interleaved=False)


# --------------------------------------------------------------------------------------------- diagnosis
E_MIN, N_MIN, E_MAX, N_MAX = PROVINCE_BOUNDS

DIAGNOSIS_TEXT: dict[str, str] = {
    "ok": "coordinates lie inside Lạng Sơn (EPSG:9215)",
    "missing": "coordinates are missing or not numbers",
    "swapped": (
        "easting and northing look swapped (easting {e} is a northing, northing {n} an easting): Vietnamese tables "
        "list X = northing and Y = easting; declare the fix `swap_xy` in the job or swap the columns"),
    "utm48": (
        "easting {e} is east of Lạng Sơn's EPSG:9215 range (375 000-520 000) but fits VN-2000 / UTM 48N "
        "(KTT 105°, múi chiếu 6°, EPSG:3405), as on Ministry licences: declare `crs: EPSG:3405` or the fix `from_utm48`; if the source is "
        "an old HN-72 map (Gauss-Krüger zone 18 without the '18' prefix) declare `from_hn72` instead"),
    "cm106": (
        "easting {e} fits a projection on central meridian 106°: HN-72 GK 106 (EPSG:2093, fix `from_hn72_gk106`) "
        "or VN-2000 TM-3 106°00′ (EPSG:9211, fix `from_tm3_106`); they differ by ~250 m, so check the map legend "
        "or licence header and declare the CRS or fix"),
    "utm48_or_cm106": (
        "easting {e} fits both VN-2000 / UTM 48N (EPSG:3405) and a 106° meridian (HN-72 GK 106, EPSG:2093, or "
        "VN-2000 TM-3 106°00′, EPSG:9211), which put the point ~100 km apart, both in the province: check the "
        "licence header and declare the CRS, or the fix `from_utm48` (most likely: Ministry licences use UTM 48N), "
        "`from_hn72_gk106` or `from_tm3_106`"),
    "gk_prefix": (
        "easting {e} carries a Gauss-Krüger zone number prefix ({zone} million): declare the fix "
        "`drop_zone_prefix` (HN-72 GK zone {zone}, EPSG:{gk}) or remove the prefix at the source"),
    "outside": (
        "point (E {e}, N {n}) is outside Lạng Sơn in EPSG:9215 and matches no known mistake (swapped X/Y, "
        "UTM 48N, 106° meridian, zone prefix): check the stated CRS and the values"),
}

# Fixes that can explain each code, most likely first (UTM 48N is what Ministry licences use, §3.3).
FIXES_FOR: dict[str, tuple[str, ...]] = {
    "swapped": ("swap_xy",),
    "utm48": ("from_utm48", "from_hn72"),
    "cm106": ("from_hn72_gk106", "from_tm3_106"),
    "utm48_or_cm106": ("from_utm48", "from_hn72_gk106", "from_tm3_106", "from_hn72"),
    "gk_prefix": ("drop_zone_prefix",),
}

FIXES: dict[str, str] = {
    "swap_xy": "swap easting and northing",
    "from_utm48": "reproject from VN-2000 / UTM 48N (EPSG:3405)",
    "from_hn72": "reproject from HN-72 Gauss-Krüger zone 18, CM 105° (EPSG:2044; '18' prefix added if absent)",
    "from_hn72_gk106": "reproject from HN-72 / GK 106 NE (EPSG:2093)",
    "from_tm3_106": "reproject from VN-2000 / TM-3 106-00 (EPSG:9211)",
    "drop_zone_prefix": "drop the 18/19 million zone prefix (keep if then inside, else read as HN-72 GK 2044/2045)",
    "from_epsg:<code>": "reproject from the given EPSG code",
}


def _fmt(v: float) -> str:
    return f"{v:,.0f}".replace(",", " ") if np.isfinite(v) else str(v)


def diagnosis_message(code: str, e: float, n: float) -> str:
    """DIAGNOSIS_TEXT[code] filled in with the point's values (E = x, N = y)."""
    zone = int(e // 1_000_000) if np.isfinite(e) and e >= 1_000_000 else 18
    return DIAGNOSIS_TEXT[code].format(e=_fmt(e), n=_fmt(n), zone=zone, gk=2044 if zone == 18 else 2045)


def inside_province(x, y) -> np.ndarray:
    x, y = np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64")
    return (x >= E_MIN) & (x <= E_MAX) & (y >= N_MIN) & (y <= N_MAX)


def _lands_inside(x: np.ndarray, y: np.ndarray, src: int) -> np.ndarray:
    if x.size == 0:
        return np.zeros(0, dtype=bool)
    return inside_province(*transform_xy(x, y, src, STORAGE_SRID))


def _strip_prefix(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    zone = np.floor(x / 1_000_000)
    return x - zone * 1_000_000, zone


def diagnose_xy(x, y) -> np.ndarray:
    """Per point, what is wrong with coordinates that should be EPSG:9215 (x = E, y = N); "ok" if inside.

    Codes: ok, missing, swapped, utm48, cm106, utm48_or_cm106, gk_prefix, outside (see DIAGNOSIS_TEXT). A
    candidate explanation only counts if reprojecting from it lands inside the province bounds.
    """
    x, y = np.asarray(x, dtype="float64").ravel(), np.asarray(y, dtype="float64").ravel()
    codes = np.full(x.shape, "outside", dtype=object)
    finite = np.isfinite(x) & np.isfinite(y)
    codes[~finite] = "missing"
    ok = finite & inside_province(x, y)
    codes[ok] = "ok"
    rest = finite & ~ok
    codes[rest & inside_province(y, x)] = "swapped"
    rest &= codes == "outside"
    northing = (y > 2_300_000) & (y < 2_550_000)  # loose: other projections shift northings by up to ~1 km

    gk = np.flatnonzero(rest & northing & (x >= 18_000_000) & (x < 20_000_000))
    if gk.size:
        stripped, zone = _strip_prefix(x[gk])
        plausible = inside_province(stripped, y[gk])
        for z, code in ((18, 2044), (19, 2045)):
            m = zone == z
            plausible[m] |= _lands_inside(x[gk][m], y[gk][m], code)
        codes[gk[plausible]] = "gk_prefix"

    band = np.flatnonzero(rest & northing & (x >= 530_000) & (x <= 760_000))
    if band.size:
        bx, by = x[band], y[band]
        utm = _lands_inside(bx, by, UTM48)
        cm = _lands_inside(bx, by, 2093) | _lands_inside(bx, by, TM3_106)
        codes[band[utm & ~cm]] = "utm48"
        codes[band[cm & ~utm]] = "cm106"
        codes[band[cm & utm]] = "utm48_or_cm106"
    return codes


def suggest_fix(code: str) -> str | None:
    """The most likely fix for a diagnosis code (None for ok / missing / outside). Only ever applied when the job
    declares it; for the ambiguous codes the message names the alternatives."""
    return FIXES_FOR.get(code, (None,))[0]


def applicable_fixes(code: str) -> tuple[str, ...]:
    """Every declared fix that can explain a diagnosis code: apply the first one the job declares."""
    return FIXES_FOR.get(code, ())


def apply_fix(x, y, fix: str) -> tuple[np.ndarray, np.ndarray]:
    """Apply a fix the officer declared for a job (see FIXES) to (E, N) arrays; result in EPSG:9215."""
    x, y = np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64")
    if fix == "swap_xy":
        return y.copy(), x.copy()
    if fix == "from_utm48":
        return transform_xy(x, y, UTM48, STORAGE_SRID)
    if fix == "from_hn72_gk106":
        return transform_xy(x, y, 2093, STORAGE_SRID)
    if fix == "from_tm3_106":
        return transform_xy(x, y, TM3_106, STORAGE_SRID)
    if fix == "from_hn72":
        return _from_gk_zones(np.where(x < 1_000_000, x + 18_000_000, x), y)
    if fix == "drop_zone_prefix":
        stripped, _ = _strip_prefix(x)
        keep = inside_province(stripped, y)  # prefix glued onto a TM-3 easting
        gx, gy = _from_gk_zones(x, y)
        return np.where(keep, stripped, gx), np.where(keep, y, gy)
    if fix.startswith("from_epsg:"):
        return transform_xy(x, y, int(fix.split(":", 1)[1]), STORAGE_SRID)
    raise ValueError(f"unknown coordinate fix {fix!r}; known fixes: {', '.join(FIXES)}")


def _from_gk_zones(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HN-72 GK eastings with zone prefix (18 -> EPSG:2044, 19 -> EPSG:2045) to EPSG:9215."""
    ox, oy = np.full(x.shape, np.nan), np.full(y.shape, np.nan)
    for zone, code in ((18, 2044), (19, 2045)):
        m = np.floor(x / 1_000_000) == zone
        if m.any():
            ox[m], oy[m] = transform_xy(x[m], y[m], code, STORAGE_SRID)
    return ox, oy


# --------------------------------------------------------------------------------------------- .prj files
@dataclass(frozen=True)
class PrjAnalysis:
    """What a .prj really means. ``epsg`` is None when the file must not be trusted without a declared CRS;
    ``candidate_epsg`` is then what the coordinates probably are."""

    epsg: int | None
    problem: str | None  # None, missing_datum_shift, rotation_sign, unrecognised
    message: str
    candidate_epsg: int | None = None


def _norm_name(name: str | None) -> str:
    return re.sub(r"[^a-z0-9]", "", (name or "").lower())


def _datum_kind(name: str | None) -> str:
    n = _norm_name(name).removeprefix("d")  # ESRI "D_Vietnam_2000"
    if "vietnam2000" in n or "vn2000" in n:
        return "vn2000"
    if n in ("wgs84", "wgs1984", "worldgeodeticsystem1984", "worldgeodeticsystem1984ensemble"):
        return "wgs84"
    if n in ("", "unknown", "unnamed", "notspecified") or n.startswith("notspecified"):
        return "unknown"
    return "other"


def _towgs84(wkt: str) -> tuple[float, ...] | None:
    m = re.search(r"TOWGS84\s*\[([^\]]*)\]", wkt, re.IGNORECASE)
    return tuple(float(v) for v in m.group(1).split(",")) if m else None


def _close(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return len(a) == len(b) and all(abs(p - q) < 1e-6 for p, q in zip(a, b))


def _vn2000_code(crs: CRS) -> int | None:
    """VN-2000 code whose projection parameters (WGS 84 ellipsoid, TM, lon_0, k, FE 500 000) the CRS has."""
    if crs.ellipsoid is None or abs(crs.ellipsoid.semi_major_metre - 6378137) > 0.01:
        return None
    conv = crs.to_json_dict().get("conversion") or {}
    if conv.get("method", {}).get("name") != "Transverse Mercator":
        return None
    p = {q.get("id", {}).get("code"): q["value"] for q in conv.get("parameters", [])}
    if p.get(8801, 0) != 0 or p.get(8806) != 500000 or p.get(8807, 0) != 0:
        return None
    lon, k = p.get(8802), p.get(8805)
    table = TM3_BY_MERIDIAN if k is not None and abs(k - 0.9999) < 1e-9 else (
        UTM_BY_MERIDIAN if k is not None and abs(k - 0.9996) < 1e-9 else {})
    return table.get(lon)


def analyse_prj(wkt: str) -> PrjAnalysis:
    """Decide which EPSG code a .prj (ESRI or OGC WKT1) really stands for, and what is wrong with it (§1.4)."""
    try:
        crs = CRS.from_user_input(wkt)
    except CRSError as exc:
        return PrjAnalysis(None, "unrecognised", f"the .prj cannot be parsed ({exc}); declare the CRS in the job")
    base = crs.source_crs if crs.is_bound else crs
    kind = _datum_kind(_datum_name(base))
    vn = _vn2000_code(base)
    towgs = _towgs84(wkt)
    if vn is not None and kind in ("vn2000", "wgs84", "unknown"):
        if towgs is not None and _close(towgs, TOWGS84_COORDINATE_FRAME):
            return PrjAnalysis(None, "rotation_sign", (
                f"the .prj carries TOWGS84 with the coordinate-frame rotation signs of EPSG:6960; software that "
                f"reads them as position-vector (GDAL WKT1, proj4js) misplaces points by ~0.74 m E / 0.20 m N. "
                f"The coordinates are probably EPSG:{vn}; declare `crs: EPSG:{vn}` to use them"), vn)
        if towgs is not None and _close(towgs, TOWGS84_9215):
            return PrjAnalysis(vn, None, f"VN-2000 (EPSG:{vn}) with the correct EPSG:6960 datum shift")
        if kind == "vn2000" and towgs is None:
            return PrjAnalysis(vn, None, f"VN-2000 (EPSG:{vn})")
        if kind == "vn2000":
            return PrjAnalysis(None, "unrecognised", (
                f"VN-2000 projection (EPSG:{vn}) with an unknown TOWGS84 {towgs}; declare `crs: EPSG:{vn}` if the "
                f"coordinates are VN-2000"), vn)
        if vn in (3405, 3406) and kind == "wgs84":
            return PrjAnalysis(32600 + (48 if vn == 3405 else 49), None, "WGS 84 / UTM")
        return PrjAnalysis(None, "missing_datum_shift", (
            f"the .prj describes the VN-2000 projection of EPSG:{vn} but names the datum "
            f"'{_datum_name(base)}' without a VN-2000 shift, so transforming with it misplaces points by ~200 m "
            f"(+195 m E / -111 m N in Lạng Sơn); if the coordinates are VN-2000, declare `crs: EPSG:{vn}`"), vn)
    epsg = crs.to_epsg(min_confidence=70) or _stated_authority(wkt, crs)
    if epsg is not None:
        return PrjAnalysis(epsg, None, f"{crs.name} (EPSG:{epsg})")
    return PrjAnalysis(None, "unrecognised", f"'{crs.name}' matches no EPSG code; declare the CRS in the job")


def _stated_authority(wkt: str, crs: CRS) -> int | None:
    """The WKT's own top-level AUTHORITY, if its definition really is that code's (axis order aside: GDAL WKT1
    of e.g. EPSG:2044 omits the north-east axes, which defeats PROJ's identification)."""
    m = re.search(r'AUTHORITY\[\s*"EPSG"\s*,\s*"?(\d+)"?\s*\]\s*\]\s*$', wkt.strip(), re.IGNORECASE)
    if not m or not _epsg_exists(int(m.group(1))):
        return None
    ref = CRS.from_epsg(int(m.group(1)))

    def params(c: CRS) -> list:
        return [round(p["value"], 9) for p in (c.to_json_dict().get("conversion") or {}).get("parameters", [])]

    same_base = ref.geodetic_crs is not None and ref.geodetic_crs.equals(crs.geodetic_crs)
    return int(m.group(1)) if same_base and params(ref) == params(crs) else None


# --------------------------------------------------------------------------------------------- stated CRS
def fold(text: str) -> str:
    """Lower case, Vietnamese diacritics removed (đ -> d), runs of whitespace collapsed."""
    text = unicodedata.normalize("NFKD", str(text).replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.lower().split())


_ACCEPTED = ("'VN-2000, KTT 107°15′, múi chiếu 3°', 'VN2000 kinh tuyến trục 107 15 múi 3', "
             "'VN-2000, KTT 105°, múi chiếu 6°', 'VN-2000 UTM 48N', 'HN-72', 'WGS 84', 'EPSG:9215' or '9215'")


def _meridian(t: str) -> float | None:
    """Central meridian in degrees from '107 15', '107.25', '107.15' (=107°15′), '105'."""
    m = (re.search(r"\b(?:ktt|kinh tuyen truc|kinh tuyen|central meridian|cm|lon_0)\s*=?\s*(1[01]\d)"
                   r"(?:\s*([.,]|\s)\s*(\d{1,2}))?(?!\d)", t)
         or re.search(r"(?<!\d)(10[2-9]|11[01])(?:\s*([.,]|\s)\s*(\d{1,2}))?(?!\d)", t))
    if not m:
        return None
    deg, sep, frac = int(m.group(1)), m.group(2), m.group(3)
    if frac is None:
        return float(deg)
    as_minutes = deg + int(frac) / 60
    known = TM3_BY_MERIDIAN.keys() | UTM_BY_MERIDIAN.keys() | HN72_BY_MERIDIAN.keys()
    if sep in ".," and float(f"{deg}.{frac}") in known:  # '107.25' decimal degrees
        return float(f"{deg}.{frac}")
    return as_minutes


def parse_crs_statement(text) -> int:
    """EPSG code for a CRS as written in a licence or table header, or in a `he_toa_do` column."""
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        text = str(int(text))
    t = fold(str(text) if text is not None else "")
    # Symbols (° ′ ' ") and dashes are separators; keep '.' and ',' for '107.25'.
    t = " ".join(re.sub(r"[^a-z0-9.,:]+", " ", t).split())
    code = re.fullmatch(r"(?:epsg\s*:?\s*)?(\d{4,5})(?:\.0)?", t) or re.search(r"epsg\s*:?\s*(\d{4,5})", t)
    if code:
        return _known_epsg(int(code.group(1)), text)
    hn72 = re.search(r"\bhn\s*72\b|ha\s*noi\s*(?:19)?72", t)
    t_wo = re.sub(r"\bvn\s*2000\b|\bhn\s*72\b|ha\s*noi\s*(?:19)?72|wgs\s*(?:19)?84", " ", t)
    utm = re.search(r"\butm\s*(?:zone\s*)?(48|49)", t_wo)
    zone_w = re.search(r"\bmui(?:\s*chieu)?\s*([36])\b|\btm\s*([36])\b|\b([36])\s*do\b", t_wo)
    width = int(next(g for g in zone_w.groups() if g)) if zone_w else None
    if re.search(r"wgs\s*(?:19)?84", t) and not re.search(r"\bvn\s*2000\b", t):
        if utm:
            return 32600 + int(utm.group(1))
        if _meridian(t_wo) is None:
            return 4326
        raise ValueError(f"CRS statement {text!r}: WGS 84 with a central meridian is not a known CRS; "
                         f"accepted forms: {_ACCEPTED}")
    if utm:
        return 3405 if utm.group(1) == "48" else 3406
    lon = _meridian(t_wo)
    if hn72:
        return HN72_BY_MERIDIAN.get(lon if lon is not None else 105.0) or _fail(text)
    if lon is None:
        _fail(text)
    if width == 6 or (width is None and lon == 111.0):
        return UTM_BY_MERIDIAN.get(lon) or _fail(text)
    if width is None and lon in UTM_BY_MERIDIAN:  # KTT 105° is both TM-3 zone 482 and UTM 48N
        raise ValueError(f"CRS statement {text!r}: central meridian 105° needs the zone width ('múi chiếu 3°' "
                         f"= EPSG:5897, 'múi chiếu 6°' = EPSG:3405)")
    return TM3_BY_MERIDIAN.get(lon) or _fail(text)


def _fail(text) -> int:
    raise ValueError(f"cannot tell the CRS from {text!r}; accepted forms: {_ACCEPTED}")


@lru_cache(maxsize=64)
def _epsg_exists(code: int) -> bool:
    try:
        CRS.from_epsg(code)
        return True
    except CRSError:
        return False


def _known_epsg(code: int, text) -> int:
    if not _epsg_exists(code):
        raise ValueError(f"CRS statement {text!r}: EPSG:{code} is not a known EPSG code")
    return code
