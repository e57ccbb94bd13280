"""Coordinates to the millimetre: geometries off it are rebuilt rounded, those on it are kept as they are, Z and M
are dropped (storage is 2D) and a missing geometry stays missing."""
from __future__ import annotations

import numpy as np
import shapely

from gisplatform.transform.geometry import round_mm


def test_only_geometries_off_the_millimetre_or_with_z_or_m_are_rebuilt():
    on_mm = shapely.box(419466.885, 2462257.555, 419480.1, 2462270.0)
    off_mm = shapely.box(419466.8854, 2462257.5556, 419480.10049, 2462270.0)
    with_z = shapely.force_3d(shapely.box(419466.885, 2462257.555, 419480.1, 2462270.0), 312.5)
    with_m = shapely.from_wkt("POLYGON M ((419466.885 2462257.555 7, 419480.1 2462257.555 7, 419480.1 2462270 7, "
                              "419466.885 2462257.555 7))")
    geoms = np.array([on_mm, off_mm, None, with_z, shapely.Polygon(), with_m], dtype=object)

    rounded = round_mm(geoms)

    assert rounded[0] is on_mm  # nothing to round: the same object, not a copy
    assert shapely.get_coordinates(rounded[1]).tolist() == [
        [419480.1, 2462257.556], [419480.1, 2462270.0], [419466.885, 2462270.0], [419466.885, 2462257.556],
        [419480.1, 2462257.556]]
    assert rounded[2] is None
    assert not shapely.has_z(rounded[3]) and shapely.equals_exact(rounded[3], shapely.force_2d(with_z), 0)
    assert rounded[4].is_empty
    assert not shapely.has_m(rounded[5]) and shapely.get_coordinates(rounded[5]).shape == (4, 2)
    assert geoms[1] is off_mm  # the input array is left as it was
