"""The portal's map style (MapLibre style JSON), built from ``layers/*.yml`` and ``layers/codes/*.csv`` at start.

Served at ``/style.json`` by :mod:`gisplatform.publish.server`. It is configuration, not data: which vector-tile
collections of the OGC API the map draws (``/ogc/collections/<layer>/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt``,
zoom range from the layer's ``tiles:`` section), how, and — under ``metadata["gisplatform:portal"]`` — what the
page needs to label what it gets from the public API: layer and field titles in Vietnamese and English, domain
value labels, the names of coded values (land use, minerals), natural keys, the land-use legend and the paging
maximum. Only public fields are described (``Layer.public_fields``); the page itself reads nothing but the OGC API.

Land-use colours come from the ``colour`` column of ``layers/codes/land_use.csv``: the colour convention of
Vietnam's land-use status maps (bản đồ hiện trạng sử dụng đất, TT 28/2014/TT-BTNMT, kept by TT 27/2018), as
transcribed in two independent public code repositories that agree on nearly every code. They were not checked
against the official annex; codes introduced by TT 08/2024 have no public transcription and borrow the colour of
the nearest older code. The CSV's ``note`` says where a colour is approximate or uncertain.

Tile URLs are relative to the portal (``ogc/collections/...``): the page makes them absolute before handing the
style to MapLibre, so the same style works behind a reverse proxy that moves the whole site under a prefix.

Offline by default: the base map is our own layers (communes, water). An outside raster base map can be added
with ``GISPLATFORM_BASEMAP_URL`` (an XYZ template such as ``https://tile.openstreetmap.org/{z}/{x}/{y}.png``) and
``GISPLATFORM_BASEMAP_ATTRIBUTION``, or ``basemap_url`` / ``basemap_attribution`` in the ``[portal]`` section of
``gisplatform.toml``.
"""
from __future__ import annotations

import csv
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from gisplatform.config import settings
from gisplatform.layers import Layer, load_layers

API = "ogc"
TILE_MATRIX_SET = "WebMercatorQuad"
DEFAULT_MAX_ITEMS = 10_000
UNKNOWN_COLOUR = "#DDDDDD"
PROVINCE_VIEW = (106.09, 21.32, 107.37, 22.47)  # where the map opens (EPSG:9215's area of use, lon/lat)
PROVIDER = {"vi": "Sở Nông nghiệp và Môi trường tỉnh Lạng Sơn", "en": "Lạng Sơn Department of Agriculture and Environment"}
ATTRIBUTION = f"© {PROVIDER['vi']} (CC BY 4.0)"

# Drawing order, bottom to top: the base (communes, water surfaces), parcels, then what constrains them.
ORDER = ("admin_units", "water_sources", "cadastral_parcels", "water_protection_corridors", "mining_licences",
         "water_licences")
# Broad land-use categories of the legend (the CSV's `group` column holds the finer group codes).
LAND_USE_CATEGORIES = (
    ({"vi": "Nhóm đất nông nghiệp", "en": "Agricultural land"}, ("LUA", "HNK", "SXN", "LNP", "NNP")),
    ({"vi": "Nhóm đất phi nông nghiệp", "en": "Non-agricultural land"}, ("OCT", "CDG", "PNN")),
    ({"vi": "Nhóm đất chưa sử dụng", "en": "Unused land"}, ("CSD",)),
)
COMMUNE_TINTS = ("#F6F1E4", "#EEF3E2", "#F3ECEF", "#E9EFF2", "#F4EEDD")
_HEX = re.compile(r"^#[0-9A-Fa-f]{6}$")


class StyleError(ValueError):
    """A code table or layer definition the style cannot be built from (names the file)."""


# --------------------------------------------------------------------------------------------- code tables
def read_code_table(name: str, codes_dir: Path | None = None) -> list[dict[str, str]]:
    path = (codes_dir or settings().codes_dir) / f"{name}.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(fh)]


