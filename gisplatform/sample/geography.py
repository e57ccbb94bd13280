"""Synthetic but plausible geography of Lạng Sơn in EPSG:9215: province outline, the 65 post-2025 units and their
predecessors (an exact tiling on a millimetre grid), rivers, streams, canals, lakes and reservoirs.

Only the rough layout is real (where the former districts, towns and main rivers are); every boundary is made up.
"""
from __future__ import annotations

from datetime import date

import csv
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import shapely
import shapely.affinity
import shapely.ops
from shapely.geometry import LineString, MultiPoint, Polygon

from gisplatform import crs
from gisplatform.config import settings
from gisplatform.sample.rand import rng

BBOX = (379_400.0, 2_358_400.0, 512_300.0, 2_486_200.0)  # EPSG:9215 area of use of 9215, E/N
TARGET_AREA_KM2 = 8_000.0
CITY = (449_314.377, 2_417_549.695)

# Hand-drawn outline (lon, lat): the real province is elongated NW-SE, borders China along the N and E.
_OUTLINE_LONLAT = [
    (106.47, 22.46), (106.58, 22.43), (106.66, 22.36), (106.70, 22.25), (106.72, 22.13), (106.70, 22.05),
    (106.76, 21.99), (106.86, 22.00), (106.98, 21.95), (107.04, 21.85), (107.14, 21.78), (107.26, 21.72),
    (107.35, 21.64), (107.33, 21.52), (107.22, 21.44), (107.08, 21.42), (106.94, 21.47), (106.80, 21.50),
    (106.66, 21.45), (106.52, 21.38), (106.40, 21.34), (106.25, 21.36), (106.13, 21.44), (106.10, 21.56),
    (106.14, 21.70), (106.13, 21.82), (106.18, 21.93), (106.17, 22.04), (106.24, 22.15), (106.28, 22.27),
    (106.36, 22.36), (106.40, 22.44),
]

# Former districts: code -> (centre lon, lat, spread km). Seeds of the new units are placed around the centre.
DISTRICTS = {
    "178": (106.760, 21.855, 2.6),   # Thành phố Lạng Sơn
    "180": (106.430, 22.320, 13.0),  # Tràng Định (NW / N)
    "181": (106.330, 22.030, 11.0),  # Bình Gia (W)
    "182": (106.620, 22.100, 8.0),   # Văn Lãng (N)
    "183": (106.860, 21.950, 8.0),   # Cao Lộc (NE, around the city)
    "184": (106.520, 21.840, 8.0),   # Văn Quan (centre W)
    "185": (106.260, 21.840, 9.0),   # Bắc Sơn (SW-W)
    "186": (106.300, 21.520, 10.0),  # Hữu Lũng (SW)
    "187": (106.580, 21.640, 9.0),   # Chi Lăng (S)
    "188": (106.960, 21.700, 11.0),  # Lộc Bình (SE)
    "189": (107.160, 21.560, 10.0),  # Đình Lập (far SE / E)
}
# Units whose seed sits on a real town (lon, lat).
TOWNS = {
    "06187": (106.7600, 21.8760), "05977": (106.7750, 21.8480), "05983": (106.7390, 21.8560),
    "05986": (106.7570, 21.8300), "06040": (106.4708, 22.2553), "06112": (106.3690, 21.9510),
    "06124": (106.6167, 22.0528), "06184": (106.7000, 21.9500), "06211": (106.8100, 21.9050),
    "06253": (106.5467, 21.8575), "06325": (106.3211, 21.8985), "06385": (106.3440, 21.5060),
    "06463": (106.5803, 21.6628), "06526": (106.9700, 21.7000), "06529": (106.9228, 21.7578),
    "06613": (107.0983, 21.5439),
}
URBAN_CODES = frozenset({"05977", "05983", "05986", "06187"})  # wards


MERGER = date(2025, 7, 1)  # NQ 1672/NQ-UBTVQH15: the 65 new communes take effect


