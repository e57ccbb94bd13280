"""The OGC API's own HTML pages (pygeoapi's templates) in headless Chromium: styled and with their map, offline.

Every script and style sheet a page loads must come from our server (gisplatform.publish.html made pygeoapi's CDN
addresses local); only the background map of the Leaflet pages (``server.map.url``, OpenStreetMap by default)
may point outside.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from gisplatform.publish.html import localise

pytestmark = pytest.mark.slow

# Not on the npm registry, so there is no local copy; pygeoapi's collection page uses it only for OGC API - Maps
# layers, which no collection of ours has. Offline it fails to load and nothing on the page needs it.
UNAVAILABLE = {"https://unpkg.com/leaflet-imageoverlay-ogcapi@0.1.0/Leaflet.ImageOverlay.OGCAPI.js"}
OUTSIDE_NOISE = ("tile.openstreetmap.org", "leaflet-imageoverlay-ogcapi")

ASSETS = ("return Array.from(document.querySelectorAll('script[src], link[rel=stylesheet]'))"
          ".map(function (e) { return e.src || e.href; })")


def _own(urls: list[str], base: str) -> list[str]:
    """The addresses among ``urls`` that are not served by our server."""
    origin = urlsplit(base)
    return [u for u in urls if urlsplit(u).netloc != origin.netloc]


@pytest.mark.parametrize("path, map_expected", [
    ("/ogc/collections/cadastral_parcels/items?f=html&limit=20", True),
    ("/ogc/collections/water_licences/items?f=html", True),
    ("/ogc/collections/mining_licences/items/1?f=html", True),
    ("/ogc/collections/water_sources?f=html", True),
    ("/ogc/collections?f=html", False),
    ("/ogc/openapi?f=html", False),
])
def test_api_pages_load_their_libraries_from_our_server(browser, api_server, path, map_expected):
    b = browser
    b.driver.get(api_server + path)
    b.wait_for("return document.readyState === 'complete'", 30, "the page did not load")
    assets = b.js(ASSETS)
    assert assets and set(_own(assets, api_server)) <= UNAVAILABLE, assets
    # Bootstrap's style sheet applied (a stock page without it has the browser's default 8 px body margin)
    assert b.js("return getComputedStyle(document.body).marginTop") == "0px"
    if map_expected:
        b.wait_for("return !!window.L && document.querySelectorAll('.leaflet-interactive').length > 0", 30,
                   "the Leaflet map drew no feature")
    if "openapi" in path:
        b.wait_for("return document.querySelectorAll('.opblock').length > 10", 30, "Swagger UI listed no operation")
    assert [e for e in b.console_errors() if not any(n in e.get("message", "") for n in OUTSIDE_NOISE)] == []


def test_cdn_addresses_without_a_local_copy_are_left_alone(tmp_path):
    (tmp_path / "leaflet" / "dist").mkdir(parents=True)
    (tmp_path / "leaflet" / "dist" / "leaflet.js").write_text("/* */")
    text = ('<script src="https://unpkg.com/leaflet@1.3.1/dist/leaflet.js"></script>'
            '<script src="https://cdnjs.cloudflare.com/ajax/libs/leaflet/1.3.1/leaflet.js"></script>'
            '<script src="https://cdn.jsdelivr.net/npm/d3@5.16.0/dist/d3.js"></script>')
    local, outside = localise(text, tmp_path)
    assert local.count("{{ config['server']['url'] }}/static/vendor/leaflet/dist/leaflet.js") == 2
    assert outside == {"https://cdn.jsdelivr.net/npm/d3@5.16.0/dist/d3.js"}
    assert "https://cdn.jsdelivr.net/npm/d3@5.16.0/dist/d3.js" in local


def test_api_pages_speak_vietnamese_by_default_and_english_on_request(http, api):
    pages = {"vi": "Các lớp dữ liệu của dịch vụ", "en": "Data collections in this service"}
    for lang, heading in pages.items():
        page = http.get(f"{api}/collections", params={"f": "html", "lang": lang}, timeout=30)
        assert page.status_code == 200 and f"<h1>{heading}" in page.text, lang
    page = http.get(f"{api}/collections/cadastral_parcels/items", params={"f": "html"}, timeout=30)
    assert "Trang sau" in page.text and "Số đối tượng trong lớp" in page.text  # Vietnamese, the first language


def test_every_vietnamese_label_is_a_label_pygeoapi_asks_for():
    """A msgid that no template uses (a typo, or pygeoapi renamed it) would silently stay English."""
    import re
    from pathlib import Path

    import pygeoapi
    from babel.messages.pofile import read_po

    from gisplatform.publish.html import CATALOGUES

    templates = Path(pygeoapi.__file__).parent / "templates"
    wanted = {m.group(1) for path in templates.rglob("*.html")
              for m in re.finditer(r"{%\s*trans\s*%}(.*?){%\s*endtrans\s*%}", path.read_text(encoding="utf-8"), re.S)}
    with (CATALOGUES / "vi" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh)
    ids = {m.id for m in catalog if m.id}
    assert ids <= wanted, sorted(ids - wanted)
    assert all(catalog[i].string for i in ids)
