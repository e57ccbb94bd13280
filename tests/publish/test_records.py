"""The metadata catalogue (gisplatform.publish.records): one bilingual record per layer, lineage from the ETL
run log, search, filters, and how pygeoapi serves it."""
from __future__ import annotations

import contextlib
import json
import os

import pytest
import sqlalchemy as sa
from pygeoapi.provider.base import ProviderItemNotFoundError

from gisplatform.layers import load_layers
from gisplatform.publish import connection
from gisplatform.publish import records as R


@contextlib.contextmanager
def api_url(url: sa.engine.URL):
    """Point the API connection (read-only role) at ``url``'s database, then put things back."""
    saved = os.environ.get("GISPLATFORM_API_DATABASE_URL")
    connection.reset()
    os.environ["GISPLATFORM_API_DATABASE_URL"] = url.set(
        username="gisplatform_api", password=None).render_as_string(hide_password=False)
    try:
        yield
    finally:
        connection.reset()
        if saved is None:
            os.environ.pop("GISPLATFORM_API_DATABASE_URL", None)
        else:
            os.environ["GISPLATFORM_API_DATABASE_URL"] = saved


@pytest.fixture(scope="module")
def api_db(published_database):
    with api_url(published_database):
        yield published_database


@pytest.fixture(scope="module")
def pg(api_db):
    engine = sa.create_engine(api_db)
    yield engine
    engine.dispose()


@pytest.fixture
def catalogue(api_db) -> R.CatalogueProvider:
    return R.CatalogueProvider(R.catalogue_provider_definition("http://h/ogc"))


def ids(collection: dict) -> list[str]:
    return [f["id"] for f in collection["features"]]


# --- records ---------------------------------------------------------------------------------------------------------


def test_one_record_per_layer(catalogue):
    result = catalogue.query(limit=100)
    layers = load_layers()
    assert ids(result) == list(layers)
    assert result["numberMatched"] == result["numberReturned"] == len(layers)
    for record in result["features"]:
        assert record["type"] == "Feature"
        assert record["conformsTo"] == ["http://www.opengis.net/spec/ogcapi-records-1/1.0/req/record-core"]
        props = record["properties"]
        assert props["type"] == "dataset"
        assert props["license"] == "CC-BY-4.0"
        assert props["crs"] == ["http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                                "http://www.opengis.net/def/crs/EPSG/0/4326",
                                "http://www.opengis.net/def/crs/EPSG/0/9215",
                                "http://www.opengis.net/def/crs/EPSG/0/3857"]
        rels = {link["rel"]: link["href"] for link in record["links"]}
        assert rels["items"] == f"http://h/ogc/collections/{record['id']}/items?f=json"
        assert rels["http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"] == \
            f"http://h/ogc/collections/{record['id']}/tiles?f=json"
        assert rels["describes"] == f"http://h/ogc/collections/{record['id']}?f=json"


def test_titles_descriptions_and_keywords_in_both_languages(catalogue):
    layers = load_layers()
    vi = {r["id"]: r for r in catalogue.query(limit=100)["features"]}
    en = {r["id"]: r for r in catalogue.query(limit=100, language="en")["features"]}
    for name, layer in layers.items():
        assert vi[name]["properties"]["title"] == layer.title.vi
        assert en[name]["properties"]["title"] == layer.title.en
        assert en[name]["properties"]["description"] == layer.description.en
        assert vi[name]["properties"]["language"]["code"] == "vi"
        assert en[name]["properties"]["language"]["code"] == "en"
        assert [lang["code"] for lang in vi[name]["properties"]["languages"]] == ["vi", "en"]
        for code in ("vi", "en"):  # both languages in every record, whatever language was asked for
            for record in (vi[name], en[name]):
                translation = record["properties"]["translations"][code]
                assert translation["title"] == layer.title.get(code)
                assert translation["description"] == layer.description.get(code)
                assert translation["keywords"] == list(layer.keywords[code])
        keywords = vi[name]["properties"]["keywords"]
        assert set(layer.keywords["vi"]) <= set(keywords) and set(layer.keywords["en"]) <= set(keywords)
        alternate = [link for link in vi[name]["links"] if link["rel"] == "alternate"]
        assert alternate[0]["hreflang"] == "en" and alternate[0]["href"].endswith(f"/items/{name}?f=json&lang=en")
    assert vi["cadastral_parcels"]["properties"]["title"] == "Thửa đất địa chính"
    assert en["cadastral_parcels"]["properties"]["title"] == "Cadastral parcels"