@dataclass
class Unit:
    code: str
    name: str
    level: str
    district_code: str | None
    valid_from: str
    valid_to: str | None
    successor: str | None
    geometry: object = None  # shapely MultiPolygon
    seed_xy: tuple[float, float] | None = None

    @property
    def keeps_code(self) -> bool:
        return self.successor == self.code

    @property
    def urban(self) -> bool:
        return self.level in ("phuong", "thi_tran")


@dataclass
class WaterFeature:
    code: str
    name: str
    water_class: str  # song, suoi, kenh, ho, ho_chua
    basin: str
    level: str  # quoc_te, lien_tinh, noi_tinh
    urban: bool
    needs_corridor: bool
    water_supply: bool
    geometry: object = None  # MultiPolygon (water surface)
    centerline: object = None  # LineString for rivers/streams/canals, None for lakes
    width: float = 0.0


@dataclass
class Geography:
    outline: Polygon
    units: list[Unit]  # predecessors then new units
    water: list[WaterFeature]
    water_union: object = None
    river_lines: list = field(default_factory=list)

    @property
    def new_units(self) -> dict[str, Unit]:
        return {u.code: u for u in self.units if u.valid_to is None}

    @property
    def old_units(self) -> dict[str, Unit]:
        return {u.code: u for u in self.units if u.valid_to is not None}

    def predecessors(self, code: str) -> list[Unit]:
        return [u for u in self.units if u.valid_to is not None and u.successor == code]

    def unit_at(self, x: float, y: float, when: date) -> str:
        """Code of the commune containing (x, y) on that date (the nearest one if none does)."""
        point = shapely.Point(x, y)
        units = self.old_units if when < MERGER else self.new_units
        for unit in units.values():
            if unit.geometry.contains(point):
                return unit.code
        return min(units.values(), key=lambda u: u.geometry.distance(point)).code


# --------------------------------------------------------------------------------------------- code table
def read_admin_units(path: Path | None = None) -> list[Unit]:
    path = path or settings().codes_dir / "admin_units.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [
        Unit(code=r["code"], name=r["name"], level=r["level"], district_code=r["district_code"] or None,
             valid_from=r["valid_from"], valid_to=r["valid_to"] or None,
             successor=r["successor_code"] or None)
        for r in rows
    ]


def to_9215(lonlat) -> np.ndarray:
    a = np.asarray(lonlat, dtype="float64").reshape(-1, 2)
    x, y = crs.transform_xy(a[:, 0], a[:, 1], 4326, 9215)
    return np.column_stack([x, y])


# --------------------------------------------------------------------------------------------- shapes
def _fractal(coords: np.ndarray, r: np.random.Generator, levels: int, rough: float) -> np.ndarray:
    """Midpoint displacement of a closed ring (perpendicular offsets proportional to segment length)."""
    pts = coords[:-1] if np.allclose(coords[0], coords[-1]) else coords
    for _ in range(levels):
        nxt = np.roll(pts, -1, axis=0)
        mid = (pts + nxt) / 2
        d = nxt - pts
        length = np.hypot(d[:, 0], d[:, 1])
        normal = np.column_stack([-d[:, 1], d[:, 0]]) / np.maximum(length, 1e-9)[:, None]
        mid = mid + normal * (r.normal(0, rough, len(mid)) * length)[:, None]
        out = np.empty((2 * len(pts), 2))
        out[0::2], out[1::2] = pts, mid
        pts = out
    return np.vstack([pts, pts[:1]])


def _largest(geom):
    geom = shapely.make_valid(geom)
    polys = [g for g in shapely.get_parts(geom) if isinstance(g, Polygon)]
    return max(polys, key=lambda p: p.area)