def _current(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    """code -> its latest row (a code relabelled over time keeps its newest name)."""
    out: dict[str, dict[str, str]] = {}
    for row in sorted(rows, key=lambda r: r.get("valid_from", "")):
        out[row["code"]] = row
    return out


def land_use_table(codes_dir: Path | None = None) -> list[dict[str, Any]]:
    """Every land-use code (legacy ones too) with names, colour, group and whether it is still in force."""
    rows = read_code_table("land_use", codes_dir)
    if rows and "colour" not in rows[0]:
        raise StyleError("layers/codes/land_use.csv: the column 'colour' is missing")
    out = []
    for code, row in _current(rows).items():
        colour = row.get("colour") or UNKNOWN_COLOUR
        if not _HEX.match(colour):
            raise StyleError(f"layers/codes/land_use.csv: colour {colour!r} of {code} is not #RRGGBB")
        out.append({"code": code, "vi": row["name_vi"], "en": row["name_en"], "colour": colour.upper(),
                    "group": row.get("group", ""), "current": not row.get("valid_to"),
                    "approximate": "colour approximate" in row.get("note", "")
                                   or "colour uncertain" in row.get("note", "")})
    order = {r["code"]: i for i, r in enumerate(rows)}
    return sorted(out, key=lambda r: order[r["code"]])


def land_use_legend(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The legend: the codes in force, by broad category, in the CSV's order."""
    legend = []
    for title, groups in LAND_USE_CATEGORIES:
        items = [{k: r[k] for k in ("code", "vi", "en", "colour", "approximate")}
                 for r in table if r["current"] and r["group"] in groups]
        if items:
            legend.append({"title": title, "items": items})
    return legend


def _code_names(layers: dict[str, Layer], codes_dir: Path | None) -> dict[str, dict[str, dict[str, str]]]:
    """Names of coded values for the code tables fields refer to (those with name_vi/name_en columns)."""
    tables = sorted({f.code_table for layer in layers.values() for f in layer.public_fields if f.code_table})
    names: dict[str, dict[str, dict[str, str]]] = {}
    for table in tables:
        try:
            rows = read_code_table(table, codes_dir)
        except FileNotFoundError:
            continue
        if rows and {"name_vi", "name_en"} <= set(rows[0]):
            names[table] = {code: {"vi": r["name_vi"], "en": r["name_en"]} for code, r in _current(rows).items()}
    return names


# --------------------------------------------------------------------------------------------- basemap
def basemap_settings() -> tuple[str | None, str | None]:
    """(XYZ URL template, attribution) of the optional outside base map, or (None, None)."""
    url = os.environ.get("GISPLATFORM_BASEMAP_URL")
    attribution = os.environ.get("GISPLATFORM_BASEMAP_ATTRIBUTION")
    path = settings().config_file
    if not url and path is not None and path.is_file():
        with path.open("rb") as fh:
            portal = tomllib.load(fh).get("portal", {})
        url = portal.get("basemap_url")
        attribution = attribution or portal.get("basemap_attribution")
    if url and not (url.startswith(("http://", "https://")) and "{z}" in url and "{x}" in url and "{y}" in url):
        raise StyleError(f"basemap URL {url!r} must be an http(s) XYZ template with {{z}}, {{x}} and {{y}}")
    return (url or None), (attribution or None)


# --------------------------------------------------------------------------------------------- styling
def _interp(stops: dict[int, float]) -> list:
    return ["interpolate", ["linear"], ["zoom"], *[v for kv in sorted(stops.items()) for v in kv]]


def _land_use_colour(table: list[dict[str, Any]]) -> list:
    pairs = [v for r in table for v in (r["code"], r["colour"])]
    return ["match", ["get", "land_use_code"], *pairs, UNKNOWN_COLOUR]


def _draw(layer: Layer, table: list[dict[str, Any]], with_basemap: bool) -> list[dict[str, Any]]:
    """The MapLibre layers of one collection: (id suffix, type, paint), with the opacity the switcher scales."""
    name = layer.name
    if name == "admin_units":
        tint = ["match", ["%", ["to-number", ["get", "code"], 0], len(COMMUNE_TINTS)],
                *[v for i, c in enumerate(COMMUNE_TINTS[1:], start=1) for v in (i, c)], COMMUNE_TINTS[0]]
        return [
            {"id": "fill", "type": "fill", "paint": {"fill-color": tint, "fill-opacity": 0.0 if with_basemap else 1.0}},
            {"id": "line", "type": "line", "above": True,
             "paint": {"line-color": "#7B4F8E", "line-width": _interp({8: 0.8, 12: 1.6, 16: 2.6}),
                       "line-opacity": 0.9, "line-dasharray": [3, 1.5]}},
        ]
    if name == "water_sources":
        return [
            {"id": "fill", "type": "fill", "paint": {"fill-color": "#A8D3F0", "fill-opacity": 1.0}},
            {"id": "line", "type": "line", "paint": {"line-color": "#4A90C8", "line-width": _interp({10: 0.4, 16: 1.2}),
                                                     "line-opacity": 1.0}},
        ]
    if name == "cadastral_parcels":
        return [
            {"id": "fill", "type": "fill", "paint": {"fill-color": _land_use_colour(table), "fill-opacity": 0.9}},
            {"id": "line", "type": "line", "paint": {"line-color": "#6E5A46", "line-width": _interp({14: 0.35, 18: 1.4}),
                                                     "line-opacity": 0.9}},
        ]
    if name == "water_protection_corridors":
        return [
            {"id": "fill", "type": "fill", "paint": {"fill-color": "#2F86C9", "fill-opacity": 0.2}},
            {"id": "line", "type": "line", "paint": {"line-color": "#1F6FAE", "line-width": 1.2, "line-opacity": 0.9,
                                                     "line-dasharray": [2, 2]}},
        ]
    if name == "mining_licences":
        return [
            {"id": "fill", "type": "fill", "paint": {"fill-color": "#B35806", "fill-opacity": 0.28}},
            {"id": "line", "type": "line", "paint": {"line-color": "#8C3F02", "line-width": _interp({8: 1.0, 14: 2.2}),
                                                     "line-opacity": 1.0}},
        ]
    if name == "water_licences":
        return [{"id": "point", "type": "circle",
                 "paint": {"circle-color": "#0B4F9C", "circle-radius": _interp({9: 3, 16: 7}),
                           "circle-stroke-color": "#FFFFFF", "circle-stroke-width": 1.5, "circle-opacity": 1.0,
                           "circle-stroke-opacity": 1.0}}]
    # a layer added later: a plain style by geometry type
    if layer.geometry_type in ("Point", "MultiPoint"):
        return [{"id": "point", "type": "circle", "paint": {"circle-color": "#555555", "circle-radius": 4,
                                                             "circle-opacity": 1.0}}]
    if layer.geometry_type in ("LineString", "MultiLineString"):
        return [{"id": "line", "type": "line", "paint": {"line-color": "#555555", "line-width": 1.5,
                                                          "line-opacity": 1.0}}]
    return [{"id": "fill", "type": "fill", "paint": {"fill-color": "#999999", "fill-opacity": 0.3}},
            {"id": "line", "type": "line", "paint": {"line-color": "#555555", "line-width": 1, "line-opacity": 1.0}}]


OPACITY_KEYS = ("fill-opacity", "line-opacity", "circle-opacity", "circle-stroke-opacity", "raster-opacity")


def _fields(layer: Layer) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for f in layer.public_fields:
        entry: dict[str, Any] = {"vi": f.title.vi, "en": f.title.en, "type": f.type}
        if f.unit:
            entry["unit"] = f.unit
        if f.values:
            entry["values"] = {k: {"vi": v.vi, "en": v.en} for k, v in f.values.items()}
        if f.code_table:
            entry["codes"] = f.code_table
        if f.multi:
            entry["multi"] = f.multi
        out[f.name] = entry
    return out


SEVERITY_COLOURS = {"error": "#D7191C", "warning": "#FDAE61"}


def _add_conflicts(sources: dict, above: list, described: list, max_items: int) -> None:
    """The open regulatory conflicts (gisplatform.analysis), as GeoJSON from the OGC API, red errors, orange warnings.

    Not tiled (a few hundred features province-wide); drawn above the layers; not downloadable from the form
    (the collection has no GeoPackage formatter: use the OGC API).
    """
    from gisplatform.analysis.publish import CONFLICTS, conflicts_layer

    layer = conflicts_layer()
    sources[CONFLICTS] = {"type": "geojson", "attribution": ATTRIBUTION,
                          "data": f"{API}/collections/{CONFLICTS}/items?f=json&limit={max_items}"}
    colour = ["match", ["get", "severity"], *[v for kv in SEVERITY_COLOURS.items() for v in kv], "#777777"]
    parts = [
        {"id": f"{CONFLICTS}-fill", "type": "fill", "source": CONFLICTS, "filter": ["!=", ["geometry-type"], "Point"],
         "paint": {"fill-color": colour, "fill-opacity": 0.45}},
        {"id": f"{CONFLICTS}-line", "type": "line", "source": CONFLICTS,
         "paint": {"line-color": colour, "line-width": 2, "line-opacity": 1.0}},
        {"id": f"{CONFLICTS}-point", "type": "circle", "source": CONFLICTS, "filter": ["==", ["geometry-type"], "Point"],
         "paint": {"circle-color": colour, "circle-radius": 6, "circle-opacity": 1.0}},
    ]
    above.extend(parts)
    described.append({"id": CONFLICTS, "title": {"vi": layer.title.vi, "en": layer.title.en},
                      "styleLayers": [p["id"] for p in parts], "minzoom": 0, "geometry": "Geometry",
                      "key": ["rule", "feature_a", "feature_b"], "fields": _fields(layer), "visible": True,
                      "download": False})


# --------------------------------------------------------------------------------------------- raster layers
RASTER_TILES = "rasters/{name}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}.png"  # gisplatform.raster.tiles


def _raster_position(below: list[dict[str, Any]], style: str) -> int:
    """Hillshade goes under the parcels (relief behind the land); a planning map over them, half transparent,
    so a citizen sees which planning zone the parcel lies in and moves the opacity slider to compare."""
    parcels = [i for i, layer in enumerate(below) if layer.get("source") == "cadastral_parcels"]
    if not parcels:
        return len(below)
    return parcels[0] if style == "hillshade" else parcels[-1] + 1


def _add_rasters(sources: dict[str, Any], below: list[dict[str, Any]], described: list[dict[str, Any]],
                 rasters: dict | None = None) -> None:
    """Raster layers with a published version: PNG tile source, a raster style layer, switcher + legend entries."""
    from gisplatform.layers import load_raster_layers
    from gisplatform.raster import store
    from gisplatform.raster.coverages import coverage_extent

    rasters = rasters if rasters is not None else load_raster_layers()
    for name, layer in rasters.items():
        bounds = coverage_extent(layer) if store.current_path(name).exists() else None
        if bounds is None:
            continue  # nothing published yet: no tiles to draw
        style = layer.render.get("style", "categories" if layer.categorical else "hillshade")
        minzoom, maxzoom = int(layer.render.get("minzoom", 8)), int(layer.render.get("maxzoom", 17))
        sources[name] = {"type": "raster", "tiles": [RASTER_TILES.format(name=name)], "tileSize": 256,
                         "minzoom": minzoom, "maxzoom": maxzoom, "bounds": bounds, "attribution": ATTRIBUTION}
        # a planning map drawn over the parcels hides their land-use colours: off until the visitor turns it on
        visible = bool(layer.render.get("visible", not layer.categorical))
        style_layer = {"id": f"{name}-raster", "type": "raster", "source": name, "minzoom": minzoom,
                       "layout": {"visibility": "visible" if visible else "none"},
                       "paint": {"raster-opacity": float(layer.render.get("opacity", 0.6)),
                                 "raster-resampling": "nearest" if layer.categorical else "linear"}}
        below.insert(_raster_position(below, style), style_layer)
        entry: dict[str, Any] = {"id": name, "title": {"vi": layer.title.vi, "en": layer.title.en},
                                 "styleLayers": [style_layer["id"]], "minzoom": minzoom, "raster": True,
                                 "external": True,  # no feature downloads: the coverage is at /ogc/.../coverage
                                 "visible": visible}
        if layer.categorical:
            entry["classes"] = [{"value": c.value, "code": c.code, "vi": c.title.vi, "en": c.title.en,
                                 "colour": c.colour} for c in layer.categories]
        described.append(entry)


def portal_style(limits: dict | None = None, *, layers: dict[str, Layer] | None = None,
                 codes_dir: Path | None = None, include_conflicts: bool | None = None) -> dict[str, Any]:
    """The MapLibre style (version 8) with the portal's metadata; see the module docstring."""
    from gisplatform.publish.tiles import tile_settings

    if include_conflicts is None:  # the analysis results belong to the platform's own layer set
        include_conflicts = layers is None
    layers = layers if layers is not None else load_layers()
    table = land_use_table(codes_dir)
    basemap_url, basemap_attribution = basemap_settings()
    names = [n for n in ORDER if n in layers] + sorted(n for n in layers if n not in ORDER)
    public_keys = {name: [k for k in layers[name].natural_key
                          if k in {f.name for f in layers[name].public_fields}] for name in names}

    sources: dict[str, Any] = {}
    below: list[dict[str, Any]] = [{"id": "background", "type": "background",
                                    "paint": {"background-color": "#E9EDE6" if not basemap_url else "#FFFFFF"}}]
    above: list[dict[str, Any]] = []
    described: list[dict[str, Any]] = []
    if basemap_url:
        sources["basemap"] = {"type": "raster", "tiles": [basemap_url], "tileSize": 256, "maxzoom": 19,
                             **({"attribution": basemap_attribution} if basemap_attribution else {})}
        below.append({"id": "basemap", "type": "raster", "source": "basemap", "paint": {"raster-opacity": 1.0}})
        described.append({"id": "basemap", "title": {"vi": "Bản đồ nền", "en": "Base map"}, "styleLayers": ["basemap"],
                          "visible": True, "external": True})

    for name in names:
        layer = layers[name]
        tiles = tile_settings(layer)
        url = f"{API}/collections/{name}/tiles/{TILE_MATRIX_SET}/{{z}}/{{y}}/{{x}}?f=mvt"
        sources[name] = {"type": "vector", "tiles": [url], "minzoom": tiles.minzoom, "maxzoom": tiles.maxzoom,
                         "bounds": list(tiles.bounds), "attribution": ATTRIBUTION}
        ids = []
        for part in _draw(layer, table, bool(basemap_url)):
            style_layer = {"id": f"{name}-{part['id']}", "type": part["type"], "source": name, "source-layer": name,
                           "minzoom": tiles.minzoom, "paint": part["paint"]}
            (above if part.get("above") else below).append(style_layer)
            ids.append(style_layer["id"])
        described.append({
            "id": name, "title": {"vi": layer.title.vi, "en": layer.title.en}, "styleLayers": ids,
            "minzoom": tiles.minzoom, "geometry": layer.geometry_type, "key": public_keys[name],
            "fields": _fields(layer), "visible": True,
        })

    if include_conflicts:
        _add_conflicts(sources, above, described, max_items=int((limits or {}).get("max_items") or DEFAULT_MAX_ITEMS))
    _add_rasters(sources, below, described)
    sources["selection"] = {"type": "geojson", "data": {"type": "FeatureCollection", "features": []}}
    sources["related"] = {"type": "geojson", "data": {"type": "FeatureCollection", "features": []}}
    highlight = [
        {"id": "related-line", "type": "line", "source": "related",
         "paint": {"line-color": "#F28E00", "line-width": 2.5, "line-dasharray": [1.5, 1]}},
        {"id": "selection-fill", "type": "fill", "source": "selection", "filter": ["!=", ["geometry-type"], "Point"],
         "paint": {"fill-color": "#FFE14D", "fill-opacity": 0.35}},
        {"id": "selection-line", "type": "line", "source": "selection",
         "paint": {"line-color": "#D7191C", "line-width": 3.5}},
        {"id": "selection-point", "type": "circle", "source": "selection", "filter": ["==", ["geometry-type"], "Point"],
         "paint": {"circle-color": "rgba(0,0,0,0)", "circle-radius": 11, "circle-stroke-color": "#D7191C",
                   "circle-stroke-width": 3}},
    ]
    max_items = int((limits or {}).get("max_items") or DEFAULT_MAX_ITEMS)
    lon0, lat0, lon1, lat1 = PROVINCE_VIEW
    return {
        "version": 8,
        "name": "gisplatform — Lạng Sơn land data portal",
        "center": [(lon0 + lon1) / 2, (lat0 + lat1) / 2],
        "zoom": 8,
        "sources": sources,
        "layers": below + above + highlight,
        "metadata": {"gisplatform:portal": {
            "api": API,
            "bounds": list(PROVINCE_VIEW),
            "maxItems": max_items,
            "provider": PROVIDER,
            "opacityKeys": list(OPACITY_KEYS),
            "layers": described,
            "landUse": {r["code"]: {"vi": r["vi"], "en": r["en"], "colour": r["colour"]} for r in table},
            "legend": land_use_legend(table),
            "codes": _code_names(layers, codes_dir),
        }},
    }
