"""Cadastral parcels: per survey commune, sheets -> parcels -> attributes -> changes -> defects -> one file.

Source column names are the upper-case ``source:`` names of layers/cadastral_parcels.yml (DBF names, <= 10 chars).
"""
from __future__ import annotations

import unicodedata
import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyogrio
import shapely
import shapely.ops

from gisplatform import crs, geohash
from gisplatform.sample import names as N
from gisplatform.sample.geography import Geography, Unit
from gisplatform.sample.mosaic import SHEET_H, SHEET_W, ZONE_NAMES, build_sheet, sheet_slots, zone_weights
from gisplatform.sample.rand import rng
from gisplatform.text.legacy import encode_tcvn3, encode_vni

COLUMNS = ("MATHUA", "MAXA", "MAXA_BD", "SOTO", "SOTHUA", "DIENTICH", "DTPHAPLY", "MDSD", "THOIHAN",
           "NGUONGOC",
           "DIACHI", "LOAIDT", "TENCHU", "SOGIAYTO", "NGAYSINH", "DCTT", "SOGCN", "NGAYCN")
TEXT_COLUMNS = ("MDSD", "THOIHAN", "NGUONGOC", "DIACHI", "TENCHU", "DCTT", "SOGCN")  # may hold Vietnamese
DATE_COLUMNS = ("NGAYSINH", "NGAYCN")
ROW_DEFECTS = ("commune_code_unpadded", "legacy_land_use_code", "pre2025_commune_code", "duplicate_key",
               "self_intersection", "overlap", "area_mismatch", "bad_parcel_id", "unknown_land_use_code",
               "missing_required")
FILE_DEFECTS = ("tcvn3_text", "vni_text", "nfd_text", "vni_truncated", "prj_missing_datum_shift",
                "prj_missing")
DEFECT_FIELD = {"commune_code_unpadded": "MAXA", "legacy_land_use_code": "MDSD",
                "pre2025_commune_code": "MAXA",
                "duplicate_key": "SOTHUA", "self_intersection": None, "overlap": None,
                "area_mismatch": "DIENTICH",
                "bad_parcel_id": "MATHUA", "unknown_land_use_code": "MDSD", "missing_required": "SOTHUA"}

D_START, D_END = np.datetime64("2015-01-01"), np.datetime64("2026-10-31")
LAND_LAW_2024 = np.datetime64("2024-08-01")
MERGER_2025 = np.datetime64("2025-07-01")
MAX_PARCELS_PER_COMMUNE = 15_000

# Encoding / .prj plan, cycled per file.
VARIANTS = {
    "a": dict(encoding="utf-8", cpg=True, prj="vn2000_esri", dates="date"),
    "b": dict(encoding="tcvn3", cpg=False, prj="vn2000_esri", dates="dd/mm/yyyy"),
    "c": dict(encoding="vni", cpg=False, prj="vn2000_esri", dates="dd/mm/yyyy"),
    "d": dict(encoding="utf-8-nfd", cpg=True, prj="none", dates="date"),
    "e": dict(encoding="tcvn3", cpg=False, prj="wgs84_datum_tm107_15", dates="dd/mm/yyyy"),
}
SINGLE_VARIANTS = {
    "gpkg": dict(encoding="utf-8", cpg=False, prj="gpkg_epsg_9215", dates="date"),
    "shp": dict(encoding="tcvn3", cpg=False, prj="vn2000_esri", dates="dd/mm/yyyy"),
}
WIDTHS = {  # DBF text widths in bytes
    "utf-8": dict(MATHUA=12, MAXA=5, MAXA_BD=5, SOTHUA=8, MDSD=20, THOIHAN=40, NGUONGOC=20, DIACHI=120,
                  LOAIDT=3,
                  TENCHU=120, SOGIAYTO=12, DCTT=200, SOGCN=16),
    "tcvn3": dict(MATHUA=12, MAXA=5, MAXA_BD=5, SOTHUA=8, MDSD=20, THOIHAN=30, NGUONGOC=20, DIACHI=80,
                  LOAIDT=3,
                  TENCHU=80, SOGIAYTO=12, DCTT=120, SOGCN=16),
    # fixed widths of an old VNI-era template: long values are cut, sometimes between a letter and its mark
    "vni": dict(MATHUA=12, MAXA=5, MAXA_BD=5, SOTHUA=8, MDSD=12, THOIHAN=24, NGUONGOC=10, DIACHI=40, LOAIDT=3,
                TENCHU=24, SOGIAYTO=12, DCTT=72, SOGCN=12),
}
WIDTHS["utf-8-nfd"] = {k: min(254, int(v * 1.5)) for k, v in WIDTHS["utf-8"].items()}

PRJ_WGS84_TM = (
    'PROJCS["WGS_1984_TM_107_15",GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,'
    '298.257223563]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
    'PARAMETER["False_Easting",500000.0],PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",107.25],'
    'PARAMETER["Scale_Factor",0.9999],PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]')

# zone -> (generic land-use code, weight). Generic codes resolve by record date (see _resolve_codes).
LAND_USE_MIX = {
    "urban": [("ODT", 0.78), ("ODT+CLN", 0.06), ("TMD", 0.06), ("SKC", 0.02), ("DGD", 0.02), ("DYT", 0.01),
              ("TSC", 0.01), ("DCH", 0.01), ("DVH", 0.01), ("TIN", 0.01), ("CAN", 0.01)],
    "village": [("ONT+CLN", 0.45), ("ONT", 0.15), ("CLN", 0.15), ("HNK_flat", 0.08), ("LUK", 0.05),
                ("NTS", 0.03), ("DGD", 0.02), ("DKV_c", 0.02), ("TIN", 0.02), ("NTD", 0.02), ("DTL", 0.01)],
    "rice": [("LUC", 0.55), ("LUK", 0.20), ("HNK_flat", 0.12), ("NTS", 0.05), ("DTL", 0.04),
             ("ONT+CLN", 0.04)],
    "upland": [("HNK_up", 0.35), ("CLN", 0.35), ("RSX", 0.15), ("LUK_up", 0.05), ("DCS", 0.05),
               ("ONT+CLN", 0.05)],
    "forest": [("RSX", 0.50), ("RSN", 0.05), ("RPH", 0.25), ("DCS", 0.08), ("NCS", 0.10), ("RDD", 0.02)],
    "road": [("DGT", 1.0)],
}
_GENERIC = {"HNK_flat": ("BHK", "HNK"), "HNK_up": ("NHK", "HNK"), "LUK_up": ("LUN", "LUK"),
            "DKV_c": ("DSH", "DKV"), "RSN": ("RSX", "RSN")}
