"""The land-data portal served at ``/`` by :mod:`gisplatform.publish.server`.

A full-screen web map (``static/index.html``, ``static/app.js``, ``static/app.css``, ``static/vn2000.js``) that
uses nothing but the public OGC API under ``/ogc``: vector tiles for the map, items with CQL2 filters for the
parcel and licence lookups and the overlaps, items in GeoJSON / GeoPackage / CSV for downloads. Its one library,
MapLibre GL JS, is installed from npm by ``scripts/setup.sh`` (``npm ci`` here, into ``node_modules/``, never
committed) and served from ``node_modules/maplibre-gl/dist``. The map style is built at server start from the
layer definitions and code tables (:mod:`gisplatform.portal.style`).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

LOGGER = logging.getLogger(__name__)

PORTAL_DIR = Path(__file__).resolve().parent
MAPLIBRE_DIST = PORTAL_DIR / "node_modules" / "maplibre-gl" / "dist"
MAPLIBRE_FILES = ("maplibre-gl.js", "maplibre-gl.css")


def map_assets(limits: dict | None = None) -> dict[str, Path | Callable[[], tuple[bytes, str]]]:
    """URL path -> file or (body, content type) builder, for the portal's map: MapLibre and ``/style.json``."""
    from gisplatform.portal.style import portal_style

    files: dict[str, Path | Callable[[], tuple[bytes, str]]] = {}
    for name in MAPLIBRE_FILES:
        path = MAPLIBRE_DIST / name
        if path.is_file():
            files[f"/static/maplibre/{name}"] = path
        else:
            LOGGER.warning("%s is missing: the portal's map cannot load (run scripts/setup.sh, which runs npm ci "
                           "in gisplatform/portal)", path)
    style = json.dumps(portal_style(limits), ensure_ascii=False, separators=(",", ":")).encode()
    files["/style.json"] = lambda: (style, "application/json")
    return files
