"""The portal as people use it, in headless Chromium against the real server on the published sample.

Screenshots for people to look at are written to test-output/portal/. The first meaningful render time (first
vector tile drawn, and the map's first idle) is printed, not asserted: it depends on the machine.
"""
from __future__ import annotations

import csv
import json
import re
import shutil
import time
import unicodedata
from urllib.parse import urlsplit

import numpy as np
import pyogrio
import pytest
import sqlalchemy as sa

from gisplatform.crs import transform_xy
from gisplatform.layers import load_layers
from gisplatform.portal.style import land_use_table

pytestmark = pytest.mark.slow

OWN_PATHS = ("/", "/style.json", "/static/", "/ogc/")


def _ascii(text: str) -> str:
    """What a person types without Vietnamese accents: 'Thất Khê' -> 'that khe'."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn").lower()


@pytest.fixture(scope="module")
def sample_parcel(published_engine) -> dict:
    """A parcel of the sample that overlaps a water corridor or a mining licence, in a commune with one current name.

    Chosen so that every overlap is clear-cut (more than 1 m² in common, or more than 0.5 m apart), so rounding the
    outline to 7 decimals in the request cannot change the answer.
    """
    clear_cut = """NOT EXISTS (SELECT 1 FROM api.{t} o WHERE ST_DWithin(o.geom, p.geom, 0.5)
                                AND ST_Area(ST_Intersection(o.geom, p.geom)) < 1)"""
    with published_engine.connect() as connection:
        row = connection.execute(sa.text(f"""
            SELECT p.id, p.parcel_no, p.map_sheet_no, p.sheet_commune_code AS commune_code, a.name AS commune,
                   p.land_use_codes, p.land_use_code, p.parcel_id,
                   ARRAY(SELECT licence_no FROM api.mining_licences m WHERE ST_Intersects(m.geom, p.geom)
                         ORDER BY 1) AS mining,
                   ARRAY(SELECT source_code FROM api.water_protection_corridors c WHERE ST_Intersects(c.geom, p.geom)
                         ORDER BY 1) AS corridors,
                   ST_X(ST_PointOnSurface(p.geom_wgs84)) AS lon, ST_Y(ST_PointOnSurface(p.geom_wgs84)) AS lat
            FROM api.cadastral_parcels p
            JOIN api.admin_units a ON a.code = p.sheet_commune_code AND a.valid_to IS NULL
            WHERE p.commune_code = p.sheet_commune_code AND p.parcel_no ~ '^[0-9]+$'
              AND (SELECT count(*) FROM api.admin_units b WHERE b.valid_to IS NULL AND b.name = a.name) = 1
              AND EXISTS (SELECT 1 FROM api.water_protection_corridors c WHERE ST_Intersects(c.geom, p.geom))
              AND {clear_cut.format(t="water_protection_corridors")} AND {clear_cut.format(t="mining_licences")}
            ORDER BY ST_Area(p.geom) DESC LIMIT 1""")).mappings().one()
        names = dict(connection.execute(sa.text(
            "SELECT source_code, coalesce(source_name, source_code) FROM api.water_protection_corridors")).all())
    parcel = dict(row)
    parcel["corridor_names"] = [names[c] for c in parcel["corridors"]]
    return parcel


def _own_requests(events: list[dict], base: str) -> tuple[list[str], list[str]]:
    """(URLs the page asked for, problems: failed or >= 400 answers) among the CDP network events."""
    urls, problems, by_id = [], [], {}
    for event in events:
        params = event["params"]
        if event["method"] == "Network.requestWillBeSent":
            by_id[params["requestId"]] = params["request"]["url"]
            urls.append(params["request"]["url"])
    for event in events:
        params = event["params"]
        url = by_id.get(params.get("requestId"), "")
        if not url.startswith(base):
            continue  # the browser's own housekeeping (not the page's)
        if event["method"] == "Network.loadingFailed" and not params.get("canceled"):
            problems.append(f"{url}: {params.get('errorText')}")
        elif event["method"] == "Network.responseReceived" and params["response"]["status"] >= 400:
            problems.append(f"{url}: HTTP {params['response']['status']}")
    return [u for u in urls if u.startswith(("http:", "https:"))], problems


def _access_log(path, start: int) -> list[tuple[str, int]]:
    """(path and query, status) of the requests the server logged after byte ``start`` of its log."""
    with open(path, "rb") as fh:
        fh.seek(start)
        text = fh.read().decode("utf-8", "replace")
    return [(m.group(1), int(m.group(2))) for m in re.finditer(r'"GET (\S+) HTTP/[\d.]+" (\d{3}) ', text)]


def test_page_loads_and_draws_the_map_without_errors(browser, api_server, api_server_log, output_dir):
    browser.network()
    browser.driver.get_log("browser")
    log_start = api_server_log.stat().st_size
    timings = browser.open("/?lang=vi")
    browser.wait_idle()
    print(f"\nfirst meaningful render (first vector tile drawn): {timings.get('firstRender', float('nan')):.0f} ms; "
          f"map idle: {timings['idle']:.0f} ms; style loaded: {timings['style']:.0f} ms (from navigation start)")
    assert browser.console_errors() == []
    assert browser.js("return window.portal.errors") == []  # MapLibre's tile and source errors
    urls, problems = _own_requests(browser.network(), api_server)  # the page's own requests (not its worker's)
    assert problems == []
    # only the portal's own files and the public OGC API: no outside service, no private endpoint
    for url in urls:
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == api_server, url
        assert parts.path == "/" or parts.path.startswith(OWN_PATHS), url
    # every request the server saw (the map's tiles are fetched by MapLibre's web worker) succeeded
    served = _access_log(api_server_log, log_start)
    assert [(path, status) for path, status in served if status >= 400] == []
    assert all(path == "/" or path.startswith(OWN_PATHS) or path.startswith("/?") for path, _ in served), served
    tiles = [(path, status) for path, status in served if "/tiles/WebMercatorQuad/" in path]
    assert any("/collections/admin_units/" in path and status == 200 for path, status in tiles), served
    assert not any("/collections/cadastral_parcels/" in path for path, _ in tiles)  # parcels start at zoom 14
    # the canvas is drawn: the communes' tints, boundaries and water, not one flat colour
    stats = browser.canvas_stats()
    assert stats["colours"] > 20 and stats["dominant"] < 0.9, stats
    assert browser.js("return window.portal.map.queryRenderedFeatures({layers: ['admin_units-fill']}).length") > 10
    # below zoom 14 the page says how to see parcels
    assert browser.js("return !document.getElementById('hint').hidden")
    assert "thửa đất" in browser.text("#hint")
    browser.screenshot(output_dir / "overview.png")


def test_vn2000_readout_matches_pyproj(browser):
    browser.open("/?lang=vi")
    lon = np.array([106.7615, 106.286673196, 107.057867808, 106.574959540, 106.14, 107.33])
    lat = np.array([21.8537, 21.512486741, 22.237714529, 21.784855715, 22.40, 21.35])
    e, n = transform_xy(lon, lat, 4326, 9215)
    got = np.array(browser.js("return arguments[0].map(function (p) { return VN2000.forward(p[0], p[1]); })",
                              [[float(a), float(b)] for a, b in zip(lon, lat)]))
    error = np.hypot(got[:, 0] - e, got[:, 1] - n)
    print(f"\nVN-2000 in the browser vs PROJ (EPSG:6960): max {error.max() * 1000:.3f} mm")
    assert error.max() < 0.01  # 1 cm; the coordinate-frame sign mistake would be ~0.8 m
    # the readout under the cursor uses it: X = northing, Y = easting, as Vietnamese surveyors write them
    text = browser.text("#coords")
    assert "WGS 84" in text and "VN-2000 (EPSG:9215): X " in text and ", Y " in text


def test_accent_insensitive_commune_search(browser, sample_parcel):
    browser.open("/?lang=vi")
    assert browser.js("return window.portal.fold('Đồng Đăng ĐỒNG')") == "dong dang dong"
    browser.wait_for("return window.portal.communes > 0", 20, "the communes were not loaded from the API")
    browser.type("#commune", _ascii(sample_parcel["commune"]).upper())
    browser.wait_for("return !document.getElementById('commune-list').hidden", 20, "no suggestion appeared")
    codes = browser.js("return Array.from(document.querySelectorAll('#commune-list li')).map(li => li.dataset.code)")
    assert sample_parcel["commune_code"] in codes


def _find_sample_parcel(b, parcel: dict) -> None:
    b.wait_for("return window.portal.communes > 0", 20, "the communes were not loaded from the API")
    b.type("#commune", _ascii(parcel["commune"]))
    option = f"#commune-list li[data-code='{parcel['commune_code']}']"
    b.wait_for(f"return !!document.querySelector(\"{option}\")", 20, "the commune was not suggested")
    b.click(option)
    b.type("#sheet", str(parcel["map_sheet_no"]))
    b.type("#parcel", parcel["parcel_no"])
    b.click("#parcel-form button[type=submit]")
    b.wait_for("var h = document.querySelector('#p-info h2'); return h && !document.getElementById('p-info').hidden",
               30, "the parcel's details did not appear")
    b.wait_for("var p = document.getElementById('p-info'); return p.querySelector('ul.related, .related') || "
               "!/Đang kiểm tra|Checking/.test(p.textContent)", 30, "the overlaps were not checked")
    b.wait_idle()


def test_parcel_lookup_by_commune_sheet_and_number(browser, sample_parcel, output_dir):
    b, p = browser, sample_parcel
    b.open("/?lang=vi")
    _find_sample_parcel(b, p)
    assert b.text("#p-info h2") == f"Thửa đất số {p['parcel_no']}, tờ bản đồ số {p['map_sheet_no']}"
    info = b.text("#p-info")
    assert p["commune"] in info and p["parcel_id"] in info
    names = {r["code"]: r for r in land_use_table()}
    for code in p["land_use_codes"].split("+"):
        assert names[code]["vi"] in info  # the land-use names from layers/codes/land_use.csv
    for name in p["corridor_names"]:
        assert name in b.text("#p-info ul.related[data-layer=water_protection_corridors]")
    if p["mining"]:
        mining = b.text("#p-info ul.related[data-layer=mining_licences]")
        assert all(licence in mining for licence in p["mining"])
    else:
        assert "Không có" in info
    # the map flew there, draws the parcel and highlights it
    assert b.js("return window.portal.map.getZoom()") >= 14
    assert b.js("return window.portal.selection.feature.id") == p["id"]
    assert b.js("return window.portal.map.queryRenderedFeatures({layers: ['selection-line']}).length") > 0
    drawn = b.js("return window.portal.map.queryRenderedFeatures({layers: ['cadastral_parcels-fill']})"
                 ".map(function (f) { return f.id; })")
    assert p["id"] in drawn
    stats = b.canvas_stats([names[p["land_use_code"]]["colour"], "#D7191C"])
    assert stats["hits"]["#D7191C"] > 50, stats  # the red outline of the selection
    assert stats["hits"][names[p["land_use_code"]]["colour"]] > 50, stats  # parcels in their land-use colour
    assert b.js("return document.getElementById('hint').hidden")
    assert b.console_errors() == [] and b.js("return window.portal.errors") == []
    b.screenshot(output_dir / "parcel-lookup.png")


def test_parcel_lookup_by_parcel_id(browser, sample_parcel):
    b, p = browser, sample_parcel
    b.open("/?lang=vi")
    b.type("#parcel-id", f"  {p['parcel_id'].upper()} ")  # as typed from a certificate: any case, stray spaces
    b.click("#parcel-form button[type=submit]")
    b.wait_for("var h = document.querySelector('#p-info h2'); return h && !document.getElementById('p-info').hidden",
               30, "the parcel's details did not appear")
    assert b.text("#p-info h2") == f"Thửa đất số {p['parcel_no']}, tờ bản đồ số {p['map_sheet_no']}"
    assert b.js("return window.portal.selection.feature.id") == p["id"]
    b.wait_idle()
    assert b.js("return window.portal.map.getZoom()") >= 14
    assert b.console_errors() == [] and b.js("return window.portal.errors") == []


def test_language_switch(browser, sample_parcel, output_dir):
    b, p = browser, sample_parcel
    b.open("/?lang=vi")
    _find_sample_parcel(b, p)
    b.click("#lang")
    b.wait_for("return document.documentElement.lang === 'en'")
    assert b.text(".brand h1") == "Land Data Portal"
    assert b.text("#tab-search") == "Search" and b.text("#lang") == "VI"
    assert b.text("#p-info h2") == f"Parcel {p['parcel_no']}, map sheet {p['map_sheet_no']}"
    names = {r["code"]: r for r in land_use_table()}
    assert names[p["land_use_code"]]["en"] in b.text("#p-info")
    assert "Overlaps" in b.text("#p-info")
    assert "VN-2000 (EPSG:9215): N " in b.text("#coords")
    b.screenshot(output_dir / "parcel-lookup-en.png")
    b.open("/")  # the choice is remembered
    assert b.text(".brand h1") == "Land Data Portal"
    b.click("#lang")
    b.wait_for("return document.documentElement.lang === 'vi'")
    assert b.text(".brand h1") == "Cổng thông tin khai thác dữ liệu đất đai"
    assert b.text(".brand .org") == "Sở Nông nghiệp và Môi trường tỉnh Lạng Sơn"


def test_click_on_the_map_shows_public_attributes(browser, published_engine, output_dir):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    with published_engine.connect() as connection:
        licence = connection.execute(sa.text(
            "SELECT id, licence_no, status, ST_X(ST_PointOnSurface(geom_wgs84)) lon, "
            "ST_Y(ST_PointOnSurface(geom_wgs84)) lat FROM api.mining_licences ORDER BY ST_Area(geom) DESC LIMIT 1"
        )).mappings().one()
    b = browser
    b.open("/?lang=vi")
    b.js("window.portal.map.jumpTo({center: [arguments[0], arguments[1]], zoom: 13})", licence["lon"], licence["lat"])
    b.wait_idle()
    x, y, width, height = b.js("var m = window.portal.map, p = m.project([arguments[0], arguments[1]]), "
                               "c = m.getContainer(); return [p.x, p.y, c.clientWidth, c.clientHeight];",
                               licence["lon"], licence["lat"])
    ActionChains(b.driver).move_to_element_with_offset(b.driver.find_element(By.ID, "map"),
                                                       int(x - width / 2), int(y - height / 2)).click().perform()
    b.wait_for("var h = document.querySelector('#p-info h2'); return h && /khoáng sản/.test(h.textContent)", 20,
               "clicking the licence did not show it")
    info = b.text("#p-info")
    status = load_layers()["mining_licences"].field("status").values[licence["status"]].vi
    assert licence["licence_no"] in info and "Trạng thái" in info and status in info
    b.screenshot(output_dir / "map-click-licence.png")


def test_licence_lookup_by_number(browser, published_engine):
    with published_engine.connect() as connection:
        licence_no = connection.execute(sa.text(
            "SELECT licence_no FROM api.water_licences ORDER BY licence_no LIMIT 1")).scalar_one()
    b = browser
    b.open("/?lang=vi")
    b.type("#licence", licence_no.lower())  # any case
    b.click("#licence-form button[type=submit]")
    b.wait_for("var r = document.getElementById('results'), i = document.getElementById('p-info');"
               "return r.querySelector('li button') || (!i.hidden && i.querySelector('h2'));", 20, "no licence found")
    if b.js("return !!document.querySelector('#results li button')"):
        b.click("#results li button")
    b.wait_for("var h = document.querySelector('#p-info h2'); return h && /tài nguyên nước/.test(h.textContent)")
    assert licence_no in b.text("#p-info")


def test_downloads_are_valid_files(browser, sample_parcel, api_server, output_dir):
    b, p = browser, sample_parcel
    b.open("/?lang=vi")
    _find_sample_parcel(b, p)
    b.clear_downloads()
    # the selected parcel, from its details
    b.click("#p-info [data-download=gpkg]")
    path = b.wait_download(".gpkg")
    frame = pyogrio.read_dataframe(path)
    assert len(frame) == 1 and frame["parcel_no"][0] == p["parcel_no"] and frame["id"][0] == p["id"]
    assert pyogrio.read_info(path)["crs"] == "EPSG:4326"
    # what the map shows, from the download tab, in each format
    b.click("#tab-download")
    b.js("document.getElementById('dl-layer').value = 'cadastral_parcels'")
    b.click("input[name=scope][value=view]")
    checks = {}
    for fmt, suffix in (("json", ".geojson"), ("gpkg", ".gpkg"), ("csv", ".csv")):
        b.clear_downloads()
        b.click(f"#download-form [data-format={fmt}]")
        checks[fmt] = output_dir / f"download-view{suffix}"  # kept for people to look at
        shutil.copyfile(b.wait_download(suffix), checks[fmt])
        assert "đối tượng" in b.text("#dl-msg")
    download = b.js("return window.portal.lastDownload")
    matched = min(download["matched"], 10000)
    collection = json.loads(checks["json"].read_text(encoding="utf-8"))
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == matched > 0
    assert p["id"] in {f["id"] for f in collection["features"]}
    assert pyogrio.read_info(checks["gpkg"])["features"] == matched
    with checks["csv"].open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == matched and "parcel_no" in rows[0]
    assert b.console_errors() == []


def test_a_view_larger_than_one_download_says_so(browser):
    b = browser
    b.open("/?lang=vi")
    # the whole province holds all the sample's parcels (fewer than the server's 10 000 per request): lower the
    # limit the page uses, as it reads it from the style, to see the message
    b.js("window.portal.meta.maxItems = 100")
    b.click("#tab-download")
    b.js("document.getElementById('dl-layer').value = 'cadastral_parcels'")
    b.click("input[name=scope][value=view]")
    b.clear_downloads()
    b.click("#download-form [data-format=csv]")
    b.wait_for("return /giới hạn/.test(document.getElementById('dl-msg').textContent)", 20, "no warning")
    assert "100" in b.text("#dl-msg")
    path = b.wait_download(".csv")
    with path.open(encoding="utf-8", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 100


def test_phone_layout(phone, sample_parcel, output_dir):
    b, p = phone, sample_parcel
    timings = b.open("/?lang=vi")
    assert b.js("return document.documentElement.scrollWidth <= window.innerWidth")
    assert b.js("return document.getElementById('panel').classList.contains('collapsed')")  # the map first
    b.screenshot(output_dir / "phone-overview.png")
    b.click("#tab-search")
    assert not b.js("return document.getElementById('panel').classList.contains('collapsed')")
    _find_sample_parcel(b, p)
    panel, map_box = b.js("return [document.getElementById('panel').getBoundingClientRect().toJSON(), "
                          "document.getElementById('map').getBoundingClientRect().toJSON()]")
    assert panel["width"] <= 390 and panel["height"] < map_box["height"] * 0.6  # a bottom sheet, the map stays visible
    assert b.js("return window.portal.map.queryRenderedFeatures({layers: ['selection-line']}).length") > 0
    assert b.js("return document.documentElement.scrollWidth <= window.innerWidth")
    b.screenshot(output_dir / "phone-parcel-lookup.png")
    print(f"\nphone: first meaningful render {timings.get('firstRender', float('nan')):.0f} ms")
    assert b.console_errors() == []


def test_screenshots_exist(output_dir):
    """Runs last in this module: what the others wrote for people to look at."""
    time.sleep(0)
    shots = sorted(path.name for path in output_dir.glob("*.png"))
    print("\nscreenshots in", output_dir, ":", ", ".join(shots))
    assert "overview.png" in shots and "parcel-lookup.png" in shots
