"""Water sources (GPKG) and water-exploitation licences (CSV, one row per intake or well)."""
from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import numpy as np
import shapely

from gisplatform import crs
from gisplatform.sample import names as N
from gisplatform.sample.geography import TOWNS, Geography, to_9215
from gisplatform.sample.rand import rng

SOURCES_FILE = "water/nguon_nuoc.gpkg"
LICENCES_FILE = "water/giay_phep_tai_nguyen_nuoc.csv"
TM3 = "VN-2000, KTT 107°15', múi chiếu 3°"
UTM48 = "VN-2000, KTT 105°, múi chiếu 6°"
LICENCE_COLUMNS = ("so_giay_phep", "so_hieu_diem", "ngay_cap", "co_quan_cap", "loai_chu", "chu_giay_phep",
                   "ten_cong_trinh", "ma_xa", "loai_nguon", "nguon_nuoc", "muc_dich", "luu_luong",
                   "chieu_sau",
                   "tang_chua_nuoc", "thoi_han_nam", "ngay_het_han", "trang_thai", "he_toa_do", "x", "y")
DEFECTS = ("swapped_xy", "outside_province")


def water_sources_table(geo: Geography):
    import pyarrow as pa

    f = geo.water
    cols = {
        "ma_nguon_nuoc": pa.array([w.code for w in f]),
        "ten": pa.array([w.name for w in f]),
        "loai": pa.array([w.water_class for w in f]),
        "luu_vuc": pa.array([w.basin for w in f]),
        "cap_quan_ly": pa.array([w.level for w in f]),
        "do_thi": pa.array([bool(w.urban) for w in f]),
        "lap_hanh_lang": pa.array([bool(w.needs_corridor) for w in f]),
        "cap_nuoc": pa.array([bool(w.water_supply) for w in f]),
    }
    fields = [pa.field(k, v.type) for k, v in cols.items()]
    fields.append(pa.field("geometry", pa.binary(), metadata={b"ARROW:extension:name": b"geoarrow.wkb"}))
    arrays = list(cols.values()) + [pa.array(shapely.to_wkb(np.array([w.geometry for w in f], dtype=object)))]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _dmy(d: date) -> str:
    return d.strftime("%d/%m/%Y")


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