def test_lineage_is_the_last_successful_run(catalogue, pg):
    with pg.connect() as c:
        runs = {r["layer"]: r for r in c.execute(sa.text("SELECT * FROM api.catalogue")).mappings()
                if r["layer"] in load_layers()}  # raster layers' runs are logged too; their records are not yet
    records = {r["id"]: r for r in catalogue.query(limit=100)["features"]}
    assert set(runs) == set(records)  # the sample loads every layer
    for name, run in runs.items():
        lineage = records[name]["properties"]["lineage"]
        for key in ("run_id", "job", "read", "inserted", "updated", "unchanged", "rejected", "retired", "features",
                    "source_checksum"):
            assert lineage[key] == run[key], (name, key)
        finished = run["finished_at"].isoformat().replace("+00:00", "Z")
        assert lineage["finished_at"] == records[name]["properties"]["updated"] == finished
        assert str(run["read"]) in lineage["statement"]
        assert records[name]["properties"]["features"] == run["features"]
    assert records["cadastral_parcels"]["properties"]["lineage"]["rejected"] > 0  # the sample has bad parcels


def test_extent_and_time_come_from_the_layer(catalogue, pg):
    records = {r["id"]: r for r in catalogue.query(limit=100)["features"]}
    with pg.connect() as c:
        box = c.execute(sa.text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                "(SELECT ST_Extent(geom_wgs84) e FROM api.cadastral_parcels) t")).one()
        first, last = c.execute(sa.text("SELECT min(record_date), max(record_date) FROM api.cadastral_parcels")).one()
    geometry = records["cadastral_parcels"]["geometry"]
    assert geometry["type"] == "Polygon"
    ring = geometry["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 5
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    assert (min(xs), min(ys), max(xs), max(ys)) == pytest.approx(tuple(box))
    assert records["cadastral_parcels"]["time"]["interval"] == [first.isoformat(), last.isoformat()]
    assert records["water_sources"]["time"] is None  # no record date in that layer


# --- queries -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["thua dat", "Thửa đất", "THUA DAT", "thửa", "parcel", "dia chinh", "cadastral"])
def test_q_is_accent_insensitive_in_both_languages(catalogue, q):
    assert ids(catalogue.query(q=q))[0] == "cadastral_parcels"
    assert ids(catalogue.query(q=q, language="en"))[0] == "cadastral_parcels"


def test_q_terms(catalogue):
    assert set(ids(catalogue.query(q="nguon nuoc"))) >= {"water_sources", "water_protection_corridors"}
    assert ids(catalogue.query(q="khoáng sản")) == ["mining_licences"]
    assert set(ids(catalogue.query(q="khoang san,xa phuong"))) == {"mining_licences", "admin_units"}  # any term
    assert ids(catalogue.query(q="khoang san thua dat")) == []  # all words of a term
    assert ids(catalogue.query(q="zzzz")) == []
    assert catalogue.query(q="nuoc", resulttype="hits")["numberMatched"] == len(ids(catalogue.query(q="nuoc")))


def test_bbox(catalogue, pg):
    with pg.connect() as c:
        x, y = c.execute(sa.text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom_wgs84) p "
                                 "FROM api.cadastral_parcels ORDER BY id LIMIT 1) t")).one()
    near = ids(catalogue.query(bbox=[x - 0.001, y - 0.001, x + 0.001, y + 0.001]))
    assert "cadastral_parcels" in near and "admin_units" in near
    assert ids(catalogue.query(bbox=[105.80, 21.00, 105.90, 21.10])) == []  # Hà Nội
    assert len(ids(catalogue.query(bbox=[100, 8, 110, 24]))) == len(load_layers())


def test_datetime(catalogue):
    everything = catalogue.query(limit=100)["features"]
    timed = {r["id"] for r in everything if r["time"]}
    assert timed and timed < {r["id"] for r in everything}
    assert set(ids(catalogue.query(datetime_="1900-01-01/.."))) == timed
    assert ids(catalogue.query(datetime_="../1900-01-01")) == []
    parcels = next(r for r in everything if r["id"] == "cadastral_parcels")
    day = parcels["time"]["interval"][0]
    assert "cadastral_parcels" in ids(catalogue.query(datetime_=day))
    assert "cadastral_parcels" in ids(catalogue.query(datetime_=f"{day}T12:00:00Z"))


