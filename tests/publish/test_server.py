"""The running server over HTTP: portal, OGC API resources, languages, and how it answers bad requests."""
from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from gisplatform.layers import load_layers, load_raster_layers
from gisplatform.publish.cql import CONFORMANCE_CLASSES as CQL_CLASSES
from gisplatform.publish.records import CATALOGUE_ID

OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_9215 = "http://www.opengis.net/def/crs/EPSG/0/9215"
SPEC = "http://www.opengis.net/spec"
LEAKS = re.compile(r"Traceback|File \"|psycopg2|sqlalchemy|SQLAlchemy|postgresql://|SELECT |gisplatform_api"
                   r"|/work/|site-packages", re.IGNORECASE)


def _links(doc: dict, rel: str) -> list[dict]:
    return [link for link in doc["links"] if link["rel"] == rel]


# --- portal and landing page ------------------------------------------------------------------------------


def test_portal_page_is_bilingual_and_links_to_the_api(http, api_server):
    r = http.get(f"{api_server}/")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    page = r.text
    assert "Dữ liệu không gian tỉnh Lạng Sơn" in page and "Lạng Sơn spatial data" in page
    assert 'href="ogc/?f=html"' in page and 'href="ogc/openapi?f=html"' in page
    assert "OGC API - Features" in page  # how to add a layer in QGIS
    assert http.get(f"{api_server}/no-such-page").status_code == 404


def test_landing_page_links(http, api):
    r = http.get(f"{api}/")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    doc = r.json()
    service_desc = _links(doc, "service-desc")
    assert any(link["type"] == OPENAPI_JSON and link["href"] == f"{api}/openapi" for link in service_desc)
    assert _links(doc, "conformance")[0]["href"] == f"{api}/conformance"
    assert _links(doc, "data")[0]["href"] == f"{api}/collections"
    assert _links(doc, "service-doc")
    for rel in ("service-desc", "conformance", "data", "service-doc"):
        for link in _links(doc, rel):
            assert http.get(link["href"]).status_code == 200, link
    assert http.get(api).status_code == 200  # without the trailing slash too
    assert http.get(f"{api}/?f=html").headers["Content-Type"].startswith("text/html")


def test_landing_page_and_conformance_follow_language_and_format_when_repeated(http, api):
    """They are kept per process (ConfigPages): every variant must still get its own answer, every time."""
    title = {"vi": "Dữ liệu không gian đất đai", "en": "Lạng Sơn land, mining"}
    for _ in range(3):  # alternate, so a kept answer would show up under the wrong request
        for lang in ("vi", "en"):
            r = http.get(f"{api}/", params={"lang": lang})
            assert r.json()["title"].startswith(title[lang]) and r.headers["Content-Language"].startswith(lang)
            assert r.headers["Access-Control-Allow-Origin"] == "*" and "X-Powered-By" not in r.headers
        by_header = http.get(f"{api}/", headers={"Accept-Language": "en-GB,en;q=0.9"})
        assert by_header.json()["title"].startswith(title["en"])
        assert http.get(f"{api}/").json()["title"].startswith(title["vi"])
        html = http.get(f"{api}/", params={"f": "html", "lang": "en"})
        assert html.headers["Content-Type"] == "text/html; charset=utf-8" and title["en"] in html.text
        assert http.get(api, headers={"Accept": "text/html"}).headers["Content-Type"].startswith("text/html")
        assert http.get(f"{api}/conformance").json()["conformsTo"]
        assert http.get(f"{api}/conformance", params={"f": "html"}).headers["Content-Type"].startswith("text/html")
    head = http.head(f"{api}/")
    assert head.status_code == 200 and not head.content


