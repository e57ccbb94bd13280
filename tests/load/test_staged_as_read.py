"""What is staged as it was read, and staged exactly as if it had been made anew:

* free text held as Arrow until something reads it (same values, same row hashes as numpy text), made numpy,
  once, by the first rule that reads it (edits in place then count);
* a geometry still the very object parsed from the source's WKB, staged as those bytes; any other written anew."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import shapely

from gisplatform.layers import load_layers
from gisplatform.load.staging import to_arrow
from gisplatform.transform.batch import LayerBatch, TypedValues
from gisplatform.transform.typing import convert, empty

ADDRESSES = ["Thôn Nà Pàn, xã Hoàng Văn Thụ", None, "Khối 5, phường Đông Kinh"]


def parcels_batch(address, geometry: np.ndarray | None = None, **source) -> LayerBatch:
    layer = load_layers()["cadastral_parcels"]
    n = len(ADDRESSES)
    values = {f.name: empty(f, n) for f in layer.fields}
    values["parcel_address"] = address
    values["parcel_no"] = np.array(["1", "2", "3"], dtype=object)
    return LayerBatch(layer=layer, file="thua_dat.gpkg", row_numbers=np.arange(1, n + 1), values=values,
                      geometry=np.array([shapely.box(i, 0, i + 1, 1) for i in range(n)], dtype=object)
                      if geometry is None else geometry,
                      record_dates=np.full(n, np.datetime64("2025-01-01", "D")),
                      source_hash=np.arange(n, dtype=np.int64), source_raw=[None] * n,
                      raw_records=lambda rows: [{} for _ in rows], stated_crs=np.full(n, 9215), **source)


def test_free_text_converts_to_arrow_that_is_staged_as_numpy_text_would_be():
    field = load_layers()["cadastral_parcels"].field("parcel_address")
    converted = convert(pa.array(["  Thôn Nà Pàn, xã Hoàng Văn Thụ ", "", "Khối 5, phường Đông Kinh"]), field)
    assert isinstance(converted.values, pa.Array) and converted.values.to_pylist() == ADDRESSES

    lazy = parcels_batch(pa.array(ADDRESSES, pa.string()))
    eager = parcels_batch(np.array(ADDRESSES, dtype=object))
    staged_lazy, staged_eager = to_arrow(lazy, first_sid=0), to_arrow(eager, first_sid=0)
    assert isinstance(lazy.values.stored("parcel_address"), pa.Array)  # staging did not make Python strings
    assert staged_lazy.equals(staged_eager)
    assert staged_lazy.column("parcel_address").to_pylist() == ADDRESSES


def test_reading_text_makes_it_numpy_once_and_edits_are_staged():
    batch = parcels_batch(pa.array(ADDRESSES, pa.string()))
    assert batch.values.missing("parcel_address").tolist() == [False, True, False]
    assert isinstance(batch.values.stored("parcel_address"), pa.Array)  # a missing-value check reads no text
    values = batch.values["parcel_address"]
    assert isinstance(values, np.ndarray) and values.tolist() == ADDRESSES
    values[1] = "Thôn Khòn Pổng"  # a rule's repair, in place
    assert batch.values["parcel_address"] is values
    assert to_arrow(batch, first_sid=0).column("parcel_address")[1].as_py() == "Thôn Khòn Pổng"
    assert batch.values.missing("parcel_address").tolist() == [False, False, False]


def test_typed_values_behave_as_a_mapping():
    values = TypedValues({"a": np.array([1.0]), "b": pa.chunked_array([pa.array(["x"])])})
    assert isinstance(values.stored("b"), pa.Array)  # held as one Arrow array, whatever it came as
    assert sorted(values) == ["a", "b"] and len(values) == 2 and values.get("c") is None
    assert values.get("b").tolist() == ["x"]
    del values["a"]
    assert list(values) == ["b"]


def test_geometries_still_as_parsed_are_staged_as_the_source_bytes():
    polygons = [shapely.MultiPolygon([shapely.box(419466.885 + i, 2462257.555, 419480.1 + i, 2462270.0)])
                for i in range(3)]
    source_wkb = pa.array(shapely.to_wkb(polygons, byte_order=0), pa.binary())  # big-endian: told apart below
    parsed = shapely.from_wkb(source_wkb.to_numpy(zero_copy_only=False))
    geometry = parsed.copy()
    geometry[1] = shapely.MultiPolygon([shapely.box(0, 0, 1, 1)])  # a repair: a new object
    batch = parcels_batch(pa.array(ADDRESSES), geometry, parsed_geometry=parsed, source_wkb=source_wkb)

    staged = to_arrow(batch, first_sid=0).column("geom").to_pylist()

    assert staged[0] == source_wkb[0].as_py() and staged[2] == source_wkb[2].as_py()
    assert staged[1] == shapely.to_wkb(geometry[1], include_srid=False)
    assert shapely.equals_exact(shapely.from_wkb(staged), geometry, 0).all()
    written_anew = to_arrow(parcels_batch(pa.array(ADDRESSES), geometry), first_sid=0).column("geom")
    assert shapely.equals_exact(shapely.from_wkb(written_anew.to_numpy(zero_copy_only=False)), geometry, 0).all()

    batch.issues.add_where(np.array([True, False, False]), "geometry_valid", "error", "rejected")
    assert to_arrow(batch, first_sid=0).column("geom")[0].as_py() is None  # a rejected row stages no geometry
