"""GeoHash encode / decode (the national parcel ID is a 12-character GeoHash)."""
import numpy as np
import pytest

from gisplatform import crs, geohash


def test_lang_son_reference_point():
    # E 450 000, N 2 420 000 in EPSG:9215 -> WGS 84 through EPSG:6960 -> GeoHash (shared/domain §1.8)
    lon, lat = crs.transform_xy([450_000.0], [2_420_000.0], 9215, 4326)
    assert geohash.encode(lon, lat)[0] == "w7gumw6hh450"


@pytest.mark.parametrize("code, lon, lat", [
    ("ezs42", -5.6, 42.6),  # Wikipedia's example
    ("u4pruydqqvj", 10.40744, 57.64911),  # geohash.org example (Jutland)
])
def test_public_examples(code, lon, lat):
    assert geohash.encode([lon], [lat], len(code))[0] == code
    dlon, dlat, elon, elat = geohash.decode([code])
    assert abs(dlon[0] - lon) <= elon[0] + 1e-9 and abs(dlat[0] - lat) <= elat[0] + 1e-9


def test_decode_cell_sizes():
    lon, lat, elon, elat = geohash.decode(np.array(["ezs42", "w7gumw6hh450"]))
    assert lon[0] == pytest.approx(-5.603, abs=1e-3) and lat[0] == pytest.approx(42.605, abs=1e-3)
    assert elon[0] == pytest.approx(360 / 2**13 / 2) and elat[0] == pytest.approx(180 / 2**12 / 2)
    # 12 characters: about 3.7 cm x 1.9 cm
    assert elon[1] * 2 * 111_320 * np.cos(np.radians(21.9)) == pytest.approx(0.0346, abs=0.002)
    assert elat[1] * 2 * 110_574 == pytest.approx(0.0185, abs=0.001)


def test_round_trip_vectorised():
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(-180, 180, 10_000), rng.uniform(-90, 90, 10_000)
    codes = geohash.encode(lon, lat)
    assert codes.shape == (10_000,) and all(len(c) == 12 for c in codes[:50])
    dlon, dlat, elon, elat = geohash.decode(codes)
    assert np.all(np.abs(dlon - lon) <= elon + 1e-12) and np.all(np.abs(dlat - lat) <= elat + 1e-12)


def test_mixed_lengths_and_upper_case():
    lon, lat, _, _ = geohash.decode(["ezs42", "EZS42", "w7gumw6hh450"])
    assert lon[0] == lon[1]


def test_is_geohash():
    assert geohash.is_geohash("w7gumw6hh450")
    assert geohash.is_geohash("w7gumw6hh450", precision=12)
    assert not geohash.is_geohash("w7gumw6hh45", precision=12)
    assert not geohash.is_geohash("w7gumw6hh45a")  # 'a' is not in the alphabet
    assert not geohash.is_geohash("")
    assert not geohash.is_geohash(None)
    assert not geohash.is_geohash("w7gumw6hh4500")  # 13 characters
    assert list(geohash.is_geohash(["ezs42", "xyz!"])) == [True, False]


def test_errors():
    with pytest.raises(ValueError):
        geohash.encode([200.0], [0.0])
    with pytest.raises(ValueError):
        geohash.decode(["ai"])
