"""Parcel geometry: map sheets inside a survey commune and a true mosaic of parcels inside each sheet.

A sheet (500 m E x 400 m N, about one 1:2000 sheet) is cut into 1-4 blocks, optionally with a road strip between
the upper and lower blocks. Each block is a jittered grid whose nodes are shared by the neighbouring parcels
(identical coordinates), with an extra vertex on some interior edges (computed once per edge, so both neighbours
carry it). Block edges are straight, so the blocks, the road and the sheet frame fit without gaps. Coordinates are
rounded to the millimetre.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from gisplatform.sample.rand import rng

SHEET_W, SHEET_H = 500.0, 400.0
BAND_M = 40.0  # height of the north-to-south bands the parcel numbering zig-zags through

# zone: (typical mean parcel area range m², aspect range (long side / short side))
ZONES = {
    "urban": ((100.0, 200.0), (2.0, 3.5)),
    "village": ((500.0, 1300.0), (1.0, 1.8)),
    "rice": ((800.0, 2000.0), (1.0, 2.5)),
    "upland": ((1500.0, 4000.0), (1.0, 2.0)),
    "forest": ((10_000.0, 30_000.0), (1.0, 1.6)),
}
ZONE_NAMES = tuple(ZONES) + ("road",)
ZONE_INDEX = {z: i for i, z in enumerate(ZONE_NAMES)}


@dataclass
class Sheet:
    """Parcels of one sheet, in numbering order (parcel no = index + 1)."""

    key: int  # position in the commune's spiral of sheet slots (seeds the sheet's random streams)
    sw: tuple[float, float]
    polygons: np.ndarray  # shapely Polygons as written (after a change run's vertex moves)
    zone: np.ndarray  # int8 index into ZONE_NAMES
    moved: np.ndarray  # bool: geometry changed by a vertex move (change runs only)
    interior_vertex: np.ndarray  # bool (n, ): parcel has a corner that is not on the sheet frame
    block: np.ndarray  # int8 block index inside the sheet (-1 for the road)
    base_area: np.ndarray  # area before a change run's vertex moves (the legal area derives from it)


def zone_weights(urban: bool, dist_km: float) -> np.ndarray:
    d = dist_km
    if urban:
        w = [max(0.05, 0.85 - 0.5 * d), 0.25, 0.2, 0.1 + 0.05 * d, 0.05 + 0.1 * d]
    else:
        w = [0.0, max(0.1, 0.45 - 0.1 * d), 0.35, 0.2 + 0.03 * d, 0.1 + 0.12 * d]
    w = np.array(w)
    return w / w.sum()


def _spacing(r: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    w = r.uniform(0.75, 1.25, n)
    edges = lo + (hi - lo) * np.concatenate([[0.0], np.cumsum(w) / w.sum()])
    edges = np.round(edges, 3)
    edges[0], edges[-1] = lo, hi
    return edges


def _block(r: np.random.Generator, rc: np.random.Generator, x0, x1, y0, y1, zone: str, change_f: float):
    (amin, amax), (asp_lo, asp_hi) = ZONES[zone]
    area = float(np.exp(r.uniform(np.log(amin), np.log(amax))))
    aspect = r.uniform(asp_lo, asp_hi)
    cw, ch = np.sqrt(area / aspect), np.sqrt(area * aspect)
    if r.random() < 0.5:
        cw, ch = ch, cw
    nx = max(1, int(round((x1 - x0) / cw)))
    ny = max(1, int(round((y1 - y0) / ch)))
    xs = _spacing(r, x0, x1, nx)
    ys = _spacing(r, y0, y1, ny)
    X = np.broadcast_to(xs[None, :], (ny + 1, nx + 1)).copy()
    Y = np.broadcast_to(ys[:, None], (ny + 1, nx + 1)).copy()
    dx = np.diff(xs)
    dy = np.diff(ys)
    gapx = np.minimum(np.concatenate([[np.inf], dx]), np.concatenate([dx, [np.inf]]))  # per column
    gapy = np.minimum(np.concatenate([[np.inf], dy]), np.concatenate([dy, [np.inf]]))  # per row
    jx = r.uniform(-0.12, 0.12, (ny + 1, nx + 1)) * gapx[None, :]
    jy = r.uniform(-0.12, 0.12, (ny + 1, nx + 1)) * gapy[:, None]
    inner_i = np.zeros(nx + 1, bool)
    inner_i[1:-1] = True
    inner_j = np.zeros(ny + 1, bool)
    inner_j[1:-1] = True
    X = np.round(X + np.where(inner_i[None, :], jx, 0.0), 3)
    Y = np.round(Y + np.where(inner_j[:, None], jy, 0.0), 3)
    smallest = float(min(dx.min(), dy.min()))
    # extra vertices on interior edges: horizontal edges H[j, i] (node j,i -> j,i+1), vertical V[j, i] (j,i -> j+1,i)
    h_flag = (r.random((ny + 1, nx)) < 0.35) & inner_j[:, None]
    h_t = r.uniform(0.3, 0.7, (ny + 1, nx))
    h_off = r.uniform(-1, 1, (ny + 1, nx)) * 0.04 * smallest
    v_flag = (r.random((ny, nx + 1)) < 0.35) & inner_i[None, :]
    v_t = r.uniform(0.3, 0.7, (ny, nx + 1))
    v_off = r.uniform(-1, 1, (ny, nx + 1)) * 0.04 * smallest
    # change run: move a few interior nodes by up to ~1 m (every parcel sharing the node moves with it)
    u = rc.random((ny + 1, nx + 1))
    mvx, mvy = rc.uniform(-1, 1, (2, ny + 1, nx + 1)) * min(1.0, 0.05 * smallest)
    base_nodes = (X.copy(), Y.copy())
    moved_nodes = (u < change_f) & inner_j[:, None] & inner_i[None, :]
    if moved_nodes.any():
        X = np.round(np.where(moved_nodes, X + mvx, X), 3)
        Y = np.round(np.where(moved_nodes, Y + mvy, Y), 3)

    def build(X, Y):
        hx0, hy0, hx1, hy1 = X[:, :-1], Y[:, :-1], X[:, 1:], Y[:, 1:]
        hl = np.hypot(hx1 - hx0, hy1 - hy0)
        hpx = np.round(hx0 + h_t * (hx1 - hx0) - h_off * (hy1 - hy0) / hl, 3)
        hpy = np.round(hy0 + h_t * (hy1 - hy0) + h_off * (hx1 - hx0) / hl, 3)
        vx0, vy0, vx1, vy1 = X[:-1, :], Y[:-1, :], X[1:, :], Y[1:, :]
        vl = np.hypot(vx1 - vx0, vy1 - vy0)
        vpx = np.round(vx0 + v_t * (vx1 - vx0) - v_off * (vy1 - vy0) / vl, 3)
        vpy = np.round(vy0 + v_t * (vy1 - vy0) + v_off * (vx1 - vx0) / vl, 3)
        J, I = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        J, I = J.ravel(), I.ravel()
        # clockwise: NW, top extra, NE, right extra, SE, bottom extra, SW, left extra
        cx = np.stack([X[J + 1, I], hpx[J + 1, I], X[J + 1, I + 1], vpx[J, I + 1],
                       X[J, I + 1], hpx[J, I], X[J, I], vpx[J, I]], axis=1)
        cy = np.stack([Y[J + 1, I], hpy[J + 1, I], Y[J + 1, I + 1], vpy[J, I + 1],
                       Y[J, I + 1], hpy[J, I], Y[J, I], vpy[J, I]], axis=1)
        mask = np.stack([np.ones(len(J), bool), h_flag[J + 1, I], np.ones(len(J), bool), v_flag[J, I + 1],
                         np.ones(len(J), bool), h_flag[J, I], np.ones(len(J), bool), v_flag[J, I]], axis=1)
        coords = np.column_stack([cx[mask], cy[mask]])
        idx = np.repeat(np.arange(len(J)), mask.sum(axis=1))
        return shapely.polygons(shapely.linearrings(coords, indices=idx)), J, I

    base, J, I = build(*base_nodes)
    if moved_nodes.any():
        polys, _, _ = build(X, Y)
        moved = moved_nodes[J, I] | moved_nodes[J + 1, I] | moved_nodes[J, I + 1] | moved_nodes[J + 1, I + 1]
    else:
        polys, moved = base, np.zeros(len(J), bool)
    return base, polys, moved


def build_sheet(seed: int, commune: str, key: int, sw: tuple[float, float], weights: np.ndarray,
                change_f: float) -> Sheet:
    r = rng(seed, "sheet", commune, key)
    rc = rng(seed, "sheet-change", commune, key)
    sx, sy = sw
    ex, ny_ = sx + SHEET_W, sy + SHEET_H
    rows: list[tuple[float, float]] = []
    road = None
    if r.random() < 0.75:
        ys = round(sy + SHEET_H * r.uniform(0.3, 0.7), 3)
        hw = round(r.uniform(2.5, 4.0), 3) if r.random() < 0.45 else 0.0
        rows = [(ys + hw, ny_), (sy, ys - hw)]  # north first
        if hw:
            road = shapely.box(sx, ys - hw, ex, ys + hw)
    else:
        rows = [(sy, ny_)]
    base_parts, polys_parts, moved_parts, zone_parts, block_parts = [], [], [], [], []
    b = 0
    zone_keys = list(ZONES)
    for y0, y1 in rows:
        cols = [(sx, ex)]
        if r.random() < 0.7:
            xs = round(sx + SHEET_W * r.uniform(0.3, 0.7), 3)
            cols = [(sx, xs), (xs, ex)]
        for x0, x1 in cols:
            zone = zone_keys[int(r.choice(len(zone_keys), p=weights))]
            base, polys, moved = _block(r, rc, x0, x1, y0, y1, zone, change_f)
            base_parts.append(base)
            polys_parts.append(polys)
            moved_parts.append(moved)
            zone_parts.append(np.full(len(polys), ZONE_INDEX[zone], np.int8))
            block_parts.append(np.full(len(polys), b, np.int8))
            b += 1
    if road is not None:
        base_parts.append(np.array([road]))
        polys_parts.append(np.array([road]))
        moved_parts.append(np.zeros(1, bool))
        zone_parts.append(np.array([ZONE_INDEX["road"]], np.int8))
        block_parts.append(np.array([-1], np.int8))
    base = np.concatenate(base_parts)
    polys = np.concatenate(polys_parts)
    cent = shapely.centroid(base)
    cx, cy = shapely.get_x(cent), shapely.get_y(cent)
    band = np.floor((ny_ - cy) / BAND_M)
    order = np.lexsort((cx, band))
    # corners off the sheet frame (a vertex that can be pushed into a neighbour)
    coords = shapely.get_coordinates(polys)
    counts = shapely.get_num_coordinates(polys)
    off_frame = (coords[:, 0] > sx + 0.01) & (coords[:, 0] < ex - 0.01) & \
                (coords[:, 1] > sy + 0.01) & (coords[:, 1] < ny_ - 0.01)
    interior = np.add.reduceat(off_frame.astype(int), np.concatenate([[0], np.cumsum(counts)[:-1]])) > 0
    return Sheet(key=key, sw=(sx, sy), polygons=polys[order], zone=np.concatenate(zone_parts)[order],
                 moved=np.concatenate(moved_parts)[order], interior_vertex=interior[order],
                 block=np.concatenate(block_parts)[order], base_area=shapely.area(base)[order])


def sheet_slots(commune_geom, anchor: tuple[float, float], radius: int = 40) -> np.ndarray:
    """South-west corners of the sheets that fit inside the commune, nearest to the anchor first."""
    ax, ay = anchor
    ox = np.round(ax - SHEET_W / 2, -1)
    oy = np.round(ay - SHEET_H / 2, -1)
    i, j = np.meshgrid(np.arange(-radius, radius + 1), np.arange(-radius, radius + 1), indexing="ij")
    i, j = i.ravel(), j.ravel()
    sx, sy = ox + i * SHEET_W, oy + j * SHEET_H
    d = np.hypot(sx + SHEET_W / 2 - ax, sy + SHEET_H / 2 - ay)
    order = np.lexsort((j, i, d))
    sx, sy = sx[order], sy[order]
    shapely.prepare(commune_geom)
    boxes = shapely.box(sx, sy, sx + SHEET_W, sy + SHEET_H)
    ok = shapely.contains_properly(commune_geom, boxes)
    return np.column_stack([sx[ok], sy[ok]])
