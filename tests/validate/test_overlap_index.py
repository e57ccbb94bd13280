"""The overlap pair search finds the same pairs however the rows arrive in batches (within and across)."""
import numpy as np
import shapely
import shapely.affinity

from gisplatform.validate.overlaps import OverlapIndex


def _squares():
    """A 20 x 20 grid of 10 m squares, every fifth one pushed 3 m east over its neighbour (30 m² overlap)."""
    geoms = []
    for i in range(400):
        x, y = (i % 20) * 10.0, (i // 20) * 10.0
        shift = 3.0 if i % 5 == 2 else 0.0
        geoms.append(shapely.box(x + shift, y, x + shift + 10, y + 10))
    geoms.append(shapely.box(51, 51, 52, 52))  # inside square 105: 1 m², not more than the 1 m² tolerance
    return np.array(geoms, dtype=object)


def _found(batches: list[slice], background: bool) -> set[tuple[int, int, float]]:
    geoms = _squares()
    sids = np.arange(len(geoms)) + 1000
    index = OverlapIndex(tolerance_m2=1.0, background=background)
    for part in batches:
        index.add(sids[part], geoms[part])
    a, b, area = index.pairs()
    return {(min(x, y), max(x, y), round(z, 3)) for x, y, z in zip(a.tolist(), b.tolist(), area.tolist())}


def test_pairs_do_not_depend_on_batching():
    whole = _found([slice(None)], background=False)
    assert len(whole) == 20 * 4  # per row, 4 pushed squares each overlap their east neighbour (a gap opens west)
    for batches in ([slice(0, 137), slice(137, 290), slice(290, None)], [slice(i, i + 1) for i in range(401)]):
        assert _found(batches, background=True) == whole
        assert _found(batches, background=False) == whole


def test_tolerance_and_areas():
    pairs = _found([slice(None)], background=True)
    assert all(area > 1.0 for _, _, area in pairs)
    assert {area for _, _, area in pairs} == {30.0}


def _scattered(seed: int, count: int, extent: float, largest: float) -> np.ndarray:
    """Rotated, scattered rectangles: slivers and diagonal overlaps whose boxes overlap far more than they do."""
    rng = np.random.default_rng(seed)
    geoms = []
    for _ in range(count):
        x, y = rng.uniform(0, extent, 2)
        w, h = rng.uniform(0.3, largest, 2)
        geoms.append(shapely.affinity.rotate(shapely.box(x, y, x + w, y + h), rng.uniform(0, 90), origin="centroid"))
    return np.array(geoms, dtype=object)


def _brute_force(geoms: np.ndarray) -> set[tuple[int, int]]:
    """Every pair (by position) overlapping by more than 1 m², from the intersection of every pair."""
    left, right = np.triu_indices(len(geoms), k=1)
    area = shapely.area(shapely.intersection(geoms[left], geoms[right], grid_size=0.001))
    return {(int(x), int(y)) for x, y in zip(left[area > 1.0], right[area > 1.0])}


def test_same_pairs_as_a_brute_force_search():
    """Every pair overlapping by more than the tolerance is found, whatever the bounding-box pre-filter drops."""
    geoms = _scattered(7, 300, 200, 25)
    index = OverlapIndex(tolerance_m2=1.0, background=False)
    index.add(np.arange(len(geoms)), geoms)
    a, b, _ = index.pairs()
    found = {(min(x, y), max(x, y)) for x, y in zip(a.tolist(), b.tolist())}
    expected = _brute_force(geoms)
    assert len(expected) > 50 and found == expected


def test_batches_searched_as_they_arrive_find_the_brute_force_pairs():
    """Batches whose boxes overlap (and one empty batch): the pairs across batches are found against the earlier
    batches as each batch arrives, each once, as one search of them all finds them."""
    geoms = _scattered(11, 400, 150, 20)
    expected = _brute_force(geoms)
    for background in (True, False):
        index = OverlapIndex(tolerance_m2=1.0, background=background)
        for part in (slice(0, 90), slice(90, 90), slice(90, 250), slice(250, 251), slice(251, None)):
            index.add(np.arange(len(geoms))[part], geoms[part])
        a, b, _ = index.pairs_in_background().result() if background else index.pairs()
        found = [(min(x, y), max(x, y)) for x, y in zip(a.tolist(), b.tolist())]
        assert len(found) == len(set(found)) and set(found) == expected and len(expected) > 100
