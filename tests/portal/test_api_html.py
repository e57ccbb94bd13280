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