def province_outline(seed: int) -> Polygon:
    r = rng(seed, "outline")
    base = to_9215(_OUTLINE_LONLAT)
    ring = _fractal(np.vstack([base, base[:1]]), r, levels=6, rough=0.12)
    poly = _largest(Polygon(ring)).buffer(0)
    box = shapely.box(*BBOX)
    cx, cy = CITY
    for _ in range(6):  # scale about the city until the clipped area is ~8 000 km²
        clipped = _largest(poly.intersection(box))
        k = np.sqrt(TARGET_AREA_KM2 * 1e6 / clipped.area)
        if abs(k - 1) < 1e-4:
            break
        poly = shapely.affinity.scale(poly, k, k, origin=(cx, cy))
    poly = _largest(poly.intersection(box)).simplify(20.0)
    poly = shapely.set_precision(poly, 0.001)
    return _largest(poly)


def _point_inside(poly, x, y, towards) -> tuple[float, float]:
    """(x, y) pulled towards ``towards`` until it lies inside ``poly``."""
    for t in np.linspace(0, 1, 41):
        px, py = x + (towards[0] - x) * t, y + (towards[1] - y) * t
        if poly.contains(shapely.Point(px, py)):
            return px, py
    p = poly.point_on_surface()
    return p.x, p.y


def _unit_seeds(outline, new_units: list[Unit], district_of: dict[str, str], seed: int
                ) -> dict[str, tuple[float, float]]:
    r = rng(seed, "unit-seeds")
    by_district: dict[str, list[Unit]] = {}
    for u in new_units:
        by_district.setdefault(district_of[u.code], []).append(u)
    towns = {c: tuple(to_9215([ll])[0]) for c, ll in TOWNS.items()}
    seeds: dict[str, tuple[float, float]] = {}
    for d, units in sorted(by_district.items()):
        lon, lat, spread = DISTRICTS[d]
        cx, cy = to_9215([(lon, lat)])[0]
        free = [u for u in units if u.code not in towns]
        n = len(free)
        phase = r.uniform(0, 2 * np.pi)
        for i, u in enumerate(free):
            ang = phase + 2 * np.pi * i / max(n, 1) + r.uniform(-0.25, 0.25)
            rad = spread * 1000 * (r.uniform(0.55, 1.05) if n > 1 else r.uniform(0.0, 0.3))
            x, y = cx + rad * np.cos(ang), cy + rad * np.sin(ang)
            seeds[u.code] = _point_inside(outline, x, y, (cx, cy))
        for u in units:
            if u.code in towns:
                seeds[u.code] = _point_inside(outline, *towns[u.code], (cx, cy))
    # keep seeds apart (>= 2.5 km) so every unit gets a cell of its own
    codes = sorted(seeds)
    for _ in range(20):
        moved = False
        for i, a in enumerate(codes):
            for b in codes[i + 1:]:
                (ax, ay), (bx, by) = seeds[a], seeds[b]
                d = np.hypot(ax - bx, ay - by)
                if d < 2500 and b not in towns:
                    ang = np.arctan2(by - ay, bx - ax) if d > 0 else r.uniform(0, 2 * np.pi)
                    seeds[b] = _point_inside(outline, ax + 2600 * np.cos(ang), ay + 2600 * np.sin(ang),
                                             seeds[b])
                    moved = True
        if not moved:
            break
    return seeds


def _voronoi_cells(points: np.ndarray, extent) -> np.ndarray:
    cells = shapely.voronoi_polygons(MultiPoint(points), extend_to=extent, ordered=True)
    return np.asarray(shapely.get_parts(cells))