def test_sortby_limit_offset_and_properties(catalogue):
    by_size = ids(catalogue.query(sortby=[{"property": "features", "order": "-"}], limit=100))
    assert by_size[0] == "cadastral_parcels"
    by_title = catalogue.query(sortby=[{"property": "title", "order": "+"}], limit=100, language="en")
    titles = [r["properties"]["title"] for r in by_title["features"]]
    assert titles == sorted(titles, key=str.casefold)
    page = catalogue.query(sortby=[{"property": "features", "order": "-"}], limit=2, offset=2)
    assert ids(page) == by_size[2:4] and page["numberMatched"] == len(load_layers())
    assert ids(catalogue.query(properties=[("keywords", "Thửa đất")])) == ["cadastral_parcels"]
    assert ids(catalogue.query(properties=[("type", "dataset")], limit=100)) == list(load_layers())
    slim = catalogue.query(select_properties=["title"], skip_geometry=True, limit=1)["features"][0]
    assert set(slim["properties"]) == {"title"} and slim["geometry"] is None


def test_get_and_unknown_id(catalogue):
    record = catalogue.get("water_licences", language="en")
    assert record["id"] == "water_licences" and record["properties"]["title"] == "Water-exploitation licences"
    with pytest.raises(ProviderItemNotFoundError):
        catalogue.get("no_such_layer")


# --- lineage follows the run log ------------------------------------------------------------------------------------------


def test_records_follow_each_new_run(db, database_url):
    """A new successful run shows up in the record at the next request (failed runs do not)."""
    insert = sa.text(
        "INSERT INTO etl.runs (job, layer, mode, status, finished_at, read, inserted, updated, unchanged, rejected, "
        "retired, features, source_checksum) VALUES (:layer, :layer, 'full', :status, now(), :read, :read, 0, 0, "
        "0, 0, :read, :checksum) RETURNING run_id")
    with db.begin() as c:
        first = c.execute(insert, {"layer": "water_sources", "status": "succeeded", "read": 3,
                                   "checksum": "a" * 64}).scalar()
    with api_url(database_url):
        provider = R.CatalogueProvider(R.catalogue_provider_definition())
        record = provider.get("water_sources")
        assert record["properties"]["lineage"]["run_id"] == first
        assert record["properties"]["lineage"]["source_checksum"] == "a" * 64
        assert record["geometry"] is None  # the test database holds no features
        assert provider.get("mining_licences")["properties"]["lineage"] is None  # never loaded
        with db.begin() as c:
            second = c.execute(insert, {"layer": "water_sources", "status": "succeeded", "read": 5,
                                        "checksum": "b" * 64}).scalar()
            c.execute(insert, {"layer": "water_sources", "status": "failed", "read": 9, "checksum": "c" * 64})
        lineage = R.CatalogueProvider(R.catalogue_provider_definition()).get("water_sources")["properties"]["lineage"]
        assert (lineage["run_id"], lineage["read"], lineage["source_checksum"]) == (second, 5, "b" * 64)


# --- through pygeoapi ---------------------------------------------------------------------------------------------------------


def minimal_config(resources: dict) -> dict:
    return {
        "server": {"bind": {"host": "127.0.0.1", "port": 5000}, "url": "http://localhost:5000/ogc",
                   "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8", "languages": ["vi", "en"],
                   "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"},
                   "limits": {"default_items": 10, "max_items": 100}},
        "logging": {"level": "ERROR"},
        "metadata": {"identification": {"title": "t", "description": "d", "keywords": ["k"], "url": "http://x"},
                     "license": {"name": "CC-BY-4.0"}, "provider": {"name": "p"}, "contact": {"name": "c"}},
        "resources": resources,
    }


@pytest.fixture(scope="module")
def pygeoapi_api(api_db):
    from pygeoapi.api import API
    from pygeoapi.config import validate_config

    config = minimal_config({R.CATALOGUE_ID: R.catalogue_resource_definition()})
    assert validate_config(config)
    return API(config, {})


def call(api, function, path: str, query: str = "", **kwargs):
    from pygeoapi.api import APIRequest
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    request = Request(EnvironBuilder(path=path, query_string=query).get_environ())
    return function(api, APIRequest(request, api.locales), **kwargs)


def test_resource_definition():
    resource = R.catalogue_resource_definition()
    assert resource["type"] == "collection"
    assert set(resource["title"]) == set(resource["description"]) == {"vi", "en"}
    [provider] = resource["providers"]
    assert provider["type"] == "record" and provider["name"] == "gisplatform.publish.records.CatalogueProvider"
    assert provider["languages"] == ["vi", "en"]
    assert R.catalogue_resource_definition("http://h/ogc/")["providers"][0]["options"]["base_url"] == "http://h/ogc"


