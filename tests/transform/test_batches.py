"""Source batches cut and joined again: ``subset`` then ``concat`` gives back the rows, in order, with their row
numbers, geometry bytes, stated CRS and reader problems (renumbered), as the held rows of a re-run need."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from gisplatform.sources.base import RowProblem, SourceBatch
from gisplatform.transform import pipeline


def batch(first_row: int, n: int, crs) -> SourceBatch:
    values = [f"thửa {first_row + i}" for i in range(n)]
    wkb = pa.array([shapely.to_wkb(shapely.Point(i, first_row)) for i in range(n)], pa.binary())
    return SourceBatch(file="p.gpkg", rows=pd.DataFrame({"TEN": pd.arrays.ArrowExtensionArray(pa.array(values))}),
                       row_numbers=np.arange(first_row, first_row + n), geometry=None, crs=crs,
                       problems=[RowProblem(1, "corner_table", f"row {first_row + 1} is odd")],
                       raw_geometry_wkb=wkb, geometry_pending=True)


def test_subsets_joined_again_keep_rows_problems_and_geometry():
    a, b = batch(1, 4, 9215), batch(5, 3, 9215)
    joined = pipeline.concat([pipeline.subset(a, np.array([False, True, False, True])),
                              pipeline.subset(b, np.array([True, True, False]))])
    assert joined.rows["TEN"].tolist() == ["thửa 2", "thửa 4", "thửa 5", "thửa 6"]
    assert joined.row_numbers.tolist() == [2, 4, 5, 6] and joined.crs == 9215
    assert [(p.index, p.message) for p in joined.problems] == [(0, "row 2 is odd"), (3, "row 6 is odd")]
    joined.parse_geometry()
    assert [(g.x, g.y) for g in joined.geometry] == [(1, 1), (3, 1), (0, 5), (1, 5)]


def test_batches_stating_different_crs_keep_one_per_row():
    joined = pipeline.concat([batch(1, 2, 9215), batch(3, 2, np.array([3405, 0]))])
    assert joined.crs.tolist() == [9215, 9215, 3405, 0]