def build_units(outline: Polygon, seed: int) -> list[Unit]:
    """All units of admin_units.csv with geometry: predecessors tile their successor, successors tile the outline."""
    units = read_admin_units()
    new = [u for u in units if u.valid_to is None]
    old = [u for u in units if u.valid_to is not None]
    keeper_district = {o.code: o.district_code for o in old if o.successor == o.code}
    district_of = {u.code: keeper_district.get(u.code, "178") for u in new}  # former district of the new unit
    seeds = _unit_seeds(outline, new, district_of, seed)
    extent = outline.buffer(20_000)
    pts = np.array([seeds[u.code] for u in new])
    cells = _voronoi_cells(pts, extent)
    lines = [outline.boundary] + [c.boundary for c in cells]
    r = rng(seed, "predecessor-seeds")
    old_by_succ: dict[str, list[Unit]] = {}
    for o in old:
        old_by_succ.setdefault(o.successor, []).append(o)
    pred_seeds: dict[str, tuple[float, float]] = {}
    succ_cell = {}
    for u, cell in zip(new, cells):
        cell = cell.intersection(outline)
        succ_cell[u.code] = cell
        preds = sorted(old_by_succ.get(u.code, []), key=lambda o: (o.code != u.code, o.code))
        chosen = [seeds[u.code]]
        pred_seeds[preds[0].code] = seeds[u.code]
        minx, miny, maxx, maxy = cell.bounds
        for o in preds[1:]:
            cand = np.column_stack([r.uniform(minx, maxx, 400), r.uniform(miny, maxy, 400)])
            cand = cand[shapely.contains_xy(cell, cand[:, 0], cand[:, 1])]
            if not len(cand):
                p = cell.point_on_surface()
                cand = np.array([[p.x, p.y]])
            dist = np.min(np.hypot(cand[:, None, 0] - np.array(chosen)[None, :, 0],
                                   cand[:, None, 1] - np.array(chosen)[None, :, 1]), axis=1)
            # distance to the cell boundary too, so predecessors are not slivers
            bd = shapely.distance(cell.boundary, shapely.points(cand))
            score = np.minimum(dist, 1.6 * bd)
            best = cand[int(np.argmax(score))]
            chosen.append((float(best[0]), float(best[1])))
            pred_seeds[o.code] = chosen[-1]
        if len(preds) > 1:
            pc = _voronoi_cells(np.array(chosen), extent)
            clip = cell.buffer(50)
            lines += [shapely.intersection(c.boundary, clip) for c in pc]
    noded = shapely.union_all(lines, grid_size=0.001)
    faces = np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))))
    reps = shapely.point_on_surface(faces)
    inside = shapely.contains(outline, reps)
    faces, reps = faces[inside], reps[inside]
    succ_codes = [u.code for u in new]
    succ_geoms = np.array([succ_cell[c] for c in succ_codes])
    face_pred: list[str] = []
    for rep in reps:
        hit = np.flatnonzero(shapely.contains(succ_geoms, rep))
        if not len(hit):
            hit = [int(np.argmin(shapely.distance(succ_geoms, rep)))]
        sc = succ_codes[int(hit[0])]
        preds = old_by_succ[sc]
        d = [np.hypot(pred_seeds[o.code][0] - rep.x, pred_seeds[o.code][1] - rep.y) for o in preds]
        face_pred.append(preds[int(np.argmin(d))].code)
    face_pred_arr = np.array(face_pred)
    for o in old:
        mine = faces[face_pred_arr == o.code]
        geom = shapely.coverage_union_all(mine) if len(mine) else Polygon()
        o.geometry = _multi(geom)
        o.seed_xy = pred_seeds.get(o.code)
    for u in new:
        parts = [o.geometry for o in old_by_succ[u.code] if not o.geometry.is_empty]
        mine = np.concatenate([np.asarray(shapely.get_parts(g)) for g in parts])
        u.geometry = _multi(shapely.coverage_union_all(mine))
        u.seed_xy = seeds[u.code]
    return old + new


def _multi(geom):
    parts = [g for g in shapely.get_parts(geom) if isinstance(g, Polygon) and not g.is_empty]
    return shapely.MultiPolygon(parts)


