"""The portal shows the raster layers: tiles drawn under / over the parcels, an opacity slider, the class legend."""
from __future__ import annotations

import pytest

from tests.portal.conftest import browser, output_dir  # noqa: F401 (fixtures)
from tests.publish.conftest import api, api_server, api_server_log, http, published_engine  # noqa: F401

CITY = (106.745, 21.871)  # inside the sample rasters' square


@pytest.fixture(scope="module")
def at_the_city(browser):
    browser.open("/?lang=en")
    # the planning map starts switched off (it would hide the parcels' land-use colours): turn it on
    assert browser.js("return window.portal.map.getLayoutProperty('planning_map-raster', 'visibility')") == "none"
    browser.js("var box = document.getElementById('layer-planning_map'); box.checked = true;"
               "box.dispatchEvent(new Event('change'));")  # the layer panel may be folded away
    browser.js("window.portal.map.jumpTo({center: arguments[0], zoom: 14})", list(CITY))
    browser.wait_idle()
    return browser


def test_both_rasters_are_drawn_without_errors(at_the_city, output_dir):
    b = at_the_city
    assert b.console_errors() == [] and b.js("return window.portal.errors") == []
    for layer in ("elevation-raster", "planning_map-raster"):
        assert b.js("return window.portal.map.getLayer(arguments[0]).visibility !== 'none'", layer)
        assert b.js("return window.portal.map.isSourceLoaded(arguments[0].split('-')[0])", layer)
    # the planning colours show on the canvas (over the parcels, 60 % opaque, so blended: look for many colours)
    stats = b.canvas_stats()
    assert stats["colours"] > 20 and stats["dominant"] < 0.9, stats
    b.screenshot(output_dir / "rasters.png")


def test_the_opacity_slider_scales_the_raster(at_the_city):
    b = at_the_city
    base = b.js("return window.portal.map.getPaintProperty('planning_map-raster', 'raster-opacity')")
    assert base == pytest.approx(0.6)
    b.js("var s = document.querySelector('#layer-list input[aria-label$=\"Land-use planning map\"]');"
         "s.value = 25; s.dispatchEvent(new Event('input'));")
    assert b.js("return window.portal.map.getPaintProperty('planning_map-raster', 'raster-opacity')") == \
        pytest.approx(0.15)


def test_the_legend_lists_the_planning_classes_in_both_languages(at_the_city):
    b = at_the_city
    legend = "return document.querySelector('#legend ul.raster-classes[data-layer=planning_map]').textContent"
    assert "RPH" in b.js(legend) and "Protection forest" in b.js(legend)
    b.open("/?lang=vi")
    assert "Đất rừng phòng hộ" in b.js(legend)
