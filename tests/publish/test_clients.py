"""Real OGC API clients against the real server: GDAL's OAPIF driver (pyogrio's GDAL 3.12 and Debian's
ogrinfo 3.6) and OWSLib. What they read must be exactly what is in PostGIS."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import sqlalchemy as sa

from gisplatform.layers import load_layers

pyogrio = pytest.importorskip("pyogrio")

LAYER = "cadastral_parcels"
COLUMNS = ["parcel_id", "parcel_no", "map_sheet_no", "area_m2", "parcel_address", "land_use_codes"]
BBOX = (106.70, 21.80, 106.80, 21.90)  # lon/lat, a part of the province


def _db_rows(engine, where: str = "TRUE", params: dict | None = None):
    with engine.connect() as c:
        return c.execute(sa.text(f"SELECT id, {', '.join(COLUMNS)}, "
                                 "ST_AsText(ST_PointOnSurface(geom_wgs84)) AS pt, "
                                 "ST_AsText(ST_PointOnSurface(geom)) AS pt_storage, ST_SRID(geom) AS srid "
                                 f"FROM api.{LAYER} WHERE {where} ORDER BY id"), params or {}).mappings().all()


def _items_requests(log_text: str) -> int:
    return len(re.findall(rf"GET /ogc/collections/{LAYER}/items\?", log_text))


@pytest.fixture(scope="module")
def oapif(api) -> str:
    return f"OAPIF:{api}"


# --- GDAL (pyogrio, bundled GDAL) ----------------------------------------------------------------------------


def test_gdal_lists_every_layer(oapif):
    names = {row[0] for row in pyogrio.list_layers(oapif)}
    assert set(load_layers()) <= names


def test_gdal_feature_count_matches_postgis(oapif, published_engine):
    info = pyogrio.read_info(oapif, layer=LAYER)
    with published_engine.connect() as c:
        total = c.execute(sa.text(f"SELECT count(*) FROM api.{LAYER}")).scalar()
    assert info["features"] == total
    assert set(COLUMNS) <= set(info["fields"])


def test_gdal_pages_through_the_whole_layer(oapif, published_engine, api_server_log):
    """PAGE_SIZE=1000 on ~4 700 parcels: several pages joined by following `next` links; none lost or doubled."""
    before = _items_requests(api_server_log.read_text(errors="replace"))
    df = pyogrio.read_dataframe(oapif, layer=LAYER, fid_as_index=True, PAGE_SIZE="1000")
    pages = _items_requests(api_server_log.read_text(errors="replace")) - before
    rows = _db_rows(published_engine)
    assert len(df) == len(rows) > 2000
    assert pages >= len(rows) // 1000 + 1, pages
    # The GeoJSON ids are integers: GDAL makes them the FIDs.
    assert df.index.is_unique and sorted(df.index.astype(int)) == [r["id"] for r in rows]
    # GDAL >= 3.7 asks for the collection's storageCrs (EPSG:9215) when the server lists it (Part 2).
    storage = df.crs is not None and df.crs.to_epsg() == rows[0]["srid"]
    for r in rows[:: max(1, len(rows) // 50)]:  # ~50 rows spread over all pages
        got = df.loc[r["id"]]
        for column in ("parcel_id", "parcel_no", "parcel_address", "land_use_codes"):
            assert (got[column] or None) == r[column], (r["id"], column, got[column], r[column])
        assert got["area_m2"] == pytest.approx(r["area_m2"])
        assert int(got["map_sheet_no"]) == r["map_sheet_no"]
        point = _point(r["pt_storage"] if storage else r["pt"])
        assert got.geometry.buffer(1e-3 if storage else 1e-8).contains(point), r["id"]
    texts = [r["parcel_address"] for r in rows if r["parcel_address"]]
    assert any(re.search("[ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹđ]", t) for t in texts)
    assert set(df["parcel_address"].dropna()) == set(texts)  # Vietnamese text intact


def _point(wkt: str):
    import shapely

    return shapely.from_wkt(wkt)


def _storage_bbox() -> list[float]:
    """BBOX in the storage CRS, as the server computes it (pygeoapi transforms the two corners)."""
    from pygeoapi.crs import transform_bbox

    return transform_bbox(list(BBOX), "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                          "http://www.opengis.net/def/crs/EPSG/0/9215")


def _ids_in(engine, box: list[float]) -> list[int]:
    with engine.connect() as c:
        return c.execute(sa.text(
            f"SELECT id FROM api.{LAYER} WHERE ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 9215)) "
            "ORDER BY id"), dict(zip("abcd", box))).scalars().all()


def test_gdal_bbox_is_sent_to_the_server(oapif, published_engine):
    # GDAL reads the layer in its storage CRS (EPSG:9215), so its spatial filter is in that CRS too.
    box = _storage_bbox()
    df = pyogrio.read_dataframe(oapif, layer=LAYER, bbox=tuple(box), fid_as_index=True)
    expected = _ids_in(published_engine, box)
    assert expected and sorted(df.index.astype(int)) == expected


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="Debian's ogrinfo (gdal-bin) is not installed: "
                                                           "run scripts/setup.sh")
def test_debian_ogrinfo_lists_layers_and_counts(api, published_engine):
    listing = subprocess.run(["ogrinfo", "-ro", f"OAPIF:{api}"], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    for name in load_layers():
        assert re.search(rf"^\d+: {name}\b", listing.stdout, re.M), (name, listing.stdout)
    summary = subprocess.run(["ogrinfo", "-ro", "-so", f"OAPIF:{api}", LAYER], capture_output=True, text=True,
                             timeout=120)
    assert summary.returncode == 0, summary.stderr
    with published_engine.connect() as c:
        total = c.execute(sa.text(f"SELECT count(*) FROM api.{LAYER}")).scalar()
    assert f"Feature Count: {total}" in summary.stdout, summary.stdout


# --- OWSLib ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def owslib_api(api):
    from owslib.ogcapi.features import Features

    return Features(api, timeout=60)


def test_owslib_collections(owslib_api):
    assert set(load_layers()) | {"conflicts"} == set(owslib_api.feature_collections())  # + analysis results
    ids = {c["id"] for c in owslib_api.collections()["collections"]}
    assert set(load_layers()) < ids  # plus the metadata catalogue
    assert owslib_api.collection(LAYER)["title"] == load_layers()[LAYER].title.vi
    assert "conformsTo" in owslib_api.conformance()
    assert owslib_api.api()["openapi"].startswith("3.0")


def test_owslib_items_limit_bbox_filter_and_one_item(owslib_api, published_engine):
    page = owslib_api.collection_items(LAYER, limit=5)
    assert page["numberReturned"] == 5 and len(page["features"]) == 5

    inside = owslib_api.collection_items(LAYER, bbox=list(BBOX), limit=5000)
    expected = _ids_in(published_engine, _storage_bbox())
    with published_engine.connect() as c:
        ont = c.execute(sa.text(f"SELECT count(*) FROM api.{LAYER} WHERE land_use_code = 'ONT'")).scalar()
    assert inside["numberMatched"] == len(expected) > 0
    assert sorted(int(f["id"]) for f in inside["features"]) == expected

    filtered = owslib_api.collection_items(LAYER, filter="land_use_code = 'ONT'", limit=10)
    assert ont > 0 and filtered["numberMatched"] == ont
    assert all(f["properties"]["land_use_code"] == "ONT" for f in filtered["features"])

    rows = _db_rows(published_engine, "parcel_address IS NOT NULL")
    item = owslib_api.collection_item(LAYER, rows[0]["id"])
    assert int(item["id"]) == rows[0]["id"]
    assert item["properties"]["parcel_address"] == rows[0]["parcel_address"]
    assert item["geometry"]["type"] in ("Polygon", "MultiPolygon")