# --------------------------------------------------------------------------------------------- water
# code prefix, name, class, basin, level, width range (m), control points (lon, lat), urban reaches (fractions)
KC = "Kỳ Cùng – Bằng Giang"
TB = "Thái Bình"
_RIVERS = [
    ("KC", "Sông Kỳ Cùng", KC, "quoc_te", (40, 80),
     [(107.20, 21.59), (107.10, 21.63), (107.00, 21.69), (106.93, 21.75), (106.84, 21.82), (106.76, 21.866),
      (106.68, 21.93), (106.60, 22.02), (106.53, 22.14), (106.4708, 22.2553), (106.52, 22.34),
      (106.60, 22.47)],
     [0.0, 0.24, 0.40, 0.50, 0.70, 0.80, 1.0], {2, 4}, True),
    ("BG", "Sông Bắc Giang", KC, "lien_tinh", (25, 45),
     [(106.12, 21.97), (106.25, 21.96), (106.369, 21.955), (106.42, 22.07), (106.45, 22.18),
      (106.468, 22.25)],
     [0.0, 0.45, 1.0], {0}, True),
    ("BK", "Sông Bắc Khê", KC, "lien_tinh", (15, 30),
     [(106.30, 22.42), (106.36, 22.35), (106.42, 22.30), (106.468, 22.258)], [0.0, 1.0], set(), True),
    ("TH", "Sông Thương", TB, "lien_tinh", (25, 50),
     [(106.64, 21.74), (106.58, 21.665), (106.50, 21.60), (106.41, 21.54), (106.344, 21.508), (106.28, 21.42),
      (106.20, 21.30)], [0.0, 0.3, 0.62, 1.0], {1}, True),
    ("TR", "Sông Trung", TB, "lien_tinh", (15, 35),
     [(106.33, 21.93), (106.30, 21.85), (106.25, 21.75), (106.22, 21.64), (106.19, 21.52), (106.15, 21.40)],
     [0.0, 0.5, 1.0], set(), True),
    ("HO", "Sông Hóa", TB, "noi_tinh", (10, 20),
     [(106.55, 21.50), (106.47, 21.47), (106.40, 21.46), (106.33, 21.45)], [0.0, 1.0], set(), False),
    ("LN", "Sông Lục Nam", TB, "lien_tinh", (12, 25),
     [(107.05, 21.58), (106.98, 21.54), (106.90, 21.50), (106.82, 21.44)], [0.0, 1.0], set(), False),
]
_LAKES = [  # code, name, class, lon, lat, area ha, water supply
    ("PL", "Hồ Phai Loạn", "ho", 106.752, 21.842, 11.0, False),
    ("BL", "Hồ Bản Lải", "ho_chua", 106.990, 21.620, 620.0, True),
    ("TK", "Hồ Tà Keo", "ho_chua", 106.850, 21.790, 240.0, True),
    ("NT", "Hồ Nà Tâm", "ho_chua", 106.440, 22.210, 95.0, True),
    ("KCU", "Hồ Khuổi Cuồng", "ho_chua", 106.620, 21.700, 60.0, False),
    ("NC", "Hồ Nà Cáy", "ho_chua", 106.500, 21.880, 25.0, False),
    ("NP", "Hồ Nà Pàn", "ho", 106.330, 22.060, 6.0, False),
    ("BC", "Hồ Bản Chành", "ho", 106.950, 21.740, 3.5, False),
]
_STREAM_NAMES = ("Khuổi Pài", "Khuổi Sla", "Khuổi Rị", "Khuổi Mò", "Nà Lầy", "Khuổi Hin", "Pác Cáp",
                 "Khuổi Toòng", "Khuổi Dầu", "Bản Khiêng", "Khuổi Quang", "Nà Héc", "Khuổi Chu", "Lũng Vài")
_CANALS = [("Kênh Tà Keo", (106.86, 21.785), (106.83, 21.76), (106.79, 21.745)),
           ("Kênh Nà Tâm", (106.445, 22.205), (106.46, 22.19), (106.47, 22.165)),
           ("Kênh Khuổi Cuồng", (106.615, 21.695), (106.60, 21.68), (106.585, 21.668))]


def _densify(pts: np.ndarray, step: float) -> np.ndarray:
    out = [pts[0]]
    for a, b in zip(pts[:-1], pts[1:]):
        n = max(1, int(np.ceil(np.hypot(*(b - a)) / step)))
        t = np.arange(1, n + 1)[:, None] / n
        out.extend(a + (b - a) * t)
    return np.array(out)