def build_licences(seed: int, geo: Geography, rate: dict[str, float], force: bool, as_of: date
                   ) -> tuple[list[list], list[dict]]:
    r = rng(seed, "water-licences")
    rivers = {f.code: f for f in geo.water if f.water_class in ("song", "ho_chua", "suoi")}
    towns = {c: tuple(to_9215([ll])[0]) for c, ll in TOWNS.items()}
    numbers = list(r.permutation(np.arange(181, 400)))
    specs = [  # (kind, source code, purpose, holder index, ministry, UTM48 stated, points)
        ("mat", "LS-KC-04", "Sinh hoạt", 0, False, False, 2),
        ("mat", "LS-KC-06", "Sinh hoạt", 5, False, False, 1),
        ("mat", "LS-BK", "Thủy điện", 7, True, True, 1),
        ("mat", "LS-KC-02", "Thủy điện", 2, True, False, 1),
        ("mat", "LS-H-TK", "Tưới", 1, False, False, 1),
        ("mat", "LS-H-NT", "Tưới", 1, False, False, 1),
        ("mat", "LS-TH-02", "Công nghiệp", 8, False, True, 1),
        ("ngam", "06187", "Sinh hoạt", 3, False, False, 4),
        ("ngam", "06385", "Công nghiệp", 6, False, False, 3),
        ("ngam", "06040", "Sinh hoạt", 5, False, False, 3),
        ("ngam", "06124", "Sinh hoạt", 5, False, True, 2),
        ("ngam", "05977", "Công nghiệp", 4, False, False, 3),
        ("ngam", "06529", "Sinh hoạt", 9, False, False, 2),
        ("ngam", "06253", "Nuôi trồng thủy sản", -1, False, False, 1),
        ("mat", "LS-S01", "Nuôi trồng thủy sản", -2, False, False, 1),
    ]
    rows: list[list] = []
    meta: list[dict] = []
    for kind, src, purpose, holder_i, ministry, utm, npts in specs:
        d0, d1 = date(2012, 1, 1).toordinal(), date(2026, 9, 30).toordinal()
        issued = date.fromordinal(d0 + int(r.integers(0, d1 - d0)))
        term = int(r.integers(5, 16)) if kind == "mat" else int(r.integers(3, 11))
        expiry = _add_years(issued, term)
        if ministry:
            renamed = issued >= date(2025, 3, 1)
            authority = "Bộ Nông nghiệp và Môi trường" if renamed else "Bộ Tài nguyên và Môi trường"
            number = f"{int(numbers.pop()) + 600}/GP-{'BTNMT' if issued < date(2025, 3, 1) else 'BNNMT'}"
        else:
            authority = "UBND tỉnh Lạng Sơn"
            number = f"{int(numbers.pop())}/GP-UBND"
        if holder_i >= 0:
            holder_type, holder = "to_chuc", N.WATER_COMPANIES[holder_i]
        else:
            sur = N.SURNAMES[int(r.integers(len(N.SURNAMES)))]
            person = f"{sur} Văn {N.MALE_GIVEN[int(r.integers(len(N.MALE_GIVEN)))]}"
            if holder_i == -1:
                holder_type, holder = "ca_nhan", person
            else:
                holder_type, holder = "ho_kinh_doanh", f"Hộ kinh doanh {person}"
        status = "Còn hiệu lực" if expiry >= as_of else "Hết hạn"
        pts = []
        if kind == "mat":
            f = rivers[src]
            if f.centerline is not None:
                line = f.centerline
                for k in range(npts):
                    t = r.uniform(0.3, 0.7) + 0.02 * k
                    p = np.array(line.interpolate(t, normalized=True).coords[0])
                    q = np.array(line.interpolate(min(1, t + 0.001), normalized=True).coords[0])
                    tang = (q - p) / max(np.hypot(*(q - p)), 1e-9)
                    side = 1 if r.random() < 0.5 else -1
                    pts.append(p + side * np.array([-tang[1], tang[0]]) * (f.width / 2 + 2.0))
            else:  # a reservoir: intake on the shore
                ring = f.geometry.geoms[0].exterior
                pts.append(np.array(ring.interpolate(r.uniform(0, 1), normalized=True).coords[0]))
            source_name, depth, aquifer, flow = f.name, None, None, round(float(r.uniform(200, 20000)), -1)
            work = {"Sinh hoạt": "Trạm cấp nước", "Thủy điện": "Nhà máy thủy điện",
                    "Tưới": "Công trình thủy lợi",
                    "Công nghiệp": "Trạm bơm", "Nuôi trồng thủy sản": "Trại nuôi cá"}[purpose] + f" {f.name}"
        else:
            cx, cy = towns.get(src) or geo.new_units[src].seed_xy
            ang0 = r.uniform(0, 2 * np.pi)
            for k in range(npts):
                a = ang0 + k * 2 * np.pi / npts
                d = r.uniform(150, 400)
                pts.append(np.array([cx + d * np.cos(a), cy + d * np.sin(a)]))
            source_name = "Nước dưới đất"
            depth = float(np.round(r.uniform(40, 120), 0))
            aquifer = ["Tầng chứa nước khe nứt - karst Đồng Giao", "Tầng chứa nước lỗ hổng Holocen",
                       "Tầng chứa nước khe nứt Bắc Sơn"][int(r.integers(3))]
            flow = round(float(r.uniform(50, 1500)), 0)
            work = f"Giếng khoan khai thác nước {geo.new_units.get(src).name if src in geo.new_units else ''}".strip()
        code = geo.unit_at(*pts[0], issued)
        for k, p in enumerate(pts):
            e, n = float(p[0]), float(p[1])
            if utm:
                ex, ny = crs.transform_xy([e], [n], 9215, 3405)
                e, n = float(ex[0]), float(ny[0])
            rows.append([number, str(k + 1), _dmy(issued), authority, holder_type, holder, work, code,
                         "Nước mặt" if kind == "mat" else "Nước dưới đất", source_name, purpose,
                         flow, depth, aquifer, term, _dmy(expiry), status, UTM48 if utm else TM3,
                         round(n, 2), round(e, 2)])
            meta.append(dict(utm=utm, true_xy=(float(p[0]), float(p[1])), number=number, point=str(k + 1)))
    defects: list[dict] = []
    for i, m in enumerate(meta):
        if m["utm"]:
            defects.append(_entry(i, m, "utm48_valid", "he_toa_do",
                                  {"he_toa_do": UTM48, "coordinates_crs": "EPSG:3405",
                                   "note": "not a defect: stated UTM 48N and the coordinates are UTM 48N"},
                                  severity="info"))
    rd = rng(seed, "water-defects")
    u = rd.random((len(DEFECTS), len(rows)))
    taken = {i for i, m in enumerate(meta) if m["utm"]}
    for k, cls in enumerate(DEFECTS):
        p = rate.get(cls, 0.0)
        sel = [i for i in range(len(rows)) if i not in taken and u[k, i] < p]
        if force and p > 0 and not sel:
            cand = [i for i in np.argsort(u[k]) if i not in taken]
            sel = [int(cand[0])] if cand else []
        for i in sel:
            taken.add(i)
            row = rows[i]
            if cls == "swapped_xy":
                row[18], row[19] = row[19], row[18]
                defects.append(_entry(i, meta[i], cls, "x",
                                      {"note": "x holds the easting and y the northing"}))
            else:
                # a typo in the thousands: the point lands well outside the province
                x, y = meta[i]["true_xy"]
                outline = geo.outline
                near = shapely.ops.nearest_points(outline.exterior, shapely.Point(x, y))[0]
                v = np.array([near.x - x, near.y - y])
                v = v / max(np.hypot(*v), 1e-9)
                q = np.array([near.x, near.y]) + v * rd.uniform(4000, 9000)
                if outline.contains(shapely.Point(*q)):
                    q = np.array([x + 60_000.0, y])
                row[18], row[19] = round(float(q[1]), 2), round(float(q[0]), 2)
                defects.append(_entry(i, meta[i], cls, "x", {"true_x": round(y, 2), "true_y": round(x, 2)}))
    return rows, defects


def _entry(i, m, cls, field, detail, severity="defect"):
    e = dict(layer="water_licences", file=LICENCES_FILE, row=i + 2, data_row=i + 1,
             key={"licence_no": m["number"], "point_no": m["point"]}, defect=cls, field=field, detail=detail)
    if severity != "defect":
        e["severity"] = severity
    return e


def write_csv(rows: list[list], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(LICENCE_COLUMNS)
        for row in rows:
            w.writerow(["" if v is None else (f"{v:.2f}" if isinstance(v, float) and k >= 18 else v)
                        for k, v in enumerate(row)])


import shapely.ops  # noqa: E402  (nearest_points)