PRIVATE_USE = {"ODT", "ODT+CLN", "ONT", "ONT+CLN", "CLN", "BHK", "NHK", "HNK", "LUC", "LUK", "LUN", "NTS",
               "RSX",
               "TMD"}
RESIDENTIAL = {"ODT", "ODT+CLN", "ONT", "ONT+CLN"}
AGRICULTURE = {"CLN", "BHK", "NHK", "HNK", "LUC", "LUK", "LUN", "NTS", "RSX", "RSN"}
LEVEL_WORD = {"xa": "xã", "phuong": "phường", "thi_tran": "thị trấn"}


@dataclass
class SurveyCommune:
    unit: Unit  # the pre-2025 commune whose map sheets are numbered
    successor: Unit
    target: int
    variant: str  # a..e, or "gpkg"/"shp" in single-file mode
    path: str  # relative to the output folder
    slots: np.ndarray = None  # sheet SW corners, nearest to the anchor first
    anchor: tuple[float, float] = (0.0, 0.0)


@dataclass
class Licence:
    """What the parcels need to know about a mining licence (SKS land)."""

    polygon: object
    issued: np.datetime64
    holder: str
    sks: bool  # quarries, clay pits, coal: land coded SKS; river sand: not


@dataclass
class FileResult:
    path: str
    rows: int
    sheets: int
    info: dict
    defects: list[dict]
    changes: list[dict]
    personal: list[dict]
    first_sheet: dict | None = None  # a few clean parcels for the CRS-defect files


# --------------------------------------------------------------------------------------------- planning
def anchor_of(unit: Unit, geo: Geography) -> tuple[float, float]:
    """Where a commune's sheets start: its seed (the town for townships/wards), moved onto the nearest river or
    stream crossing the commune if there is one within 6 km, so parcels straddle the water."""
    sx, sy = unit.seed_xy
    seed_pt = shapely.Point(sx, sy)
    best, best_d = None, 6000.0
    for f in geo.water:
        if f.centerline is None or f.water_class == "kenh":
            continue
        inter = f.centerline.intersection(unit.geometry.buffer(-300))
        if inter.is_empty:
            continue
        p = shapely.ops.nearest_points(inter, seed_pt)[0]
        d = p.distance(seed_pt) * (0.5 if f.water_class == "song" else 1.0)
        if d < best_d:
            best, best_d = (p.x, p.y), d
    return best or (sx, sy)


