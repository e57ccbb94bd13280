"""GeoHash, vectorised with numpy: the national parcel ID (TT 19/2026/TT-BNNMT) is a 12-character GeoHash.

A GeoHash interleaves the bits of the longitude (first) and the latitude, five bits per base-32 character. 12
characters are 60 bits: 30 for the longitude and 30 for the latitude, a cell of about 3.7 cm x 1.9 cm.

Coordinates are WGS 84 degrees; transform VN-2000 points first (``gisplatform.crs.transform_xy(x, y, 9215, 4326)``).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ALPHABET = "0123456789bcdefghjkmnpqrstuvwxyz"
MAX_PRECISION = 12  # 60 bits fit a uint64

_ALPHABET_BYTES = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)
_DECODE = np.full(256, 255, dtype=np.uint8)
_DECODE[_ALPHABET_BYTES] = np.arange(32, dtype=np.uint8)
_DECODE[np.frombuffer(ALPHABET.upper().encode("ascii"), dtype=np.uint8)] = np.arange(32, dtype=np.uint8)
_VALID = frozenset(ALPHABET)


def _bit_split(precision: int) -> tuple[int, int]:
    bits = 5 * precision
    return (bits + 1) // 2, bits // 2  # longitude bits, latitude bits (longitude takes the first bit)


def _quantise(v: np.ndarray, lo: float, span: float, nbits: int) -> np.ndarray:
    scaled = np.floor((v - lo) / span * float(1 << nbits))
    return np.clip(scaled, 0, (1 << nbits) - 1).astype(np.uint64)


def encode(lon, lat, precision: int = 12) -> np.ndarray:
    """GeoHashes (numpy ``<U{precision}`` array) of WGS 84 longitudes and latitudes (degrees)."""
    if not 1 <= precision <= MAX_PRECISION:
        raise ValueError(f"precision must be 1..{MAX_PRECISION}, got {precision}")
    lon = np.asarray(lon, dtype="float64")
    lat = np.asarray(lat, dtype="float64")
    shape = np.broadcast(lon, lat).shape
    lon, lat = np.broadcast_to(lon, shape).ravel(), np.broadcast_to(lat, shape).ravel()
    if np.any(~np.isfinite(lon) | ~np.isfinite(lat)):
        raise ValueError("GeoHash needs finite coordinates")
    if np.any((lat < -90) | (lat > 90) | (lon < -180) | (lon > 180)):
        raise ValueError("GeoHash needs longitudes in [-180, 180] and latitudes in [-90, 90]")
    nlon, nlat = _bit_split(precision)
    qlon = _quantise(lon, -180.0, 360.0, nlon)
    qlat = _quantise(lat, -90.0, 180.0, nlat)
    code = np.zeros(lon.shape, dtype=np.uint64)
    one = np.uint64(1)
    ilon, ilat = nlon, nlat
    for i in range(5 * precision):  # most significant bit first: lon, lat, lon, ...
        if i % 2 == 0:
            ilon -= 1
            bit = (qlon >> np.uint64(ilon)) & one
        else:
            ilat -= 1
            bit = (qlat >> np.uint64(ilat)) & one
        code = (code << one) | bit
    chars = np.empty((lon.size, precision), dtype=np.uint8)
    for k in range(precision):
        shift = np.uint64(5 * (precision - 1 - k))
        chars[:, k] = _ALPHABET_BYTES[((code >> shift) & np.uint64(31)).astype(np.intp)]
    out = chars.view(f"S{precision}").ravel().astype(f"U{precision}")
    return out.reshape(shape)


def _decode_same_length(hashes: np.ndarray, precision: int) -> tuple[np.ndarray, ...]:
    try:  # numpy's own U -> S cast encodes ASCII in C (np.char.encode calls str.encode per value)
        raw = np.frombuffer(hashes.astype(f"U{precision}").astype(f"S{precision}").tobytes(), dtype=np.uint8)
    except UnicodeEncodeError:
        raise ValueError("not a GeoHash: characters outside the GeoHash alphabet (no a, i, l, o)") from None
    values = _DECODE[raw].reshape(-1, precision)
    if np.any(values == 255):
        raise ValueError("not a GeoHash: characters outside the GeoHash alphabet (no a, i, l, o)")
    nlon, nlat = _bit_split(precision)
    qlon = np.zeros(values.shape[0], dtype=np.uint64)
    qlat = np.zeros(values.shape[0], dtype=np.uint64)
    one = np.uint64(1)
    i = 0
    for k in range(precision):
        v = values[:, k].astype(np.uint64)
        for b in range(4, -1, -1):
            bit = (v >> np.uint64(b)) & one
            if i % 2 == 0:
                qlon = (qlon << one) | bit
            else:
                qlat = (qlat << one) | bit
            i += 1
    lon_size = 360.0 / float(1 << nlon)
    lat_size = 180.0 / float(1 << nlat)
    lon = -180.0 + (qlon.astype("float64") + 0.5) * lon_size
    lat = -90.0 + (qlat.astype("float64") + 0.5) * lat_size
    return lon, lat, np.full(lon.shape, lon_size / 2), np.full(lat.shape, lat_size / 2)


def decode(hashes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lon, lat, lon_err, lat_err): cell centres and half-sizes in degrees, one per hash (any lengths 1..12)."""
    arr = np.asarray(hashes)
    shape = arr.shape
    flat = arr.ravel().astype(str)
    lengths = np.char.str_len(flat) if flat.size else np.zeros(0, dtype=int)
    if np.any((lengths < 1) | (lengths > MAX_PRECISION)):
        raise ValueError(f"GeoHash length must be 1..{MAX_PRECISION}")
    out = [np.empty(flat.size, dtype="float64") for _ in range(4)]
    for n in np.unique(lengths):
        idx = np.flatnonzero(lengths == n)
        for o, part in zip(out, _decode_same_length(flat[idx], int(n))):
            o[idx] = part
    return tuple(o.reshape(shape) for o in out)  # type: ignore[return-value]


def bounds(hashes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lon_min, lat_min, lon_max, lat_max) of each hash's cell."""
    lon, lat, dlon, dlat = decode(hashes)
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


def is_geohash(s, precision: int | None = None) -> bool | np.ndarray:
    """True for a string of 1..12 GeoHash characters (lower case; exactly ``precision`` long if given).

    An array (or list) gives an array of booleans.
    """
    if isinstance(s, (list, tuple, np.ndarray)):
        values = np.asarray(s, dtype=object)
        # one regular-expression pass in Arrow over the whole column
        length = f"{{{precision}}}" if precision else f"{{1,{MAX_PRECISION}}}"
        texts = pa.array([v if isinstance(v, str) else None for v in values.ravel()], pa.string())
        ok = pc.fill_null(pc.match_substring_regex(texts, f"^[{ALPHABET}]{length}$"), False)
        return np.asarray(ok).reshape(values.shape)
    if not isinstance(s, str) or not 1 <= len(s) <= MAX_PRECISION:
        return False
    if precision is not None and len(s) != precision:
        return False
    return all(c in _VALID for c in s)
