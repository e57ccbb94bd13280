"""Which features of a run overlap each other: the pair search behind the ``overlaps`` set rule.

Done in Python with shapely (GEOS 3.14's RelateNG) rather than in PostGIS 3.3 (GEOS 3.11): for a million parcels
the pair test is the single most expensive check. The pairs then go to the staging database, where the rule
turns them into findings (see gisplatform.validate.sets.Overlaps).

Pairs of a staged row and a loaded feature (a re-run) are found the same way, by
:meth:`gisplatform.validate.sets.Overlaps.search_loaded` (or ``search``): candidates from the layer's spatial
index, tested here.

The search is split so that most of it costs no wall time of its own:
  * pairs *within* a batch are searched in a background thread as soon as the batch arrives, while the main
    thread transforms the next batch (a file is written feature by feature, commune by commune, so a batch is
    a compact area and holds nearly all of its features' neighbours; the relate test releases the GIL);
  * pairs *across* batches are searched at the end, over one tree of every geometry, testing only the candidate
    pairs whose two features came in different batches, while the database indexes the staging table.
The background thread runs at the lowest CPU priority: it takes only what the run's main thread and the database
leave idle, so the read is not slowed by it. On a first load it goes on while the database inserts the rows and
builds the indexes (:meth:`OverlapIndex.pairs_in_background`); the warnings are then recorded after the insert.
Every candidate pair (bounding boxes intersect) is tested exactly once, so the result does not depend on how the
rows were batched. A pair whose bounding boxes share no more than the tolerance cannot overlap by more (the
overlap lies inside both boxes) and is dropped before the relate test: in a parcel mosaic about a third of the
neighbour pairs, the cheap third (grid-aligned edges), about a quarter of the test's time.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import shapely

INTERIORS_INTERSECT = "2********"  # the interiors share an area (catches containment too, unlike ST_Overlaps)
CHUNK = 250_000  # candidate pairs per vectorised call, to bound memory
THREADS = 2
GRID_MM = 0.001  # intersections snap-rounded at the millimetre, the precision coordinates are stored at

Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]  # (sid_a, sid_b, overlap area in m²)


def overlap_areas(a: np.ndarray, b: np.ndarray, tolerance_m2: float) -> tuple[np.ndarray, np.ndarray]:
    """For pairs (a[i], b[i]) of candidates: which overlap by more than the tolerance, and the overlap (m²)."""
    hit = shapely.relate_pattern(a, b, INTERIORS_INTERSECT)
    area = np.zeros(len(a))
    area[hit] = shapely.area(shapely.intersection(a[hit], b[hit], grid_size=GRID_MM))
    return area > tolerance_m2, area


def _lowest_priority() -> None:
    """Lower the calling thread's CPU priority (on Linux a thread has a nice value of its own; elsewhere: no-op)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass


def _no_pairs() -> Pairs:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)


def _concat(results: list[Pairs]) -> Pairs:
    results = [r for r in results if len(r[0])]
    return tuple(np.concatenate(parts) for parts in zip(*results)) if results else _no_pairs()


class OverlapIndex:
    """The accepted geometries of a run, by staging id, and the search for overlapping pairs among them."""

    def __init__(self, tolerance_m2: float, background: bool = True):
        self.tolerance_m2 = tolerance_m2
        self._sids: list[np.ndarray] = []
        self._geoms: list[np.ndarray] = []
        # one worker: batches are searched in arrival order while the caller goes on with the next batch
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="overlaps",
                                          initializer=_lowest_priority) if background else None
        self._within: list[Future | Pairs] = []
        self._closing = threading.Event()  # a failed or cancelled run: the search still running stops early

    def add(self, sids: np.ndarray, geoms: np.ndarray) -> None:
        present = np.array([g is not None for g in geoms], dtype=bool)
        sids, geoms = np.asarray(sids)[present], np.asarray(geoms, dtype=object)[present]
        self._sids.append(sids)
        self._geoms.append(geoms)
        if self._worker is not None:
            self._within.append(self._worker.submit(self._pairs_within, sids, geoms))
        else:
            self._within.append(self._pairs_within(sids, geoms))

    def __len__(self) -> int:
        return sum(len(s) for s in self._sids)

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The staging ids and geometries added so far."""
        if not self._sids:
            return np.zeros(0, np.int64), np.zeros(0, dtype=object)
        return np.concatenate(self._sids), np.concatenate(self._geoms)

    def pairs(self) -> Pairs:
        """(sid_a, sid_b, overlap area in m²) for every pair overlapping by more than the tolerance."""
        try:
            return self._all_pairs(THREADS)
        finally:
            self.close()

    def pairs_in_background(self) -> Future:
        """:meth:`pairs`, found by the background thread (at its low priority) once the batches' own searches are
        done, with the pairs across batches; no batch may be added afterwards."""
        if self._worker is None:
            found: Future = Future()
            found.set_result(self.pairs())
            return found
        try:
            return self._worker.submit(self._all_pairs, 1)  # after every batch's search: one worker, in order
        finally:
            self._worker.shutdown(wait=False)

    def _all_pairs(self, threads: int) -> Pairs:
        within = [w.result() if isinstance(w, Future) else w for w in self._within]
        if not self._sids:
            return _no_pairs()
        sids = np.concatenate(self._sids)
        geoms = np.concatenate(self._geoms)
        batch = np.repeat(np.arange(len(self._sids)), [len(s) for s in self._sids])
        left, right = shapely.STRtree(geoms).query(geoms)
        across = (left < right) & (batch[left] != batch[right])
        return _concat(within + [self._test(sids, geoms, left[across], right[across], threads)])

    def close(self) -> None:
        self._closing.set()
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)

    def _pairs_within(self, sids: np.ndarray, geoms: np.ndarray) -> Pairs:
        left, right = shapely.STRtree(geoms).query(geoms)
        keep = left < right
        return self._test(sids, geoms, left[keep], right[keep], threads=1)

    def _boxes_can_overlap(self, bounds: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Pairs whose bounding boxes share more than the tolerance (a millimetre's slack on each side for the
        snap-rounded intersection); the others cannot overlap by more than the tolerance."""
        a, b = bounds[left], bounds[right]
        width = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + 2 * GRID_MM
        height = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + 2 * GRID_MM
        return (np.clip(width, 0, None) * np.clip(height, 0, None)) > self.tolerance_m2

    def _test(self, sids: np.ndarray, geoms: np.ndarray, left: np.ndarray, right: np.ndarray, threads: int) -> Pairs:
        """The candidate pairs (positions into geoms) whose interiors overlap by more than the tolerance."""
        possible = self._boxes_can_overlap(shapely.bounds(geoms), left, right)
        left, right = left[possible], right[possible]

        def chunk(start: int) -> Pairs:
            if self._closing.is_set():  # nobody waits for the result any more
                return _no_pairs()
            a, b = left[start:start + CHUNK], right[start:start + CHUNK]
            big, area = overlap_areas(geoms[a], geoms[b], self.tolerance_m2)
            return sids[a[big]], sids[b[big]], area[big]

        starts = range(0, len(left), CHUNK)
        if threads == 1 or len(left) <= CHUNK:
            return _concat([chunk(s) for s in starts])
        # shapely releases the GIL: two threads keep both cores busy when the database is idle
        with ThreadPoolExecutor(max_workers=threads) as pool:
            return _concat(list(pool.map(chunk, starts)))