def test_conformance_declares_features_cql2_tiles_and_records(http, api):
    declared = set(http.get(f"{api}/conformance").json()["conformsTo"])
    expected = {
        f"{SPEC}/ogcapi-features-1/1.0/conf/core",
        f"{SPEC}/ogcapi-features-1/1.0/conf/oas30",
        f"{SPEC}/ogcapi-features-1/1.0/conf/geojson",
        f"{SPEC}/ogcapi-features-1/1.0/conf/html",
        f"{SPEC}/ogcapi-features-2/1.0/conf/crs",
        f"{SPEC}/ogcapi-features-3/1.0/conf/queryables",
        f"{SPEC}/ogcapi-features-3/1.0/conf/filter",
        f"{SPEC}/ogcapi-features-3/1.0/conf/features-filter",
        f"{SPEC}/cql2/1.0/conf/cql2-text",
        f"{SPEC}/cql2/1.0/conf/basic-cql2",
        f"{SPEC}/ogcapi-tiles-1/1.0/conf/core",
        f"{SPEC}/ogcapi-tiles-1/1.0/conf/mvt",
        f"{SPEC}/ogcapi-tiles-1/1.0/conf/tileset",
        f"{SPEC}/ogcapi-records-1/1.0/conf/core",
        *CQL_CLASSES,
    }
    assert expected <= declared, expected - declared
    # The collections are read-only: Part 4 (create/replace/delete) must not be claimed.
    assert f"{SPEC}/ogcapi-features-4/1.0/conf/create-replace-delete" not in declared


# --- collections ----------------------------------------------------------------------------------------------


def test_collections_list_every_layer_and_the_catalogue(http, api):
    collections = http.get(f"{api}/collections").json()["collections"]
    features = {c["id"] for c in collections if c.get("itemType") == "feature"}
    records = [c["id"] for c in collections if c.get("itemType") == "record"]
    assert features == set(load_layers()) | {"conflicts"}  # the layers and the analysis results
    assert records == [CATALOGUE_ID]
    coverages = {c["id"] for c in collections if c["id"] in load_raster_layers()}  # published rasters (issue 7)
    assert coverages == set(load_raster_layers())
    assert len(collections) == len(features) + 1 + len(coverages)


def test_collection_title_follows_the_language(http, api):
    layer = load_layers()["cadastral_parcels"]
    url = f"{api}/collections/cadastral_parcels"
    vi, en = http.get(url), http.get(url, params={"lang": "en"})
    assert vi.json()["title"] == layer.title.vi and vi.headers["Content-Language"].startswith("vi")
    assert en.json()["title"] == layer.title.en and en.headers["Content-Language"].startswith("en")
    assert en.json()["description"] == layer.description.en
    by_header = http.get(url, headers={"Accept-Language": "en-GB,en;q=0.9"}).json()
    assert by_header["title"] == layer.title.en
    assert http.get(url, params={"lang": "fr"}).json()["title"] == layer.title.vi  # unknown -> default


def test_collection_crs_and_extent(http, api, published_engine):
    doc = http.get(f"{api}/collections/cadastral_parcels").json()
    assert CRS84 in doc["crs"] and EPSG_9215 in doc["crs"]
    bbox = doc["extent"]["spatial"]["bbox"][0]
    with published_engine.connect() as c:
        box = c.execute(sa.text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                "(SELECT ST_Extent(geom_wgs84) e FROM api.cadastral_parcels) t")).one()
    assert bbox[0] <= box[0] and bbox[1] <= box[1] and bbox[2] >= box[2] and bbox[3] >= box[3]
    assert bbox[2] - box[2] < 1e-5 and box[0] - bbox[0] < 1e-5  # rounded outwards, not padded
    begin, end = doc["extent"]["temporal"]["interval"][0]
    assert begin and end is None  # from the first load, open-ended
    links = {link["rel"] for link in doc["links"]}
    assert {"items", "license", "self"} <= links


# --- items -----------------------------------------------------------------------------------------------------


def test_items_as_geojson_and_html(http, api, published_engine):
    r = http.get(f"{api}/collections/cadastral_parcels/items")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/geo+json")
    doc = r.json()
    with published_engine.connect() as c:
        total = c.execute(sa.text("SELECT count(*) FROM api.cadastral_parcels")).scalar()
    assert doc["type"] == "FeatureCollection" and doc["numberMatched"] == total
    assert doc["numberReturned"] == len(doc["features"]) == 100  # default_items
    assert _links(doc, "next")
    html = http.get(f"{api}/collections/cadastral_parcels/items", params={"f": "html", "limit": 5})
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    assert http.get(f"{api}/collections/cadastral_parcels/items?limit=5",
                    headers={"Accept": "text/html"}).headers["Content-Type"].startswith("text/html")


