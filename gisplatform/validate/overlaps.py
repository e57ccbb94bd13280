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
  * pairs *across* batches are searched by the same thread when the later batch arrives, against the trees of
    the earlier batches whose box meets its own, with only its geometries inside that box (few: the border).
The background thread runs at the lowest CPU priority: it takes only what the run's main thread and the database
leave idle, so the read is not slowed by it. On a first load, if it is still busy when the rows are to be
inserted, it goes on meanwhile (:meth:`OverlapIndex.pairs_in_background`) and the warnings are recorded after
the insert.
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


class _Batch:
    """One batch's accepted geometries, their tree and bounds, and the box around them all."""

    def __init__(self, sids: np.ndarray, geoms: np.ndarray):
        self.sids, self.geoms = sids, geoms
        self.tree = shapely.STRtree(geoms)
        self.bounds = shapely.bounds(geoms)
        self.extent = (np.nanmin(self.bounds[:, 0]), np.nanmin(self.bounds[:, 1]), np.nanmax(self.bounds[:, 2]),
                       np.nanmax(self.bounds[:, 3])) if len(geoms) else None

    def near(self, extent) -> np.ndarray:
        """Positions of the geometries whose box meets ``extent`` (touching included, as the tree counts it)."""
        x0, y0, x1, y1 = extent
        b = self.bounds
        return np.flatnonzero((b[:, 0] <= x1) & (b[:, 2] >= x0) & (b[:, 1] <= y1) & (b[:, 3] >= y0))


class OverlapIndex:
    """The accepted geometries of a run, by staging id, and the search for overlapping pairs among them."""

    def __init__(self, tolerance_m2: float, background: bool = True):
        self.tolerance_m2 = tolerance_m2
        self._batches: list[_Batch] = []  # filled by the search, in arrival order
        self._added: list[tuple[np.ndarray, np.ndarray]] = []
        # one worker: batches are searched in arrival order while the caller goes on with the next batch
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="overlaps",
                                          initializer=_lowest_priority) if background else None
        self._found: list[Future | Pairs] = []
        self._closing = threading.Event()  # a failed or cancelled run: the search still running stops early

    def add(self, sids: np.ndarray, geoms: np.ndarray) -> None:
        geoms = np.asarray(geoms, dtype=object)
        present = ~shapely.is_missing(geoms)
        sids, geoms = np.asarray(sids)[present], geoms[present]
        self._added.append((sids, geoms))
        if self._worker is not None:
            self._found.append(self._worker.submit(self._pairs_of_batch, sids, geoms))
        else:
            self._found.append(self._pairs_of_batch(sids, geoms))

    def __len__(self) -> int:
        return sum(len(s) for s, _ in self._added)

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The staging ids and geometries added so far."""
        if not self._added:
            return np.zeros(0, np.int64), np.zeros(0, dtype=object)
        return np.concatenate([s for s, _ in self._added]), np.concatenate([g for _, g in self._added])

    def pairs(self) -> Pairs:
        """(sid_a, sid_b, overlap area in m²) for every pair overlapping by more than the tolerance."""
        try:
            return self._all_pairs()
        finally:
            self.close()

    def pairs_in_background(self) -> Future:
        """:meth:`pairs`, collected by the background thread once every batch's search is done; no batch may be
        added afterwards."""
        if self._worker is None:
            found: Future = Future()
            found.set_result(self.pairs())
            return found
        try:
            return self._worker.submit(self._all_pairs)  # after every batch's search: one worker, in order
        finally:
            self._worker.shutdown(wait=False)

    def _all_pairs(self) -> Pairs:
        return _concat([f.result() if isinstance(f, Future) else f for f in self._found])

    def close(self) -> None:
        self._closing.set()
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)

    def _pairs_of_batch(self, sids: np.ndarray, geoms: np.ndarray) -> Pairs:
        """The pairs within a batch, and those of its geometries with the earlier batches' (each candidate pair
        once, from the later batch): searched as the batch arrives, nothing is left for the end but the last
        batch (a search of a tree of every geometry at the end held a first load of a million parcels up 1.5 s
        to find 5,000 candidates). Only an earlier batch whose box meets this one's is searched, and only with
        this batch's geometries inside that box."""
        batch = _Batch(sids, geoms)
        left, right = batch.tree.query(geoms)
        keep = left < right
        found = [self._test(batch, batch, left[keep], right[keep])]
        if batch.extent is not None:
            for earlier in self._batches:
                if earlier.extent is None or not len(near := batch.near(earlier.extent)):
                    continue
                mine, theirs = earlier.tree.query(geoms[near])
                found.append(self._test(earlier, batch, theirs, near[mine]))
        self._batches.append(batch)
        return _concat(found)

    def _boxes_can_overlap(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Pairs whose bounding boxes (rows of ``a`` and ``b``) share more than the tolerance (a millimetre's slack
        on each side for the snap-rounded intersection); the others cannot overlap by more than the tolerance."""
        width = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + 2 * GRID_MM
        height = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + 2 * GRID_MM
        return (np.clip(width, 0, None) * np.clip(height, 0, None)) > self.tolerance_m2

    def _test(self, first: _Batch, second: _Batch, left: np.ndarray, right: np.ndarray) -> Pairs:
        """Candidate pairs (positions ``left`` in ``first``, ``right`` in ``second``) whose interiors overlap by more
        than the tolerance, as (sid in first, sid in second, area)."""
        possible = self._boxes_can_overlap(first.bounds[left], second.bounds[right])
        left, right = left[possible], right[possible]
        found = []
        for start in range(0, len(left), CHUNK):
            if self._closing.is_set():  # nobody waits for the result any more
                return _no_pairs()
            a, b = left[start:start + CHUNK], right[start:start + CHUNK]
            big, area = overlap_areas(first.geoms[a], second.geoms[b], self.tolerance_m2)
            found.append((first.sids[a[big]], second.sids[b[big]], area[big]))
        return _concat(found)