def _meander(pts: np.ndarray, r: np.random.Generator, amp: float, step: float = 150.0,
             pin: np.ndarray | None = None) -> np.ndarray:
    """Densified polyline with smooth perpendicular meanders (0 at the ends and at pinned points)."""
    p = _densify(pts, step)
    seg = np.diff(p, axis=0)
    s = np.concatenate([[0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))])
    tang = np.gradient(p, axis=0)
    tang /= np.maximum(np.hypot(tang[:, 0], tang[:, 1]), 1e-9)[:, None]
    normal = np.column_stack([-tang[:, 1], tang[:, 0]])
    off = np.zeros(len(p))
    for _ in range(4):
        wl = r.uniform(1500, 9000)
        off += r.uniform(0.3, 1.0) * amp * np.sin(2 * np.pi * s / wl + r.uniform(0, 2 * np.pi))
    taper = np.minimum(1.0, np.minimum(s, s[-1] - s) / 1500.0)
    if pin is not None:  # pass (almost) through the towns
        for q in pin:
            d = np.hypot(p[:, 0] - q[0], p[:, 1] - q[1])
            taper = np.minimum(taper, np.clip(d / 2500.0, 0.1, 1.0))
    out = p + normal * (off * taper)[:, None]
    k = 5  # moving-average smoothing keeps the end points
    sm = out.copy()
    sm[k:-k] = np.column_stack([np.convolve(out[:, i], np.ones(2 * k + 1) / (2 * k + 1),
                                            "valid") for i in range(2)])
    return sm


def _blob(cx: float, cy: float, area_m2: float, r: np.random.Generator, elong: float = 1.8) -> Polygon:
    t = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    rad = np.ones_like(t)
    for k in (2, 3, 4, 5):
        rad += r.uniform(0.03, 0.18) / (k - 1) * np.sin(k * t + r.uniform(0, 2 * np.pi))
    ang = r.uniform(0, np.pi)
    x, y = rad * np.cos(t) * elong, rad * np.sin(t)
    xr, yr = x * np.cos(ang) - y * np.sin(ang), x * np.sin(ang) + y * np.cos(ang)
    poly = Polygon(np.column_stack([xr, yr]))
    k = np.sqrt(area_m2 / poly.area)
    return shapely.affinity.translate(shapely.affinity.scale(poly, k, k, origin=(0, 0)), cx, cy)


def _surface(line, width: float):
    return line.buffer(width / 2, cap_style="flat", join_style="round", quad_segs=3).simplify(0.3)