def test_one_item(http, api, published_engine):
    with published_engine.connect() as c:
        row = c.execute(sa.text("SELECT id, parcel_address FROM api.cadastral_parcels "
                                "WHERE parcel_address IS NOT NULL ORDER BY id LIMIT 1")).one()
    r = http.get(f"{api}/collections/cadastral_parcels/items/{row.id}")
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["parcel_address"] == row.parcel_address
    assert http.get(f"{api}/collections/cadastral_parcels/items/{row.id}?f=html").status_code == 200


def test_limit_above_the_maximum_is_lowered_not_refused(http, api, published_engine):
    doc = http.get(f"{api}/collections/admin_units/items", params={"limit": 50000, "skipGeometry": "true"}).json()
    with published_engine.connect() as c:
        total = c.execute(sa.text("SELECT count(*) FROM api.admin_units")).scalar()
    assert doc["numberReturned"] == total


def test_resulttype_hits_counts_without_features(http, api, published_engine):
    r = http.get(f"{api}/collections/water_sources/items", params={"resulttype": "hits"})
    assert r.status_code == 200
    with published_engine.connect() as c:
        total = c.execute(sa.text("SELECT count(*) FROM api.water_sources")).scalar()
    assert r.json()["numberMatched"] == total and r.json()["features"] == []


def test_cors_headers_and_no_software_version(http, api):
    headers = http.get(f"{api}/collections").headers
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "X-Powered-By" not in headers
    pre = http.options(f"{api}/collections/cadastral_parcels/items",
                       headers={"Origin": "https://example.org", "Access-Control-Request-Method": "GET"})
    assert pre.status_code == 204 and "GET" in pre.headers["Access-Control-Allow-Methods"]


# --- bad requests: 4xx with a JSON explanation, never a 5xx, never internal details ------------------------