def test_pygeoapi_serves_the_catalogue(pygeoapi_api, monkeypatch):
    monkeypatch.delenv("PYGEOAPI_CONFIG", raising=False)
    from pygeoapi.api import describe_collections
    from pygeoapi.api.itemtypes import get_collection_item, get_collection_items

    headers, status, content = call(pygeoapi_api, get_collection_items, "/collections/catalogue/items",
                                    "f=json&q=thua%20dat", dataset="catalogue")
    assert status == 200, content
    doc = json.loads(content)
    assert ids(doc)[0] == "cadastral_parcels"
    assert doc["features"][0]["properties"]["title"] == "Thửa đất địa chính"

    headers, status, content = call(pygeoapi_api, get_collection_items, "/collections/catalogue/items",
                                    "f=json&lang=en&sortby=-features&limit=2", dataset="catalogue")
    doc = json.loads(content)
    assert status == 200 and len(doc["features"]) == 2
    translations = doc["features"][0]["properties"]["translations"]
    assert translations["en"]["title"] == "Cadastral parcels" and translations["vi"]["title"] == "Thửa đất địa chính"
    assert "next" in {link["rel"] for link in doc["links"]}
    items = [link for link in doc["features"][0]["links"] if link["rel"] == "items"]
    assert items[0]["href"] == "/collections/cadastral_parcels/items?f=json"  # no server URL known: root-relative

    headers, status, content = call(pygeoapi_api, get_collection_items, "/collections/catalogue/items",
                                    "f=json&bbox=105.8,21.0,105.9,21.1", dataset="catalogue")
    assert status == 200 and json.loads(content)["features"] == []
    headers, status, content = call(pygeoapi_api, get_collection_items, "/collections/catalogue/items",
                                    "f=json&sortby=nope", dataset="catalogue")
    assert status == 400

    headers, status, content = call(pygeoapi_api, get_collection_item, "/collections/catalogue/items/admin_units",
                                    "f=json", dataset="catalogue", identifier="admin_units")
    assert status == 200 and json.loads(content)["properties"]["title"] == "Đơn vị hành chính cấp xã"
    headers, status, content = call(pygeoapi_api, get_collection_item, "/collections/catalogue/items/nope",
                                    "f=json", dataset="catalogue", identifier="nope")
    assert status == 404

    headers, status, content = call(pygeoapi_api, describe_collections, "/collections/catalogue", "f=json&lang=en",
                                    dataset="catalogue")
    assert status == 200
    doc = json.loads(content)
    assert doc["title"] == "Data catalogue" and doc["itemType"] == "record"


def test_record_links_use_the_running_server_url(api_db, tmp_path, monkeypatch):
    config = tmp_path / "pygeoapi-config.yml"
    config.write_text("server:\n  url: https://gis.example.vn/ogc/\n", encoding="utf-8")
    monkeypatch.setenv("PYGEOAPI_CONFIG", str(config))
    record = R.CatalogueProvider(R.catalogue_provider_definition()).get("admin_units")
    items = [link for link in record["links"] if link["rel"] == "items"]
    assert items[0]["href"] == "https://gis.example.vn/ogc/collections/admin_units/items?f=json"


def test_pygeoapi_openapi_document_includes_catalogue_and_tiles(api_db):
    from pygeoapi.openapi import get_oas

    from gisplatform.layers import get_layer
    from gisplatform.publish.tiles import tile_provider_definition

    layer = get_layer("water_sources")
    config = minimal_config({
        R.CATALOGUE_ID: R.catalogue_resource_definition(),
        layer.name: {"type": "collection", "title": layer.title.en, "description": layer.description.en,
                     "keywords": list(layer.keywords["en"]), "extents": {"spatial": {"bbox": R.PROVINCE_BBOX}},
                     "providers": [tile_provider_definition(layer)]},
    })
    config["metadata"]["identification"]["terms_of_service"] = "https://example.org/terms"
    config["metadata"]["license"]["url"] = R.LICENSE_URL
    config["metadata"]["provider"]["url"] = R.PUBLISHER_URL
    config["metadata"]["contact"].update(url=R.PUBLISHER_URL, email="gis@example.org")
    paths = get_oas(config)["paths"]
    assert "/collections/catalogue/items" in paths and "/collections/catalogue/items/{featureId}" in paths
    assert "/collections/water_sources/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}" in paths
    names = {p.get("name") for p in paths["/collections/catalogue/items"]["get"]["parameters"]}
    assert {"keywords", "title", "updated"} <= names
