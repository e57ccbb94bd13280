"""Mining licences: a register sheet (one row per licence) and a corner-point sheet, as an .xlsx workbook.

Corner tables follow the licence annexes: X = northing, Y = easting, written as text in Vietnamese number formats,
points listed clockwise, sometimes with the first point repeated at the end. Provincial licences state
"VN-2000, KTT 107°15', múi chiếu 3°" (EPSG:9215), Ministry licences "VN-2000, KTT 105°, múi chiếu 6°" (UTM 48N,
EPSG:3405).
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import shapely
import shapely.ops
from shapely.geometry import LineString, Polygon

from gisplatform import crs
from gisplatform.sample import names as N
from gisplatform.sample.geography import Geography, to_9215
from gisplatform.sample.rand import rng

TM3 = "VN-2000, KTT 107°15', múi chiếu 3°"
UTM48 = "VN-2000, KTT 105°, múi chiếu 6°"
REGISTER_COLUMNS = ("so_giay_phep", "ngay_cap", "co_quan_cap", "loai_chu", "chu_giay_phep", "ma_so_thue",
                    "loai_khoang_san", "ten_mo", "ma_xa", "dien_tich_ha", "tru_luong_dia_chat",
                    "tru_luong_khai_thac",
                    "don_vi_tru_luong", "cong_suat", "don_vi_cong_suat", "phuong_phap", "muc_sau_thap_nhat",
                    "thoi_han_nam", "ngay_het_han", "trang_thai", "he_toa_do")
CORNER_COLUMNS = ("so_giay_phep", "khu", "diem", "x", "y")
DEFECTS = ("swapped_xy", "utm_stated_as_tm3", "self_intersection", "not_closed", "area_mismatch",
           "expired_but_active", "term_too_long", "orphan_corners", "duplicate_key")
MINISTRY_RENAMED = date(2025, 3, 1)
FILE = "mining/giay_phep_khoang_san.xlsx"

# kind: (mineral code, area ha range, term years range, districts, count)
KINDS = {
    "quarry": ("DA_VLXD", (3.0, 40.0), (10, 30), ("186", "187", "183", "185", "184"), 10),
    "cement": ("DA_VOI_XI_MANG", (25.0, 60.0), (20, 30), ("187", "186"), 2),
    "clay": ("SET_GACH_NGOI", (2.0, 15.0), (5, 20), ("188", "183", "187"), 5),
    "sand": ("CAT_SOI", (0.5, 10.0), (3, 10), (), 6),
    "fill": ("DAT_SAN_LAP", (1.0, 8.0), (2, 5), ("178", "183", "187", "188"), 3),
    "gold": ("VANG_SA_KHOANG", (2.0, 6.0), (5, 8), ("180", "181"), 1),
}
MINE_WORDS = {"quarry": "Mỏ đá vôi", "cement": "Mỏ đá vôi xi măng", "clay": "Mỏ sét gạch ngói",
              "sand": "Bãi cát sỏi lòng sông", "fill": "Mỏ đất san lấp", "gold": "Mỏ vàng sa khoáng",
              "coal": "Mỏ than"}


@dataclass
class Area:
    khu: str
    polygon: Polygon  # true polygon, EPSG:9215 (clockwise, corners rounded to the cm)


@dataclass
class MiningLicence:
    number: str
    kind: str
    mineral: str
    issued: date
    term: int
    authority: str
    holder_type: str
    holder: str
    tax_code: str
    mine_name: str
    areas: list[Area]
    stated_crs: str
    status: str
    expiry: date = None
    reserves: tuple = ()
    capacity: tuple = ()
    lowest_level: float = 0.0
    commune_code: str = ""
    over_parcels: bool = False
    defects: list = field(default_factory=list)

    @property
    def polygon(self):
        return shapely.union_all([a.polygon for a in self.areas])

    @property
    def area_ha(self) -> float:
        return round(sum(a.polygon.area for a in self.areas) / 1e4, 2)


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


def _clockwise(coords: np.ndarray) -> np.ndarray:
    poly = Polygon(coords)
    if poly.exterior.is_ccw:
        coords = coords[::-1]
    start = int(np.argmax(coords[:, 1] - 0.2 * coords[:, 0]))  # point 1: the northernmost (north-west) corner
    return np.roll(coords, -start, axis=0)


def _quarry_shape(r, cx, cy, area_m2) -> np.ndarray:
    k = int(r.integers(4, 9))
    ang = np.sort(r.uniform(0, 2 * np.pi, k))
    ang = np.sort((ang + np.linspace(0, 2 * np.pi, k, endpoint=False)) / 2)
    rad = r.uniform(0.75, 1.2, k)
    el, rot = r.uniform(1.0, 1.8), r.uniform(0, np.pi)
    x, y = np.cos(ang) * rad * el, np.sin(ang) * rad
    xr, yr = x * np.cos(rot) - y * np.sin(rot), x * np.sin(rot) + y * np.cos(rot)
    poly = shapely.convex_hull(shapely.multipoints(np.column_stack([xr, yr])))
    c = np.asarray(poly.exterior.coords)[:-1]
    s = np.sqrt(area_m2 / poly.area)
    return np.round(c * s + (cx, cy), 2)


def _strip_shape(r, line: LineString, frac: float, area_m2: float, width: float) -> np.ndarray:
    w = max(8.0, 0.45 * width)
    length = min(area_m2 / w, 0.8 * line.length)
    a = max(0.0, frac * line.length - length / 2)
    seg = shapely.ops.substring(line, a, a + length)
    k = int(r.integers(3, 6))
    pts = np.array([seg.interpolate(t, normalized=True).coords[0] for t in np.linspace(0, 1, k)])
    tang = np.gradient(pts, axis=0)
    tang /= np.hypot(tang[:, 0], tang[:, 1])[:, None]
    nrm = np.column_stack([-tang[:, 1], tang[:, 0]])
    left, right = pts + nrm * w / 2, pts - nrm * w / 2
    return np.round(np.vstack([left, right[::-1]]), 2)


def build_licences(seed: int, geo: Geography, over_parcels: list[tuple[str, float, float, bool]]
                   ) -> list[MiningLicence]:
    """~28 licences. ``over_parcels``: (district, x, y, on_river) points in surveyed sheets to put one on."""
    r = rng(seed, "mining")
    olds = list(geo.old_units.values())
    by_district: dict[str, list] = {}
    for u in olds:
        by_district.setdefault(u.district_code, []).append(u)
    rivers = {code: line for code, line in geo.river_lines}
    river_width = {f.code.split("-")[1]: f.width for f in geo.water if f.water_class == "song"}
    prov_numbers = list(r.permutation(np.arange(3, 180)))
    ministry_numbers = list(r.permutation(np.arange(120, 2900)))
    placed: list[Polygon] = []
    licences: list[MiningLicence] = []
    water = geo.water_union

    def free(poly):
        return all(not poly.intersects(p.buffer(50)) for p in placed) and geo.outline.contains(poly)

    def make(kind, coords_list, ministry=False, khu_names=None, over=False, holder_type="to_chuc"):
        mineral, _, (tmin, tmax), _, _ = KINDS.get(kind, ("THAN_NAU", None, (30, 30), (), 0))
        d0, d1 = date(2008, 1, 1).toordinal(), date(2026, 9, 30).toordinal()
        issued = date.fromordinal(d0 + int(r.integers(0, d1 - d0)))
        term = int(r.integers(tmin, tmax + 1))
        if ministry:
            num = int(ministry_numbers.pop())
            authority = "Bộ Tài nguyên và Môi trường" if issued < MINISTRY_RENAMED else "Bộ Nông nghiệp và Môi trường"
            number = f"{num}/GP-{'BTNMT' if issued < MINISTRY_RENAMED else 'BNNMT'}"
        else:
            num = int(prov_numbers.pop())
            authority = "UBND tỉnh Lạng Sơn"
            number = f"{num}/GP-UBND"
        if holder_type == "to_chuc":
            holder = str(N.MINING_COMPANIES[int(r.integers(len(N.MINING_COMPANIES)))])
            tax = f"4900{int(r.integers(0, 1_000_000)):06d}"
        else:
            sur = N.SURNAMES[int(r.integers(len(N.SURNAMES)))]
            given = N.MALE_GIVEN[int(r.integers(len(N.MALE_GIVEN)))]
            person = f"{sur} Văn {given}"
            holder = person if holder_type == "ca_nhan" else f"Hộ kinh doanh {person}"
            tax = f"80{int(r.integers(0, 100_000_000)):08d}"
        areas = [Area(khu=(khu_names[i] if khu_names else ""), polygon=Polygon(_clockwise(c)))
                 for i, c in enumerate(coords_list)]
        lic = MiningLicence(number=number, kind=kind, mineral=mineral, issued=issued, term=term,
                            authority=authority,
                            holder_type=holder_type, holder=holder, tax_code=tax, mine_name="", areas=areas,
                            stated_crs=UTM48 if ministry else TM3, status="Còn hiệu lực", over_parcels=over)
        lic.expiry = _add_years(issued, term)
        c = lic.polygon.centroid
        lic.commune_code = geo.unit_at(c.x, c.y, issued)
        place = next(u for u in olds if u.geometry.contains(c)) if any(u.geometry.contains(c) for u in olds) else olds[0]
        lic.mine_name = f"{MINE_WORDS[kind]} {place.name}" + (f" {len(licences) + 1}" if r.random() < 0.3 else "")
        a_m2 = lic.polygon.area
        if kind in ("quarry", "cement"):
            depth = r.uniform(30, 90)
            geo_res = round(a_m2 * depth * 0.8, -3)
            lic.reserves = (geo_res, round(geo_res * r.uniform(0.6, 0.8), -3), "m³")
            lic.capacity = (round(r.uniform(20_000, 300_000), -3), "m³/năm")
            lic.lowest_level = float(np.round(r.uniform(60, 250), 0))
        elif kind == "coal":
            lic.reserves = (round(a_m2 * 25 * 1.2, -4), round(a_m2 * 25 * 0.9, -4), "tấn")
            lic.capacity = (round(r.uniform(500_000, 1_200_000), -4), "tấn/năm")
            lic.lowest_level = -120.0
        elif kind == "sand":
            geo_res = round(a_m2 * r.uniform(2, 4), -2)
            lic.reserves = (geo_res, round(geo_res * 0.8, -2), "m³")
            lic.capacity = (round(r.uniform(5_000, 50_000), -2), "m³/năm")
            lic.lowest_level = float(np.round(-r.uniform(2, 5), 1))
        else:
            geo_res = round(a_m2 * r.uniform(3, 10), -2)
            lic.reserves = (geo_res, round(geo_res * 0.85, -2), "m³")
            lic.capacity = (round(r.uniform(10_000, 60_000), -2), "m³/năm")
            lic.lowest_level = float(np.round(r.uniform(10, 80), 0))
        as_of = date(2026, 10, 31)
        if lic.expiry < as_of:
            lic.status = ["Đóng cửa mỏ", "Trả lại", "Thu hồi"][int(r.integers(3))]
        else:
            lic.status = ["Còn hiệu lực"] * 8 + ["Gia hạn", "Điều chỉnh", "Tạm dừng"]
            lic.status = lic.status[int(r.integers(len(lic.status)))]
        placed.append(lic.polygon)
        licences.append(lic)
        return lic

    # 1. Na Dương brown coal: two sub-areas, Ministry licence, UTM 48N corners
    (cx, cy), = to_9215([(106.965, 21.705)])
    c1 = _quarry_shape(r, cx, cy, 3.2e6)
    c2 = _quarry_shape(r, cx + 2600, cy - 900, 1.5e6)
    coal = make("coal", [c1, c2], ministry=True, khu_names=["I", "II"])
    coal.holder, coal.term = N.COAL_COMPANY, 30
    coal.issued = date(2016, 5, 12)
    coal.number = f"{int(ministry_numbers.pop())}/GP-BTNMT"
    coal.authority = "Bộ Tài nguyên và Môi trường"
    coal.expiry = _add_years(coal.issued, 30)
    coal.status = "Còn hiệu lực"
    coal.commune_code = geo.unit_at(*coal.polygon.centroid.coords[0], coal.issued)
    coal.mine_name = "Mỏ than Na Dương"
    # 2. licences over the surveyed parcels (later conflict checks need hits)
    for k, (district, x, y, on_river) in enumerate(over_parcels):
        if on_river and k == len(over_parcels) - 1:
            code, line = min(((c, ln) for c, ln in rivers.items()),
                             key=lambda t: t[1].distance(shapely.Point(x, y)))
            frac = line.project(shapely.Point(x, y), normalized=True)
            coords = _strip_shape(r, line, frac, r.uniform(1.5, 4.0) * 1e4, river_width.get(code, 30.0))
            kind = "sand"
        else:
            kind = "quarry" if district in KINDS["quarry"][3] else "clay"
            coords = _quarry_shape(r, x + r.uniform(-60, 60), y + r.uniform(-60, 60),
                                   r.uniform(*(6, 14) if kind == "quarry" else (3, 8)) * 1e4)
        lic = make(kind, [coords], over=True)
        # active, and old enough for most parcel records to show SKS land
        d0 = date(2012, 1, 1).toordinal()
        lic.issued = date.fromordinal(d0 + int(r.integers(0, 2500)))
        lic.term = max(lic.term, 2027 - lic.issued.year + int(r.integers(1, 8)))
        lic.expiry = _add_years(lic.issued, lic.term)
        lic.status = "Còn hiệu lực"
        lic.commune_code = geo.unit_at(*lic.polygon.centroid.coords[0], lic.issued)
    # 3. the rest, province-wide
    for kind, (mineral, (amin, amax), _, districts, count) in KINDS.items():
        have = sum(1 for lic in licences if lic.kind == kind)
        tries = 0
        while have < count and tries < 400:
            tries += 1
            area = float(np.exp(r.uniform(np.log(amin), np.log(amax)))) * 1e4
            if kind == "sand":
                code = ("KC", "TH", "TR")[int(r.integers(3))]
                line = rivers[code]
                coords = _strip_shape(r, line, r.uniform(0.1, 0.9), area, river_width.get(code, 30.0))
            else:
                units = by_district[districts[int(r.integers(len(districts)))]]
                u = units[int(r.integers(len(units)))]
                minx, miny, maxx, maxy = u.geometry.bounds
                x, y = r.uniform(minx, maxx), r.uniform(miny, maxy)
                if not u.geometry.contains(shapely.Point(x, y)):
                    continue
                coords = _quarry_shape(r, x, y, area)
                if water.intersects(Polygon(coords)) and r.random() < 0.8:
                    continue
            poly = Polygon(coords)
            if not poly.is_valid or not free(poly):
                continue
            ministry = kind == "cement"
            holder_type = "to_chuc"
            if kind in ("sand",
                        "fill") and not any(lic.holder_type == "ca_nhan" for lic in licences if lic.kind == kind):
                holder_type = "ca_nhan"
            elif kind == "clay" and not any(lic.holder_type == "ho_kinh_doanh" for lic in licences):
                holder_type = "ho_kinh_doanh"
            make(kind, [coords], ministry=ministry, holder_type=holder_type)
            have += 1
    return licences


# --------------------------------------------------------------------------------------------- formatting
def _fmt(v: float, style: int) -> str:
    if style == 0:  # 2.380.800,00
        s = f"{v:,.2f}"
        return s.replace(",", "#").replace(".", ",").replace("#", ".")
    if style == 1:  # 2 380 800.00
        return f"{v:,.2f}".replace(",", " ")
    return f"{v:.1f}"  # 2380800.0


@dataclass
class MiningOutput:
    register: list[list]
    corners: list[list]
    defects: list[dict]
    licences: list[MiningLicence]


def tables(seed: int, licences: list[MiningLicence], rate: dict[str, float], force: bool, as_of: date
           ) -> MiningOutput:
    rd = rng(seed, "mining-defects")
    n = len(licences)
    u = rd.random((len(DEFECTS), n))
    order = rd.permutation(n)
    taken: set[int] = set()
    chosen: dict[str, list[int]] = {}
    for k, cls in enumerate(DEFECTS):
        p = rate.get(cls, 0.0)

        def ok(i):
            lic = licences[i]
            if i in taken or lic.kind == "coal":
                return False
            if cls in ("swapped_xy", "utm_stated_as_tm3"):
                return lic.stated_crs == TM3
            if cls == "self_intersection":
                return len(lic.areas) == 1 and len(lic.areas[0].polygon.exterior.coords) >= 5
            if cls == "expired_but_active":
                return lic.status == "Còn hiệu lực"
            return True
        sel = [i for i in range(n) if ok(i) and u[k, i] < p]
        if force and p > 0 and not sel:
            cand = [int(i) for i in order if ok(int(i))]
            sel = cand[:1]
        chosen[cls] = sel
        taken.update(sel)
    rc = rng(seed, "mining-format")
    register, corners, defects = [], [], []
    lic_defect = {i: cls for cls, idx in chosen.items() for i in idx}
    for i, lic in enumerate(licences):
        cls = lic_defect.get(i)
        area_ha = lic.area_ha
        issued, expiry, term, status = lic.issued, lic.expiry, lic.term, lic.status
        if cls == "area_mismatch":
            stated = round(area_ha * (1 + rc.choice([-1, 1]) * rc.uniform(0.05, 0.10)), 2)
            detail = {"true_area_ha": area_ha, "stated_area_ha": stated}
            area_ha = stated
        elif cls == "expired_but_active":
            expiry = date.fromordinal(as_of.toordinal() - int(rc.integers(30, 700)))
            issued = _add_years(expiry, -term)
            status = "Còn hiệu lực"
            detail = {"ngay_het_han": expiry.isoformat(), "trang_thai": status}
        elif cls == "term_too_long":
            term = 35
            expiry = _add_years(issued, 35)
            detail = {"thoi_han_nam": 35, "max_years": 30}
        else:
            detail = None
        lic.issued, lic.expiry, lic.term, lic.status = issued, expiry, term, status
        stated_crs = lic.stated_crs
        row = [lic.number, issued, lic.authority, lic.holder_type, lic.holder, lic.tax_code, lic.mineral,
               lic.mine_name, lic.commune_code, area_ha, lic.reserves[0], lic.reserves[1], lic.reserves[2],
               lic.capacity[0], lic.capacity[1], "Lộ thiên", lic.lowest_level, term, expiry, status,
               stated_crs]
        register.append(row)
        reg_row = len(register) + 1
        if cls in ("area_mismatch", "expired_but_active", "term_too_long"):
            field = {"area_mismatch": "dien_tich_ha", "expired_but_active": "ngay_het_han",
                     "term_too_long": "thoi_han_nam"}[cls]
            defects.append(_entry("giay_phep", reg_row, lic.number, cls, field, detail))
        if lic.holder_type != "to_chuc":
            defects.append(_entry("giay_phep", reg_row, lic.number, "personal_holder", "chu_giay_phep",
                                  {"loai_chu": lic.holder_type,
                                   "note": "not a defect: mask the holder's name"},
                                  severity="info"))
        style = int(rc.integers(3))
        repeat_first = rc.random() < 0.3
        first_corner_row = len(corners) + 2
        for area in lic.areas:
            xy = np.asarray(area.polygon.exterior.coords)[:-1]
            if lic.stated_crs == UTM48 or cls == "utm_stated_as_tm3":
                ex, ny = crs.transform_xy(xy[:, 0], xy[:, 1], 9215, 3405)
                xy = np.round(np.column_stack([ex, ny]), 2)
            if cls == "self_intersection":
                xy = xy.copy()
                xy[[1, 2]] = xy[[2, 1]]
            labels = [str(k + 1) for k in range(len(xy))]
            if cls == "not_closed":
                off = rc.uniform(2, 6) * np.array([np.cos(a := rc.uniform(0, 2 * np.pi)), np.sin(a)])
                xy = np.vstack([xy, np.round(xy[0] + off, 2)])
                labels.append("1")
            elif repeat_first:
                xy = np.vstack([xy, xy[:1]])
                labels.append("1")
            for lab, (e, nn) in zip(labels, xy):
                x_text, y_text = _fmt(nn, style), _fmt(e, style)  # X = northing, Y = easting
                if cls == "swapped_xy":
                    x_text, y_text = y_text, x_text
                corners.append([lic.number, area.khu, lab, x_text, y_text])
        last_corner_row = len(corners) + 1
        rows = {"first_row": first_corner_row, "last_row": last_corner_row}
        if cls == "swapped_xy":
            defects.append(_entry("toa_do", first_corner_row, lic.number, cls, "x",
                                  {**rows, "note": "x holds the easting and y the northing"}))
        elif cls == "utm_stated_as_tm3":
            defects.append(_entry("toa_do", first_corner_row, lic.number, cls, "x",
                                  {**rows, "he_toa_do": stated_crs, "coordinates_crs": "EPSG:3405"}))
        elif cls == "self_intersection":
            defects.append(_entry("toa_do", first_corner_row + 1, lic.number, cls, None,
                                  {**rows, "note": "points 2 and 3 swapped"}))
        elif cls == "not_closed":
            defects.append(_entry("toa_do", last_corner_row, lic.number, cls, None,
                                  {**rows, "note": "closing point differs from point 1 by a few metres"}))
        elif cls == "orphan_corners":
            pass
    # orphan corners: a corner table whose licence number is not in the register
    for i in chosen.get("orphan_corners", []):
        lic = licences[i]
        number = f"{int(rc.integers(180, 250))}/GP-UBND"
        start = len(corners) + 2
        xy = np.asarray(lic.areas[0].polygon.exterior.coords)[:-1] + np.array([350.0, -420.0])
        for k, (e, nn) in enumerate(np.round(xy, 2)):
            corners.append([number, "", str(k + 1), _fmt(nn, 1), _fmt(e, 1)])
        defects.append(_entry("toa_do", start, number, "orphan_corners", "so_giay_phep",
                              {"first_row": start, "last_row": len(corners) + 1,
                               "note": "no register row has this licence number"}))
    # duplicate key: the same licence entered twice (second time as extended)
    for i in chosen.get("duplicate_key", []):
        row = list(register[i])
        row[19] = "Gia hạn"
        row[18] = _add_years(row[18], 5)
        register.append(row)
        defects.append(_entry("giay_phep", len(register) + 1, row[0], "duplicate_key", "so_giay_phep",
                              {"same_key_as_row": i + 2}))
    return MiningOutput(register=register, corners=corners, defects=defects, licences=licences)


def _entry(sheet, row, number, cls, field, detail, severity="defect"):
    e = dict(layer="mining_licences", file=FILE, sheet=sheet, row=int(row), data_row=int(row) - 1,
             key={"licence_no": number}, defect=cls, field=field, detail=detail)
    if severity != "defect":
        e["severity"] = severity
    return e


def write_xlsx(out: MiningOutput, path: Path, as_of: date) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "giay_phep"
    ws.append(list(REGISTER_COLUMNS))
    for row in out.register:
        ws.append(row)
    for r in ws.iter_rows(min_row=2):
        for c in r:
            if isinstance(c.value, date):
                c.number_format = "DD/MM/YYYY"
    for c in ws[1]:
        c.font = Font(bold=True)
    ws2 = wb.create_sheet("toa_do")
    ws2.append(list(CORNER_COLUMNS))
    for row in out.corners:
        ws2.append(row)
    for r in ws2.iter_rows(min_row=2):
        for c in r:
            c.number_format = "@"
    for c in ws2[1]:
        c.font = Font(bold=True)
    stamp = datetime(as_of.year, as_of.month, as_of.day)
    wb.properties.created = stamp
    wb.properties.modified = stamp
    wb.properties.creator = "gisplatform.sample"
    buf = io.BytesIO()
    wb.save(buf)
    write_zip_deterministic(buf.getvalue(), path, stamp.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _core_properties(stamp: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        '<dc:creator>gisplatform.sample</dc:creator>'
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified>'
        '</cp:coreProperties>'
    ).encode("utf-8")


def write_zip_deterministic(data: bytes, path: Path, stamp: str) -> None:
    """Rewrite a zip (xlsx) with fixed member timestamps so identical content gives identical bytes."""
    src = zipfile.ZipFile(io.BytesIO(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=(2026, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                # openpyxl stamps "modified" with the time of saving, and its namespace prefixes depend on what
                # other libraries registered with ElementTree in this process: write our own, canonical one
                content = _core_properties(stamp)
            dst.writestr(zi, content)