P = "/collections/cadastral_parcels"
BAD_REQUESTS = [
    ("/collections/no_such_layer", {}, 404),
    ("/collections/no_such_layer/items", {}, 404),
    (f"{P}/items", {"limit": "-1"}, 400),
    (f"{P}/items", {"limit": "0"}, 400),
    (f"{P}/items", {"limit": "abc"}, 400),
    (f"{P}/items", {"offset": "-5"}, 400),
    (f"{P}/items", {"offset": "x"}, 400),
    (f"{P}/items", {"bbox": "1,2,3"}, 400),
    (f"{P}/items", {"bbox": "a,b,c,d"}, 400),
    (f"{P}/items", {"bbox": "106.5,22.0,106.6,21.9"}, 400),  # miny > maxy
    (f"{P}/items", {"bbox": "-200,-100,200,100"}, 400),  # outside CRS84
    (f"{P}/items", {"bbox": "106.5,21.9,106.6,91"}, 400),
    (f"{P}/items", {"crs": "EPSG:99999"}, 400),
    (f"{P}/items", {"crs": "http://www.opengis.net/def/crs/EPSG/0/99999"}, 400),
    (f"{P}/items", {"bbox-crs": EPSG_9215}, 400),  # without bbox
    (f"{P}/items", {"bbox": "1,2,3,4", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/99999"}, 400),
    (f"{P}/items", {"filter": "name ==== 1"}, 400),
    (f"{P}/items", {"filter": "no_such_field = 1"}, 400),
    (f"{P}/items", {"filter": "parcel_no = 'x'", "filter-lang": "sql"}, 400),
    (f"{P}/items", {"filter": "user_name = 'x'"}, 400),  # a personal field is not queryable
    (f"{P}/items", {"sortby": "no_such_field"}, 400),
    (f"{P}/items", {"sortby": "-no_such_field"}, 400),
    (f"{P}/items", {"properties": "no_such_field"}, 400),
    (f"{P}/items", {"datetime": "not-a-date"}, 400),
    (f"{P}/items", {"f": "xyz"}, 400),
    (f"{P}/items/abc", {}, 404),
    (f"{P}/items/999999999", {}, 404),
    (f"{P}/tiles/WebMercatorQuad/30/0/0", {"f": "mvt"}, 404),
    (f"{P}/tiles/NoSuchScheme/10/0/0", {"f": "mvt"}, 404),
    (f"{P}/tiles/WebMercatorQuad/a/b/c", {"f": "mvt"}, 400),
    (f"/collections/{CATALOGUE_ID}/items", {"f": "csv"}, 400),  # pygeoapi 0.24 would fail with a 500
    # SQL-injection-like values
    (f"{P}/items", {"filter": "parcel_no = 'x'; DROP TABLE api.cadastral_parcels; --"}, 400),
    (f"{P}/items", {"filter": "1=1) OR (1=1"}, 400),
    (f"{P}/items", {"sortby": "id; DROP TABLE api.cadastral_parcels"}, 400),
    (f"{P}/items", {"properties": "id,(SELECT 1)"}, 400),
    (f"{P}/items/1' OR '1'='1", {}, 404),
    (f"{P}/items/1;DROP TABLE x", {}, 404),
]


@pytest.mark.parametrize("path, params, status", BAD_REQUESTS,
                         ids=[f"{p}?{'&'.join(f'{k}={v}' for k, v in q.items())}" for p, q, _ in BAD_REQUESTS])
def test_bad_request_is_a_clear_4xx(http, api, path, params, status):
    r = http.get(f"{api}{path}", params=params)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    assert r.status_code == status, (r.status_code, r.text[:500])
    body = r.json()
    assert body.get("description") or body.get("code")
    assert not LEAKS.search(r.text), r.text


@pytest.mark.parametrize("params", [
    {"parcel_no": "' OR 1=1 --"},
    {"parcel_no": "1'; DROP TABLE api.cadastral_parcels; --"},
    {"land_use_code": "ONT' OR 'a'='a"},
    {"filter": "parcel_no = ''' OR 1=1 --'"},
    {"filter": "parcel_address LIKE '%; DROP TABLE x; --%'"},
    {"q": "'; DROP TABLE x; --"},
])
def test_injection_attempts_match_nothing(http, api, published_engine, params):
    r = http.get(f"{api}{P}/items", params=params)
    if "filter" in params and r.status_code == 400:  # refused as a malformed CQL2 expression: fine too
        assert not LEAKS.search(r.text)
    else:
        assert r.status_code == 200, r.text[:500]
        assert r.json()["numberReturned"] == 0 or "q" in params
    with published_engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM api.cadastral_parcels")).scalar() > 0


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_writes_are_refused(http, api, method):
    url = f"{api}{P}/items" if method == "POST" else f"{api}{P}/items/1"
    feature = {"type": "Feature", "geometry": None, "properties": {"parcel_no": "1"}}
    r = http.request(method, url, data=json.dumps(feature), headers={"Content-Type": "application/geo+json"})
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert not LEAKS.search(r.text)


def test_post_without_content_type_is_a_400(http, api):
    r = http.post(f"{api}{P}/items", data=b"")
    assert r.status_code == 400 and "Content-Type" in r.json()["description"]


def test_unknown_paths_answer_json_404(http, api, api_server):
    r = http.get(f"{api}/no/such/thing")
    assert r.status_code == 404 and r.json()["code"]
    assert http.get(f"{api_server}/schemas/no-such.yaml").status_code == 404
    assert http.get(f"{api_server}/schemas/../ogc_config/base.yml").status_code == 404


def test_errors_are_logged_without_reaching_the_client(api_server_log):
    """The server log shows the requests (gunicorn access log) and no worker crash."""
    log = api_server_log.read_text(errors="replace")
    assert "GET /ogc/collections" in log
    assert "Worker failed to boot" not in log and "WORKER TIMEOUT" not in log