def plan_communes(geo: Geography, communes: tuple[str, ...], parcels: int, single_file: str | None,
                  ) -> list[SurveyCommune]:
    new = geo.new_units
    old = geo.old_units
    unknown = [c for c in communes if c not in new]
    if unknown:
        raise ValueError(f"not post-2025 commune codes of Lạng Sơn: {unknown}; see layers/codes/admin_units.csv")
    survey = [p for c in communes for p in sorted(geo.predecessors(c), key=lambda u: u.code)]
    if parcels > MAX_PARCELS_PER_COMMUNE * len(survey):  # big runs: more communes, cycling through the province
        chosen = {u.code for u in survey}
        for u in sorted(old.values(), key=lambda u: u.code):
            if len(survey) * MAX_PARCELS_PER_COMMUNE >= parcels:
                break
            if u.code not in chosen:
                survey.append(u)
    per = parcels / len(survey)
    primary = len(survey)
    if parcels > MAX_PARCELS_PER_COMMUNE:  # spares take what a full commune could not hold (targets set on the fly)
        chosen = {u.code for u in survey}
        spares = [u for u in sorted(old.values(), key=lambda u: u.code) if u.code not in chosen]
        survey += spares[: max(4, primary // 2)]
    out = []
    for i, u in enumerate(survey):
        target = int(round(per * (i + 1))) - int(round(per * i)) if i < primary else 0
        if single_file:
            variant, path = single_file, f"cadastral/thua_dat.{single_file}"
        else:
            variant, path = "abcde"[i % 5], f"cadastral/thua_dat_{u.code}.shp"
        sc = SurveyCommune(unit=u, successor=new[u.successor], target=target, variant=variant, path=path)
        sc.anchor = anchor_of(u, geo)
        sc.slots = sheet_slots(u.geometry, sc.anchor)
        out.append(sc)
    return out


# --------------------------------------------------------------------------------------------- helpers
def _pick(r: np.random.Generator, seq, n: int) -> np.ndarray:
    return np.asarray(seq, dtype=object)[r.integers(0, len(seq), n)]


def _dmy(d: np.ndarray) -> np.ndarray:
    s = np.datetime_as_string(d.astype("datetime64[D]"), unit="D")
    return np.array([f"{x[8:10]}/{x[5:7]}/{x[0:4]}" if x != "NaT" else None for x in s], dtype=object)


def _villages(seed: int, code: str) -> list[str]:
    r = rng(seed, "villages", code)
    n = int(r.integers(7, 15))
    seen: list[str] = []
    while len(seen) < n:
        v = f"{N.VILLAGE_PREFIX[r.integers(len(N.VILLAGE_PREFIX))]} {N.VILLAGE_SUFFIX[r.integers(len(N.VILLAGE_SUFFIX))]}"
        if v not in seen:
            seen.append(v)
    return seen


def _place(unit: Unit) -> str:
    return f"{LEVEL_WORD[unit.level]} {unit.name}"


def _person_names(r: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    female = r.random(n) < 0.45
    sur = _pick(r, N.SURNAMES, n)
    mm, fm = _pick(r, N.MALE_MIDDLE, n), _pick(r, N.FEMALE_MIDDLE, n)
    mg, fg = _pick(r, N.MALE_GIVEN, n), _pick(r, N.FEMALE_GIVEN, n)
    names = np.array([f"{s} {f_m if f else m_m} {f_g if f else m_g}"
                      for s, f, m_m, f_m, m_g, f_g in zip(sur, female, mm, fm, mg, fg)], dtype=object)
    return names, female


def _resolve_codes(generic: np.ndarray, dates: np.ndarray) -> np.ndarray:
    out = generic.copy()
    before = dates < LAND_LAW_2024
    for g, (old, new) in _GENERIC.items():
        m = generic == g
        out[m & before] = old
        out[m & ~before] = new
    return out


def _encode_column(values: np.ndarray, encoding: str, width: int | None, cache: dict
                   ) -> tuple[np.ndarray, dict]:
    """Unicode values -> the str written with encoding="latin1" (legacy bytes as latin-1 code points), or NFD.

    Returns the written values and {index: (full, cut, mid_letter)} for values cut to ``width`` bytes (VNI)."""
    out = np.empty(len(values), dtype=object)
    cut: dict[int, tuple[str, str, bool]] = {}
    for i, v in enumerate(values):
        if v is None:
            out[i] = None
            continue
        hit = cache.get(v)
        if hit is None:
            if encoding == "utf-8-nfd":
                hit = (unicodedata.normalize("NFD", v), None)
            elif encoding == "tcvn3":
                hit = (encode_tcvn3(v).decode("latin-1"), None)
            elif encoding == "vni":
                raw = encode_vni(v)
                if width is not None and len(raw) > width:
                    bounds, pos = set(), 0
                    for ch in v:
                        pos += len(encode_vni(ch))
                        bounds.add(pos)
                    hit = (raw[:width].decode("latin-1"), (raw.decode("latin-1"), width not in bounds))
                else:
                    hit = (raw.decode("latin-1"), None)
            else:
                hit = (v, None)
            cache[v] = hit
        out[i] = hit[0]
        if hit[1] is not None:
            cut[i] = (hit[1][0], hit[0], hit[1][1])
    return out, cut


# --------------------------------------------------------------------------------------------- one commune
@dataclass
class Parcels:
    polys: np.ndarray
    zone: np.ndarray
    moved: np.ndarray
    interior_vertex: np.ndarray
    sheet_no: np.ndarray
    parcel_no: np.ndarray
    sheet_sw: dict = field(default_factory=dict)
    partial_sheets: list = field(default_factory=list)  # sheets cut short (north part only)
    base_area: np.ndarray = None


def build_parcels(seed: int, sc: SurveyCommune, change_f: float) -> Parcels:
    polys, zone, moved, inter, sheet_key, pno, base_area = [], [], [], [], [], [], []
    total = 0
    used = []
    partial: list[int] = []
    ax, ay = sc.anchor
    f_node = change_f * 0.5 / 4.0  # a moved interior node changes ~4 parcels
    for k, (sx, sy) in enumerate(sc.slots):
        if total >= sc.target:
            break
        d_km = float(np.hypot(sx + SHEET_W / 2 - ax, sy + SHEET_H / 2 - ay)) / 1000.0
        s = build_sheet(seed, sc.unit.code, k, (float(sx), float(sy)), zone_weights(sc.unit.urban, d_km),
                        f_node)
        n = len(s.polygons)
        if total + n > sc.target:  # the last sheet is only partly surveyed: its northern bands
            n = max(1, sc.target - total)
            s.polygons, s.zone, s.moved, s.interior_vertex, s.base_area = (
                s.polygons[:n], s.zone[:n], s.moved[:n], s.interior_vertex[:n], s.base_area[:n])
            partial.append(k)
        polys.append(s.polygons)
        zone.append(s.zone)
        moved.append(s.moved)
        inter.append(s.interior_vertex)
        base_area.append(s.base_area)
        sheet_key.append(np.full(n, k))
        pno.append(np.arange(1, n + 1))
        used.append((k, float(sx), float(sy)))
        total += n
    # sheets numbered north to south, west to east
    order_sheets = sorted(used, key=lambda t: (-t[2], t[1]))
    number = {k: i + 1 for i, (k, _, _) in enumerate(order_sheets)}
    sheet_no = np.array([number[k] for k in np.concatenate(sheet_key)]) if used else np.zeros(0, int)
    pno_all = np.concatenate(pno) if used else np.zeros(0, int)
    order = np.lexsort((pno_all, sheet_no))
    cat = (lambda parts: np.concatenate(parts)[order]) if used else (lambda parts: np.zeros(0))
    return Parcels(polys=cat(polys), zone=cat(zone), moved=cat(moved), interior_vertex=cat(inter),
                   base_area=cat(base_area),
                   sheet_no=sheet_no[order], parcel_no=pno_all[order],
                   sheet_sw={number[k]: (sx, sy) for k, sx, sy in used},
                   partial_sheets=sorted(number[k] for k in partial))


def _attributes(seed: int, sc: SurveyCommune, p: Parcels, geo: Geography, licences: list[Licence],
                rep_x: np.ndarray, rep_y: np.ndarray, areas: np.ndarray) -> dict[str, np.ndarray]:
    r = rng(seed, "attrs", sc.unit.code)
    n = len(p.polys)
    code, succ = sc.unit.code, sc.successor
    days = int((D_END - D_START).astype(int))
    rec = D_START + r.integers(0, days + 1, n).astype("timedelta64[D]")
    post = rec >= MERGER_2025
    # land use by zone, then the date's code version
    generic = np.empty(n, dtype=object)
    u = r.random(n)
    for zi, zname in enumerate(ZONE_NAMES):
        m = p.zone == zi
        if not m.any():
            continue
        codes, w = zip(*LAND_USE_MIX[zname])
        cw = np.cumsum(w) / np.sum(w)
        generic[m] = np.asarray(codes, dtype=object)[np.minimum(np.searchsorted(cw, u[m]), len(codes) - 1)]
    mdsd = _resolve_codes(generic, rec)
    # water surface and mining licences override
    flowing, lakes = _water_unions(geo)
    in_river = shapely.contains_xy(flowing, rep_x, rep_y)
    in_lake = shapely.contains_xy(lakes, rep_x, rep_y)
    mdsd[in_river] = "SON"
    mdsd[in_lake] = "MNC"
    sks_holder = np.full(n, None, dtype=object)
    u_sks = r.random(n)
    for lic in licences:
        if not lic.sks:
            continue
        m = shapely.contains_xy(lic.polygon, rep_x,
                                rep_y) & (rec >= lic.issued) & (u_sks < 0.7) & ~in_river & ~in_lake
        mdsd[m] = "SKS"
        sks_holder[m] = lic.holder
    first = np.array([c.split("+")[0] for c in mdsd], dtype=object)
    # land user type
    loaidt = np.empty(n, dtype=object)
    u_t = r.random(n)
    private = np.isin(mdsd, list(PRIVATE_USE))
    loaidt[private] = np.where(u_t[private] < 0.6, "GDC", "CNV")
    rule = {"TMD": ("TKT", 0.7), "SKC": ("TKT", 1.0), "SKS": ("TKT", 1.0), "RSX": ("TKT", 0.1),
            "DGD": ("TSN", 1.0), "DYT": ("TSN", 1.0), "TSC": ("TCN", 1.0), "CAN": ("TCN", 1.0),
            "RPH": ("TSN", 0.6), "RDD": ("TSN", 0.9), "RSN": ("TSN", 0.5), "TIN": ("CDS", 0.8),
            "TON": ("CDS", 0.8)}
    for c, (t, prob) in rule.items():
        m = (first == c) & (u_t < prob)
        loaidt[m] = t
    loaidt[np.array([v is None for v in loaidt])] = "UBQ"
    individual = np.isin(loaidt, ["GDC", "CNV"])
    # places
    villages = _villages(seed, code)
    vidx = (p.sheet_no * 3 + (r.random(n) < 0.2).astype(int)) % len(villages)
    village = np.asarray(villages, dtype=object)[vidx]
    urban_zone = p.zone == ZONE_NAMES.index("urban")
    block_no = 1 + (p.sheet_no * 2 + (p.parcel_no // 150)) % 12
    urban_word = N.URBAN_UNITS[int(r.integers(len(N.URBAN_UNITS)))]
    locality = np.where(urban_zone, np.array([f"{urban_word} {b}" for b in block_no], dtype=object),
                        np.array([f"Thôn {v}" for v in village], dtype=object))
    place_old, place_new = _place(sc.unit), _place(succ)
    diachi = np.array([f"{loc}, {place_new if po else place_old}" for loc, po in zip(locality, post)],
                      dtype=object)
    # people
    person, female = _person_names(r, n)
    birth_year = r.integers(1940, 2004, n)
    birth = ((birth_year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
             + r.integers(0, 365, n).astype("timedelta64[D]"))
    century = (birth_year >= 2000).astype(int)
    cccd = np.array([f"020{2 * c + int(f)}{y % 100:02d}{d:06d}" for c, f, y, d in
                     zip(century, female, birth_year, r.integers(0, 1_000_000, n))], dtype=object)
    household = (loaidt == "GDC") & (r.random(n) < 0.35)
    hh_names = np.array([f"Hộ {'bà' if f else 'ông'} {nm}" for nm, f in zip(person, female)], dtype=object)
    tenchu = np.where(household, hh_names, person)
    # the owner's permanent address: mostly the same commune
    elsewhere = r.random(n) < 0.15
    other_units = [u for u in geo.old_units.values() if u.code != code]
    other = [other_units[i] for i in r.integers(0, len(other_units), n)]
    owner_village = np.where(elsewhere, _pick(r, [f"{a} {b}" for a in N.VILLAGE_PREFIX[:6]
                                                  for b in N.VILLAGE_SUFFIX[:12]], n), village)
    new_units = geo.new_units
    dctt = []
    for i in range(n):
        home_old = other[i] if elsewhere[i] else sc.unit
        home_new = new_units[home_old.successor]
        loc = locality[i] if not elsewhere[i] else f"Thôn {owner_village[i]}"
        if post[i]:
            dctt.append(f"{loc}, {_place(home_new)}, tỉnh Lạng Sơn")
        else:
            dist = _district_name(geo, home_old)
            dctt.append(f"{loc}, {_place(home_old)}, {dist}, tỉnh Lạng Sơn")
    dctt = np.array(dctt, dtype=object)
    # organisations
    place_at = np.where(post, place_new, place_old)
    name_at = np.where(post, succ.name, sc.unit.name)
    org = np.full(n, None, dtype=object)
    kinds, companies = _pick(r, N.ORG_COMPANY_KIND, n), _pick(r, N.ORG_COMPANY_NAME, n)
    comp = np.array([f"{k} {c}" for k, c in zip(kinds, companies)], dtype=object)
    school = _pick(r, ("Trường THCS", "Trường Tiểu học", "Trường Mầm non"), n)
    for i in np.flatnonzero(~individual):
        t, c = loaidt[i], first[i]
        if t == "UBQ":
            org[i] = f"UBND {place_at[i]}"
        elif t == "TKT":
            org[i] = sks_holder[i] or comp[i]
        elif c == "DGD":
            org[i] = f"{school[i]} {name_at[i]}"
        elif c == "DYT":
            org[i] = f"Trạm Y tế {place_at[i]}"
        elif c == "CAN":
            org[i] = f"Công an {place_at[i]}"
        elif c == "TSC":
            org[i] = f"UBND {place_at[i]}"
        elif t == "TSN":
            org[i] = f"Ban Quản lý rừng phòng hộ {sc.unit.name}"
        elif t == "CDS":
            org[i] = f"Cộng đồng dân cư thôn {village[i]}"
        else:
            org[i] = f"UBND {place_at[i]}"
    tenchu = np.where(individual, tenchu, org)
    sogiayto = np.where(individual, cccd, None)
    ngaysinh = np.where(individual, birth, np.datetime64("NaT", "D"))
    dctt = np.where(individual, dctt, None)
    # certificate
    has_gcn = np.where(individual, r.random(n) < 0.88, (loaidt != "UBQ") & (r.random(n) < 0.7))
    series = _pick(r, N.GCN_SERIES, n)
    serial = r.integers(0, 1_000_000, n)
    sogcn = np.array([f"{s} {k:06d}" if h else None for s, k, h in zip(series, serial, has_gcn)],
                     dtype=object)
    legal_factor = np.where(r.random(n) < 0.85, 1.0, 1.0 + r.choice([-1, 1], n) * r.uniform(0.005, 0.04, n))
    # term and origin
    agri = np.isin(first, list(AGRICULTURE)) & individual
    leased = loaidt == "TKT"
    end = rec + np.timedelta64(50 * 365 + 12, "D")
    thoihan = np.full(n, "Lâu dài", dtype=object)
    fixed_2063 = r.random(n) < 0.6
    ends = _dmy(end)
    thoihan[agri] = np.where(fixed_2063[agri], "Đến ngày 15/10/2063",
                             np.array([f"Đến ngày {e}" for e in ends[agri]], dtype=object))
    thoihan[leased] = np.array([f"Đến ngày {e}" for e in ends[leased]], dtype=object)
    text_code = (rec < LAND_LAW_2024) | (r.random(n) < 0.2)
    resid = np.isin(mdsd, list(RESIDENTIAL))
    legacy_origin = np.where(resid, _pick(r, ("CNQ-KTT", "CNQ-CTT", "DG-CTT"), n),
                             np.where(leased, _pick(r, ("DT-THN", "DT-TML"), n), "DG-KTT"))
    numeric_origin = np.where(resid, _pick(r, ("2", "3", "4"), n),
                              np.where(leased, _pick(r, ("10", "11"), n),
                                       np.where(loaidt == "UBQ", "6", "5")))
    nguongoc = np.where(text_code, legacy_origin, numeric_origin)
    # parcel numbers sometimes carry a split suffix (125a, 125-1)
    suffix = r.random(n)
    sothua = np.array([f"{k}{'a' if s < 0.002 else ('-1' if s < 0.003 else '')}"
                       for k, s in zip(p.parcel_no, suffix)], dtype=object)
    return dict(
        rec=rec, post=post, generic=generic, zone=p.zone, individual=individual,
        MAXA=np.where(post, succ.code, code).astype(object), MAXA_BD=np.full(n, code, dtype=object),
        SOTO=p.sheet_no.astype(np.int32), SOTHUA=sothua, MDSD=mdsd, THOIHAN=thoihan, NGUONGOC=nguongoc,
        DIACHI=diachi, LOAIDT=loaidt, TENCHU=tenchu, SOGIAYTO=sogiayto, NGAYSINH=ngaysinh, DCTT=dctt,
        SOGCN=sogcn,
        NGAYCN=rec.copy(), legal_factor=legal_factor, has_gcn=has_gcn,
    )


def _water_unions(geo: Geography):
    cached = getattr(geo, "_unions", None)
    if cached is None:
        flowing = shapely.union_all([f.geometry for f in geo.water if f.water_class in ("song", "suoi", "kenh")])
        lakes = shapely.union_all([f.geometry for f in geo.water if f.water_class in ("ho", "ho_chua")])
        shapely.prepare(flowing)
        shapely.prepare(lakes)
        cached = geo._unions = (flowing, lakes)  # type: ignore[attr-defined]
    return cached


def _district_name(geo: Geography, unit: Unit) -> str:
    name = getattr(unit, "_district_name", None)
    if name is None:
        name = _DISTRICT_NAMES.get(unit.district_code, "")
    word = "thành phố" if unit.district_code == "178" else "huyện"
    return f"{word} {name.replace('Thành phố ', '')}"


_DISTRICT_NAMES = {"178": "Lạng Sơn", "180": "Tràng Định", "181": "Bình Gia", "182": "Văn Lãng",
                   "183": "Cao Lộc",
                   "184": "Văn Quan", "185": "Bắc Sơn", "186": "Hữu Lũng", "187": "Chi Lăng",
                   "188": "Lộc Bình",
                   "189": "Đình Lập"}


def _apply_attribute_changes(seed: int, sc: SurveyCommune, a: dict, change_f: float) -> np.ndarray:
    """Change run: a new owner / certificate / legal area on ``change_f / 2`` of the parcels (record date moved
    later inside the same period, so commune code and land-use code versions stay as they were)."""
    rc = rng(seed, "attr-change", sc.unit.code)
    n = len(a["MAXA"])
    u = rc.random(n)
    new_names, female = _person_names(rc, n)
    new_ids = rc.integers(0, 1_000_000, n)
    new_serial = rc.integers(0, 1_000_000, n)
    shift = rc.uniform(0, 1, n)
    chosen = u < change_f * 0.5
    if not chosen.any():
        return chosen
    rec = a["rec"]
    one = np.timedelta64(1, "D")
    era_end = np.where(rec < LAND_LAW_2024, LAND_LAW_2024 - one,
                       np.where(rec < MERGER_2025, MERGER_2025 - one, D_END))
    span = (era_end - rec).astype(int)
    new_rec = rec + (shift * span).astype(int).astype("timedelta64[D]")
    for i in np.flatnonzero(chosen):
        a["NGAYCN"][i] = new_rec[i]
        if a["individual"][i]:
            a["TENCHU"][i] = new_names[i]
            old = a["SOGIAYTO"][i]
            a["SOGIAYTO"][i] = f"{old[:6]}{new_ids[i]:06d}"
            a["SOGCN"][i] = f"CS {new_serial[i]:06d}"
        else:
            a["legal_factor"][i] = a["legal_factor"][i] * 1.01
            a["SOGCN"][i] = f"DA {new_serial[i]:06d}"
    return chosen


# --------------------------------------------------------------------------------------------- defects
def _bowtie(poly) -> object:
    ring = np.asarray(poly.exterior.coords)[:-1]
    for i in range(len(ring) - 1):
        c = ring.copy()
        c[[i, i + 1]] = c[[i + 1, i]]
        cand = shapely.Polygon(c)
        if not cand.is_valid:
            return cand
    return shapely.Polygon(ring[[0, 2, 1, 3]] if len(ring) >= 4 else ring)


def _push_vertex(poly, frame) -> tuple[object, float]:
    """Move one off-frame vertex outwards so the parcel overlaps its neighbour(s) by more than 1 m²."""
    sx, sy, ex, ey = frame
    ring = np.asarray(poly.exterior.coords)[:-1]
    cx, cy = poly.centroid.x, poly.centroid.y
    x, y = ring[:, 0], ring[:, 1]
    off = (x > sx + 0.01) & (x < ex - 0.01) & (y > sy + 0.01) & (y < ey - 0.01)
    best = None
    for i in np.flatnonzero(off):
        v = ring[i] - (cx, cy)
        v = v / max(np.hypot(*v), 1e-9)
        for d in (2.0, 3.0, 5.0, 8.0):
            c = ring.copy()
            c[i] = np.round(c[i] + v * d, 3)
            if not (sx < c[i, 0] < ex and sy < c[i, 1] < ey):
                break
            cand = shapely.Polygon(c)
            gain = cand.area - poly.area
            if cand.is_valid and gain > 1.5 and cand.contains(poly.buffer(-0.01)):
                best = (cand, gain)
                break
        if best:
            return best
    return poly, 0.0


def _select_defects(rd: np.random.Generator, n: int, rates: dict[str, float], applicable: dict,
                    seen: dict[str, int], force: bool) -> dict[str, np.ndarray]:
    u = rd.random((len(ROW_DEFECTS), n))
    taken = np.zeros(n, bool)
    out = {}
    for k, cls in enumerate(ROW_DEFECTS):
        rate = rates.get(cls, 0.0)
        app = applicable[cls] & ~taken
        sel = app & (u[k] < rate)
        if force and rate > 0 and seen.get(cls, 0) == 0 and not sel.any() and app.any():
            cand = np.flatnonzero(app)
            sel[cand[np.argmin(u[k][cand])]] = True
        out[cls] = sel
        taken |= sel
        if cls == "duplicate_key":
            taken |= applicable["_dup_source_mask"](sel)
    return out


# --------------------------------------------------------------------------------------------- the file
def generate_commune(seed: int, sc: SurveyCommune, geo: Geography, licences: list[Licence],
                     rates: dict[str, float], seen: dict[str, int], change_f: float, out_dir: Path, row_offset: int, append: bool,
                     as_of: str, force: bool) -> FileResult:
    p = build_parcels(seed, sc, change_f)
    n = len(p.polys)
    rel = sc.path
    variant = VARIANTS.get(sc.variant) or SINGLE_VARIANTS[sc.variant]
    if n == 0:
        return FileResult(rel, 0, 0, {}, [], [], [])
    pos = shapely.point_on_surface(p.polys)
    rep_x, rep_y = shapely.get_x(pos), shapely.get_y(pos)
    area = shapely.area(p.polys)
    a = _attributes(seed, sc, p, geo, licences, rep_x, rep_y, area)
    changed_attr = _apply_attribute_changes(seed, sc, a, change_f) if change_f > 0 else np.zeros(n, bool)
    geoms = p.polys.copy()
    # ---------------------------------------------------------------- defects
    rd = rng(seed, "defects", sc.unit.code)
    post = a["post"]
    first_code = np.array([c.split("+")[0] for c in a["MDSD"]], dtype=object)
    same_sheet_prev = np.concatenate([[False], p.sheet_no[1:] == p.sheet_no[:-1]])

    def dup_sources(sel):
        m = np.zeros(n, bool)
        m[np.flatnonzero(sel) - 1] = True
        return m

    applicable = {
        "commune_code_unpadded": np.ones(n, bool),
        "legacy_land_use_code": ((a["rec"] >= LAND_LAW_2024)
                                 & np.isin(a["generic"], ["HNK_flat", "HNK_up", "LUK_up", "LUK"])
                                 & np.isin(first_code, ["HNK", "LUK"])),
        "pre2025_commune_code": post & (sc.unit.code not in geo.new_units),  # a code no new unit reuses
        "duplicate_key": same_sheet_prev,
        "self_intersection": p.zone != ZONE_NAMES.index("road"),
        "overlap": p.interior_vertex & (p.zone != ZONE_NAMES.index("road")),
        "area_mismatch": np.ones(n, bool),
        "bad_parcel_id": np.ones(n, bool),
        "unknown_land_use_code": np.ones(n, bool),
        "missing_required": np.ones(n, bool),
        "_dup_source_mask": dup_sources,
    }
    sel = _select_defects(rd, n, rates, applicable, seen, force)
    dparam = rd.random((4, n))
    defects: list[dict] = []
    area_written = area.copy()
    overlap_gain = {}
    for i in np.flatnonzero(sel["overlap"]):
        sw = p.sheet_sw[int(p.sheet_no[i])]
        frame = (sw[0], sw[1], sw[0] + SHEET_W, sw[1] + SHEET_H)
        new, gain = _push_vertex(geoms[i], frame)
        if gain <= 0:
            sel["overlap"][i] = False
            continue
        geoms[i] = new
        area_written[i] = new.area
        overlap_gain[i] = gain
    for i in np.flatnonzero(sel["self_intersection"]):
        geoms[i] = _bowtie(geoms[i])  # the labelled area stays the surveyed one
    # parcel ID: GeoHash of the interior point (bad ones: of a point 60-400 m away)
    gx, gy = rep_x.copy(), rep_y.copy()
    moved_geom = p.moved | np.isin(np.arange(n), list(overlap_gain))
    if moved_geom.any():
        mp = shapely.point_on_surface(geoms[moved_geom])
        gx[moved_geom], gy[moved_geom] = shapely.get_x(mp), shapely.get_y(mp)
        area_written[p.moved] = shapely.area(geoms[p.moved])
    bad = np.flatnonzero(sel["bad_parcel_id"])
    ang = dparam[0, bad] * 2 * np.pi
    dist = np.maximum(60.0, 2.5 * np.sqrt(area[bad])) + 340 * dparam[1, bad]
    gx[bad] += np.cos(ang) * dist
    gy[bad] += np.sin(ang) * dist
    lon, lat = crs.transform_xy(gx, gy, 9215, 4326)
    mathua = geohash.encode(lon, lat, 12).astype(object)
    dientich = np.round(area_written, 1)
    mism = np.flatnonzero(sel["area_mismatch"])
    factor = 1 + np.where(dparam[2, mism] < 0.5, -1, 1) * (0.06 + 0.09 * dparam[3, mism])
    true_area = dientich[mism].copy()
    dientich[mism] = np.round(dientich[mism] * factor, 1)
    dtphaply = np.where(a["has_gcn"], np.round(np.round(p.base_area, 1) * a["legal_factor"], 1), np.nan)
    maxa = a["MAXA"].copy()
    mdsd = a["MDSD"].copy()
    sothua = a["SOTHUA"].copy()
    soto = a["SOTO"].copy()
    details: dict[int, tuple[str, object]] = {}
    for i in np.flatnonzero(sel["commune_code_unpadded"]):
        details[i] = ("commune_code_unpadded", f"MAXA {maxa[i]} written as {maxa[i].lstrip('0')}")
        maxa[i] = maxa[i].lstrip("0")
    for i in np.flatnonzero(sel["legacy_land_use_code"]):
        old = {"HNK_flat": "BHK", "HNK_up": "NHK", "LUK_up": "LUN", "LUK": "LUN"}[a["generic"][i]]
        rest = mdsd[i].split("+")[1:]
        details[i] = ("legacy_land_use_code", f"{mdsd[i]} written as {old} on a record of "
                                              f"{str(a['NGAYCN'][i])} (code retired 2024-08-01)")
        mdsd[i] = "+".join([old] + rest)
    for i in np.flatnonzero(sel["pre2025_commune_code"]):
        details[i] = ("pre2025_commune_code", f"record of {str(a['NGAYCN'][i])} carries the pre-2025 code "
                                              f"{sc.unit.code} instead of {sc.successor.code}")
        maxa[i] = sc.unit.code
    for i in np.flatnonzero(sel["duplicate_key"]):
        j = i - 1
        details[i] = ("duplicate_key", {"same_key_as_row": int(row_offset + j + 1),
                                        "original_parcel_no": str(sothua[i])})
        sothua[i], soto[i] = sothua[j], soto[j]
    for i in np.flatnonzero(sel["self_intersection"]):
        details[i] = ("self_intersection", "two consecutive vertices swapped (bow-tie)")
    for i, g in overlap_gain.items():
        details[i] = ("overlap", {"overlap_m2": round(float(g), 2)})
    for k, i in enumerate(mism):
        details[i] = ("area_mismatch", {"geometry_area_m2": float(true_area[k]),
                                        "written_m2": float(dientich[i])})
    for k, i in enumerate(bad):
        details[i] = ("bad_parcel_id", {"offset_m": round(float(dist[k]), 1)})
    for i in np.flatnonzero(sel["unknown_land_use_code"]):
        details[i] = ("unknown_land_use_code", f"{mdsd[i]} written as XYZ")
        mdsd[i] = "XYZ"
    for i in np.flatnonzero(sel["missing_required"]):
        details[i] = ("missing_required", {"original_parcel_no": str(sothua[i])})
        sothua[i] = None
    for i in sorted(details):
        cls, det = details[i]
        defects.append(dict(layer="cadastral_parcels", file=rel, row=int(row_offset + i + 1),
                            key=dict(sheet_commune_code=sc.unit.code, map_sheet_no=int(soto[i]),
                                     parcel_no=None if sothua[i] is None else str(sothua[i])),
                            defect=cls, field=DEFECT_FIELD[cls], detail=det))
    # ---------------------------------------------------------------- write
    enc = variant["encoding"]
    text = {"MATHUA": mathua, "MAXA": maxa, "MAXA_BD": a["MAXA_BD"], "SOTHUA": sothua, "MDSD": mdsd,
            "THOIHAN": a["THOIHAN"], "NGUONGOC": a["NGUONGOC"], "DIACHI": a["DIACHI"], "LOAIDT": a["LOAIDT"],
            "TENCHU": a["TENCHU"], "SOGIAYTO": a["SOGIAYTO"], "DCTT": a["DCTT"], "SOGCN": a["SOGCN"]}
    widths = WIDTHS["tcvn3" if enc == "tcvn3" else enc]
    truncated: list[dict] = []
    if enc != "utf-8":
        cache: dict = {}
        for col in TEXT_COLUMNS:
            width = widths[col] if enc == "vni" else None
            text[col], cut = _encode_column(text[col], enc, width, cache if width is None else {})
            for i, (full, short, mid) in sorted(cut.items()):
                truncated.append(dict(
                    layer="cadastral_parcels", file=rel, row=int(row_offset + i + 1),
                    key=dict(sheet_commune_code=sc.unit.code, map_sheet_no=int(soto[i]),
                             parcel_no=None if sothua[i] is None else str(sothua[i])),
                    defect="vni_truncated", field=col,
                    detail={"width_bytes": widths[col], "mid_letter": bool(mid),
                            "full_bytes_latin1": full, "written_latin1": short}))
    dates_as_text = variant["dates"] != "date"
    table = _arrow_table(text, soto, dientich, dtphaply, a["NGAYSINH"], a["NGAYCN"], geoms, widths,
                         dates_as_text,
                         multi=rel.endswith(".gpkg"))
    path = out_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = dict(geometry_name="geometry",
                  geometry_type="MultiPolygon" if rel.endswith(".gpkg") else "Polygon",
                  encoding=None if rel.endswith(".gpkg") else ("UTF-8" if enc.startswith("utf-8") else "latin1"))
    if rel.endswith(".gpkg"):
        kwargs["layer"] = "thua_dat"
    crs_arg = None if variant["prj"] == "none" else "EPSG:9215"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "'crs' was not provided": the no-.prj variant
        pyogrio.write_arrow(table, path, crs=crs_arg, append=append, **kwargs)
    if not rel.endswith(".gpkg") and sc.variant != "shp":  # single-file .shp: finished after the last append
        finish_shapefile(path, variant, as_of)
    # ---------------------------------------------------------------- report
    info = dict(path=rel, layer="cadastral_parcels", rows=n, survey_commune=sc.unit.code,
                survey_commune_name=sc.unit.name, commune=sc.successor.code, commune_name=sc.successor.name,
                sheets=len(p.sheet_sw), encoding=enc, encoding_variant=sc.variant, cpg=variant["cpg"],
                prj=variant["prj"], date_format=variant["dates"],
                sheet_frames={int(k): [round(v[0], 3), round(v[1], 3), round(v[0] + SHEET_W, 3),
                                       round(v[1] + SHEET_H, 3)]
                              for k, v in sorted(p.sheet_sw.items())},
                partial_sheets=[int(k) for k in p.partial_sheets])
    if enc == "vni":
        info["field_widths"] = {k: widths[k] for k in TEXT_COLUMNS}
    file_defects = []
    if not append:  # file-level entries once per file
        for cls, cond in (("tcvn3_text", enc == "tcvn3"), ("vni_text", enc == "vni"),
                          ("nfd_text", enc == "utf-8-nfd"),
                          ("prj_missing_datum_shift", variant["prj"] == "wgs84_datum_tm107_15"),
                          ("prj_missing", variant["prj"] == "none")):
            if cond:
                file_defects.append(dict(layer="cadastral_parcels", file=rel, row=None, key=None, defect=cls,
                                         field=None, detail=_FILE_DETAIL[cls]))
    changes = []
    changed = changed_attr | p.moved
    for i in np.flatnonzero(changed):
        kinds = [k for k, m in (("attributes", changed_attr), ("geometry", p.moved)) if m[i]]
        changes.append(dict(file=rel, row=int(row_offset + i + 1),
                            key=dict(sheet_commune_code=sc.unit.code, map_sheet_no=int(a["SOTO"][i]),
                                     parcel_no=str(a["SOTHUA"][i])), kind="+".join(kinds)))
    personal = []
    ind = np.flatnonzero(a["individual"])
    step = max(1, len(ind) // 12)
    for i in ind[::step][:12]:
        personal.append(dict(file=rel, row=int(row_offset + i + 1), name=str(a["TENCHU"][i]),
                             id_number=str(a["SOGIAYTO"][i]),
                             birth_date=_dmy(np.array([a["NGAYSINH"][i]]))[0],
                             birth_date_iso=str(a["NGAYSINH"][i]), address=str(a["DCTT"][i]),
                             certificate=None if a["SOGCN"][i] is None else str(a["SOGCN"][i])))
    first_sheet = None
    m = p.sheet_no == 1
    if m.any():
        first_sheet = dict(polys=p.polys[m][:20], sothua=a["SOTHUA"][m][:20], mdsd=a["MDSD"][m][:20])
    return FileResult(rel, n, len(p.sheet_sw), info, file_defects + defects + truncated, changes, personal,
                      first_sheet)


_FILE_DETAIL = {
    "tcvn3_text": "text fields hold TCVN3 (ABC) bytes, no .cpg; read with encoding latin1 and map TCVN3 -> Unicode",
    "vni_text": "text fields hold VNI-Windows bytes, no .cpg; read with encoding latin1 and map VNI -> Unicode",
    "nfd_text": "UTF-8 text in Unicode NFD (decomposed marks); normalise to NFC",
    "prj_missing_datum_shift": ("the .prj declares the WGS 84 datum with the TM 107°15' parameters: the coordinates "
                                "are VN-2000 (EPSG:9215) but transforming with the .prj skips the datum shift "
                                "(~+195 m E / -111 m N)"),
    "prj_missing": "no .prj: the coordinates are EPSG:9215",
}


def _arrow_table(text: dict, soto, dientich, dtphaply, ngaysinh, ngaycn, geoms, widths: dict,
                 dates_as_text: bool,
                 multi: bool) -> pa.Table:
    def f(name, typ, width=None):
        md = {b"GDAL:OGR:width": str(width).encode()} if width else None
        return pa.field(name, typ, metadata=md)

    fields, arrays = [], []
    for col in COLUMNS:
        if col == "SOTO":
            fields.append(f(col, pa.int32(), 4))
            arrays.append(pa.array(soto, pa.int32()))
        elif col in ("DIENTICH", "DTPHAPLY"):
            v = dientich if col == "DIENTICH" else dtphaply
            arr = pa.array(np.round(v, 1), pa.float64(), mask=np.isnan(v))
            arr = arr.cast(pa.decimal128(12, 1), safe=False)
            fields.append(f(col, pa.decimal128(12, 1)))
            arrays.append(arr)
        elif col in DATE_COLUMNS:
            d = ngaysinh if col == "NGAYSINH" else ngaycn
            d = np.asarray(d, dtype="datetime64[D]")
            if dates_as_text:
                fields.append(f(col, pa.string(), 10))
                arrays.append(pa.array(_dmy(d), pa.string()))
            else:
                fields.append(f(col, pa.date32()))
                arrays.append(pa.array(d, pa.date32(), mask=np.isnat(d)))
        else:
            fields.append(f(col, pa.string(), widths[col]))
            arrays.append(pa.array(list(text[col]), pa.string()))
    g = shapely.multipolygons(geoms, indices=np.arange(len(geoms))) if multi else geoms
    fields.append(pa.field("geometry", pa.binary(), metadata={b"ARROW:extension:name": b"geoarrow.wkb"}))
    arrays.append(pa.array(shapely.to_wkb(g), pa.binary()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def finish_shapefile(path: Path, variant: dict, as_of: str) -> None:
    """.cpg / .prj per the variant, and a fixed DBF 'last update' date so reruns are byte-identical."""
    stem = path.with_suffix("")
    cpg, prj = stem.with_suffix(".cpg"), stem.with_suffix(".prj")
    if not variant["cpg"] and cpg.exists():
        cpg.unlink()
    if variant["prj"] == "none" and prj.exists():
        prj.unlink()
    elif variant["prj"] == "wgs84_datum_tm107_15":
        prj.write_text(PRJ_WGS84_TM, encoding="ascii")
    set_dbf_date(stem.with_suffix(".dbf"), as_of)


def set_dbf_date(dbf: Path, as_of: str) -> None:
    d = date.fromisoformat(as_of)
    with open(dbf, "r+b") as fh:
        fh.seek(1)
        fh.write(bytes([d.year - 1900, d.month, d.day]))


def as_of_default() -> str:
    return str(D_END)


def _unused() -> None:  # keep linters quiet about imports used only in type positions
    _ = timedelta
