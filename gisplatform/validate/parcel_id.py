"""The national parcel ID (TT 19/2026): a 12-character GeoHash of an interior point of the parcel.

The ID need not be recomputed bit for bit (polylabel implementations differ); it must decode to a point inside
its parcel. A wrong datum (rotation signs, missing shift) moves the point by 0.7–200 m and shows up here.
"""
from __future__ import annotations

import numpy as np
import shapely

from gisplatform import crs, geohash
from gisplatform.transform.batch import LayerBatch
from gisplatform.validate.base import RowRule, RuleContext

# A 12-character GeoHash cell is about 3.7 cm x 1.9 cm: accept its centre within a few centimetres of the outline.
EDGE_TOLERANCE_M = 0.05


class ParcelIdGeohash(RowRule):
    """The parcel ID is a 12-character GeoHash that decodes inside the parcel."""

    def check(self, batch: LayerBatch, ctx: RuleContext) -> None:
        name = self.param("field", "parcel_id")
        ids = batch.values[name]
        present = np.array([v is not None for v in ids], dtype=bool)
        well_formed = present & geohash.is_geohash(ids, precision=12)
        self.fail(batch, present & ~well_formed, lambda i: (
            f"{name} {ids[i]!r} is not a 12-character GeoHash (digits and letters except a, i, l, o)"), name)
        rows = np.flatnonzero(well_formed & ~shapely.is_missing(batch.geometry))
        if not len(rows):
            return
        lon, lat, _, _ = geohash.decode(np.asarray(ids[rows], dtype=object))
        x, y = crs.transform_xy(lon, lat, 4326, self.layer.storage_srid)
        inside = shapely.dwithin(batch.geometry[rows], shapely.points(x, y), EDGE_TOLERANCE_M)
        outside = rows[~inside]
        distance = shapely.distance(batch.geometry[outside], shapely.points(x[~inside], y[~inside]))
        for i, d in zip(outside, distance):
            self.fail_row(batch, i, f"{name} {ids[i]} decodes to a point {d:,.2f} m outside the parcel "
                                    "(a wrong ID, or coordinates converted with a wrong datum)", name)
