"""Which features of a run overlap each other: the pair search behind the ``overlaps`` set rule.

Done in Python with shapely (GEOS 3.14's RelateNG) rather than in PostGIS 3.3 (GEOS 3.11): for a million parcels
the pair test is the single most expensive check, and here it runs while the database indexes the staging
table and checks duplicate keys, instead of after. The pairs then go to the staging database, where the rule
turns them into findings (see gisplatform.validate.sets.Overlaps).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import shapely

INTERIORS_INTERSECT = "2********"  # the interiors share an area (catches containment too, unlike ST_Overlaps)
CHUNK = 250_000  # candidate pairs per vectorised call, to bound memory
THREADS = 2
GRID_MM = 0.001  # intersections snap-rounded at the millimetre, the precision coordinates are stored at


class OverlapIndex:
    """The accepted geometries of a run, by staging id, and the search for overlapping pairs among them."""

    def __init__(self, tolerance_m2: float):
        self.tolerance_m2 = tolerance_m2
        self._sids: list[np.ndarray] = []
        self._geoms: list[np.ndarray] = []

    def add(self, sids: np.ndarray, geoms: np.ndarray) -> None:
        present = np.array([g is not None for g in geoms], dtype=bool)
        self._sids.append(np.asarray(sids)[present])
        self._geoms.append(np.asarray(geoms, dtype=object)[present])

    def __len__(self) -> int:
        return sum(len(s) for s in self._sids)

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sid_a, sid_b, overlap area in m²) for every pair overlapping by more than the tolerance."""
        if not self._sids:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        sids = np.concatenate(self._sids)
        geoms = np.concatenate(self._geoms)
        left, right = shapely.STRtree(geoms).query(geoms)
        keep = left < right
        left, right = left[keep], right[keep]

        def chunk(start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            a, b = left[start:start + CHUNK], right[start:start + CHUNK]
            hit = shapely.relate_pattern(geoms[a], geoms[b], INTERIORS_INTERSECT)
            a, b = a[hit], b[hit]
            area = shapely.area(shapely.intersection(geoms[a], geoms[b], grid_size=GRID_MM))
            big = area > self.tolerance_m2
            return sids[a[big]], sids[b[big]], area[big]

        # shapely releases the GIL: two threads keep both cores busy when the database is idle
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            results = list(pool.map(chunk, range(0, len(left), CHUNK)))
        if not results:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        return tuple(np.concatenate(parts) for parts in zip(*results))
