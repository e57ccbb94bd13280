"""The cached view of pyproj inside pygeoapi.crs (gisplatform.publish.transformers): same answers, built once."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pygeoapi.crs as pygeoapi_crs
import pyproj
import pytest
from pyproj.exceptions import CRSError

from gisplatform.layers import get_layer
from gisplatform.publish.features import CRS84, EPSG_URI, FeatureProvider, feature_provider_definition
from gisplatform.publish.transformers import SharedCRS, cache_pygeoapi_transformers

LAYER = "cadastral_parcels"
URIS = [CRS84, EPSG_URI.format(4326), EPSG_URI.format(9215), EPSG_URI.format(3857),
        "urn:ogc:def:crs:EPSG::4326"]


@pytest.fixture(autouse=True)
def cached():
    cache_pygeoapi_transformers()  # idempotent; the server installs it once per process as well
    yield


def _plain(monkeypatch, function, *args):
    """What pygeoapi answers with pyproj as it is."""
    with monkeypatch.context() as m:
        m.setattr(pygeoapi_crs, "pyproj", pyproj)
        return function(*args)


@pytest.mark.parametrize("uri", URIS)
def test_get_crs_is_built_once_and_answers_as_pyproj_does(monkeypatch, uri):
    crs = pygeoapi_crs.get_crs(uri)
    assert crs is pygeoapi_crs.get_crs(uri) and isinstance(crs, SharedCRS) and isinstance(crs, pyproj.CRS)
    plain = _plain(monkeypatch, pygeoapi_crs.get_crs, uri)
    assert type(plain) is pyproj.CRS and crs == plain and plain == crs and hash(crs) == hash(plain)
    assert crs.to_wkt() == plain.to_wkt() and crs.to_wkt("WKT1_GDAL") == plain.to_wkt("WKT1_GDAL")
    assert crs.to_epsg() == plain.to_epsg() and crs.to_epsg(min_confidence=20) == plain.to_epsg(min_confidence=20)
    assert list(map(repr, crs.axis_info)) == list(map(repr, plain.axis_info))  # Axis has no ==
    assert crs.is_geographic == plain.is_geographic


def test_a_crs_object_passes_through_and_errors_are_not_remembered():
    plain = pyproj.CRS.from_epsg(9215)
    assert pygeoapi_crs.get_crs(plain) is plain  # isinstance(…, pyproj.CRS) still holds in pygeoapi.crs
    for _ in range(2):
        with pytest.raises(CRSError):
            pygeoapi_crs.get_crs(EPSG_URI.format(999999))
    assert pygeoapi_crs.pyproj.CRS("EPSG:4326") == pyproj.CRS("EPSG:4326")  # the rest of pyproj.CRS as is
    assert pygeoapi_crs.pyproj.CRS.from_wkt(plain.to_wkt()) == plain


@pytest.mark.parametrize("query", [None, *URIS[:4]])
def test_crs_transform_specs_are_unchanged(monkeypatch, query):
    definition = feature_provider_definition(get_layer(LAYER))
    assert (pygeoapi_crs.create_crs_transform_spec(definition, query)
            == _plain(monkeypatch, pygeoapi_crs.create_crs_transform_spec, definition, query))


def test_bbox_transform_is_unchanged(monkeypatch):
    bbox = [106.70, 21.80, 106.80, 21.90]
    target = EPSG_URI.format(9215)
    assert (pygeoapi_crs.transform_bbox(bbox, CRS84, target)
            == _plain(monkeypatch, pygeoapi_crs.transform_bbox, bbox, CRS84, target))


def test_shared_crs_serves_many_threads():
    """pyproj gives each thread its own PROJ object for a shared CRS: the same answers from every thread."""
    crs = pygeoapi_crs.get_crs(EPSG_URI.format(9215))
    expected = pyproj.CRS.from_epsg(9215).to_wkt()

    def use(i: int) -> tuple:
        transformer = pygeoapi_crs.pyproj.Transformer.from_crs(pygeoapi_crs.get_crs(CRS84), crs, always_xy=True)
        return crs.to_wkt(), crs.to_epsg(), transformer.transform(106.75 + i * 1e-4, 21.85)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(use, range(64)))
    assert all(wkt == expected and epsg == 9215 for wkt, epsg, _ in answers)
    assert answers[0][2] == use(0)[2]


def test_the_provider_checks_its_storage_crs_with_the_shared_crs():
    provider = FeatureProvider(feature_provider_definition(get_layer(LAYER)))
    assert isinstance(provider.storage_crs, SharedCRS) and provider.storage_srid == 9215