def build_water(outline: Polygon, units: list[Unit], seed: int) -> tuple[list[WaterFeature], list]:
    r = rng(seed, "water")
    feats: list[WaterFeature] = []
    town_xy = to_9215(list(TOWNS.values()))
    main_lines = []
    urban_units = [u.geometry for u in units if u.valid_to is not None and u.urban]
    urban_union = shapely.union_all(urban_units)
    for code, name, basin, level, (wmin, wmax), ctrl, cuts, urban_reaches, supply in _RIVERS:
        pts = to_9215(ctrl)
        line = LineString(_meander(pts, r, amp=r.uniform(300, 600), pin=town_xy))
        clipped = line.intersection(outline)
        if clipped.geom_type != "LineString":
            parts = sorted(shapely.get_parts(clipped), key=lambda g: -g.length)
            clipped = shapely.line_merge(shapely.MultiLineString(list(parts)))
            if clipped.geom_type != "LineString":
                clipped = parts[0]
        main_lines.append((code, clipped))
        width = float(np.round(r.uniform(wmin, wmax), 0))
        n = len(cuts) - 1
        for i in range(n):
            seg = shapely.ops.substring(clipped, cuts[i], cuts[i + 1], normalized=True)
            w = float(np.round(width * r.uniform(0.85, 1.15), 0))
            geom = _surface(seg, w)
            urban = (i in urban_reaches) or bool(seg.intersection(urban_union).length > 1000)
            feats.append(WaterFeature(
                code=f"LS-{code}-{i + 1:02d}" if n > 1 else f"LS-{code}", name=name if n == 1 else
                f"{name} (đoạn {i + 1})", water_class="song", basin=basin, level=level, urban=urban,
                needs_corridor=True, water_supply=supply and (urban or i == 0), geometry=geom, centerline=seg,
                width=w))
    # streams: start near the predecessor seeds of random units so the surveyed communes get some
    olds = [u for u in units if u.valid_to is not None]
    picks = r.choice(len(olds), size=len(_STREAM_NAMES), replace=False)
    for i, (name, k) in enumerate(zip(_STREAM_NAMES, picks)):
        u = olds[int(k)]
        sx, sy = u.seed_xy
        ang = r.uniform(0, 2 * np.pi)
        length = r.uniform(5000, 14000)
        start = np.array([sx - np.cos(ang) * length * 0.5, sy - np.sin(ang) * length * 0.5])
        ctrl = np.array([start + np.array([np.cos(ang + r.uniform(-0.4, 0.4)),
                                           np.sin(ang + r.uniform(-0.4, 0.4))]) * length * f
                         for f in (0.0, 0.33, 0.66, 1.0)])
        line = LineString(_meander(ctrl, r, amp=r.uniform(120, 300), step=80.0)).intersection(outline)
        if line.is_empty:
            continue
        if line.geom_type != "LineString":
            line = max(shapely.get_parts(line), key=lambda g: g.length)
        w = float(np.round(r.uniform(5, 15), 1))
        cy = line.centroid.y
        feats.append(WaterFeature(
            code=f"LS-S{i + 1:02d}", name=f"Suối {name}", water_class="suoi",
            basin=KC if cy > 2_405_000 else TB,
            level="noi_tinh", urban=bool(line.intersection(urban_union).length > 500),
            needs_corridor=bool(r.random() < 0.6), water_supply=bool(r.random() < 0.3),
            geometry=_surface(line, w), centerline=line, width=w))
    for i, (name, *ctrl) in enumerate(_CANALS):
        line = LineString(_densify(to_9215(ctrl), 200.0)).intersection(outline)
        w = float(np.round(r.uniform(4, 8), 1))
        feats.append(WaterFeature(
            code=f"LS-K{i + 1:02d}", name=name, water_class="kenh",
            basin=TB if line.centroid.y < 2_405_000 else KC,
            level="noi_tinh", urban=False, needs_corridor=True, water_supply=False,
            geometry=_surface(line, w), centerline=line, width=w))
    for code, name, cls, lon, lat, ha, supply in _LAKES:
        (cx, cy), = to_9215([(lon, lat)])
        geom = _blob(cx, cy, ha * 1e4, r).intersection(outline)
        feats.append(WaterFeature(
            code=f"LS-H-{code}", name=name, water_class=cls, basin=KC if cy > 2_405_000 else TB,
            level="noi_tinh", urban=bool(geom.intersects(urban_union)),
            needs_corridor=cls == "ho_chua" or ha >= 2,
            water_supply=supply, geometry=geom))
    # tributaries and canals end at the main river's bank: cut the overlap away
    rivers = shapely.union_all([f.geometry for f in feats if f.code.startswith("LS-KC")])
    for f in feats:
        if f.water_class != "song" or not f.code.startswith("LS-KC"):
            if f.water_class in ("song", "suoi", "kenh"):
                f.geometry = f.geometry.difference(rivers)
        f.geometry = _multi(shapely.set_precision(shapely.make_valid(f.geometry), 0.001))
    feats = [f for f in feats if not f.geometry.is_empty]
    return feats, main_lines


@lru_cache(maxsize=4)
def build_geography(seed: int) -> Geography:
    outline = province_outline(seed)
    units = build_units(outline, seed)
    water, lines = build_water(outline, units, seed)
    union = shapely.union_all([f.geometry for f in water])
    return Geography(outline=outline, units=units, water=water, water_union=union, river_lines=lines)
