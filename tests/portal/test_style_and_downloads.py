"""Without a browser: the map style the server builds, the portal's assets, and GeoPackage downloads (f=gpkg)."""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pyogrio
import pytest

from gisplatform.layers import load_layers
from gisplatform.portal import MAPLIBRE_DIST, PORTAL_DIR
from gisplatform.portal.style import UNKNOWN_COLOUR, land_use_table, portal_style
from gisplatform.publish.formats import MEDIA_TYPE, geopackage
from tests.publish.test_privacy import LAYERS, leaks, personal_values  # noqa: F401 (fixture)

PROJECT = Path(__file__).resolve().parents[2]
HEX = re.compile(r"^#[0-9A-F]{6}$")
EPSG_9215 = "http://www.opengis.net/def/crs/EPSG/0/9215"
EPSG_4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"


# --- the style -----------------------------------------------------------------------------------------------


def test_every_land_use_code_has_a_colour_and_the_legend_lists_the_codes_in_force():
    with (PROJECT / "layers" / "codes" / "land_use.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert all(HEX.match(r["colour"]) for r in rows), [r["code"] for r in rows if not HEX.match(r["colour"])]
    table = land_use_table()
    assert {r["code"] for r in table} == {r["code"] for r in rows}
    style = portal_style({"max_items": 10000})
    portal = style["metadata"]["gisplatform:portal"]
    legend = [item["code"] for group in portal["legend"] for item in group["items"]]
    in_force = {r["code"] for r in rows if not r["valid_to"]}
    assert set(legend) == in_force and len(legend) == len(in_force)
    # the parcel fill colours every code, legacy ones too, and falls back for unknown codes
    fill = next(layer for layer in style["layers"] if layer["id"] == "cadastral_parcels-fill")["paint"]["fill-color"]
    assert fill[0] == "match" and fill[-1] == UNKNOWN_COLOUR
    assert dict(zip(fill[2:-1:2], fill[3:-1:2])) == {r["code"]: r["colour"] for r in table}
    # the colours that tell the common classes apart differ
    colours = {r["code"]: r["colour"] for r in table}
    main = ["LUC", "HNK", "CLN", "RSX", "RPH", "RDD", "NTS", "ONT", "ODT", "CQP", "DGT", "SON", "NTD", "BCS"]
    assert len({colours[c] for c in main}) == len(main)
    # approximate colours are flagged, in the CSV note and for the legend
    assert all(i["approximate"] for g in portal["legend"] for i in g["items"] if i["code"] in ("RSN", "CNT", "DCT"))


def test_style_draws_every_layer_from_the_ogc_api_tiles_within_its_zoom_range():
    style = portal_style()
    portal = style["metadata"]["gisplatform:portal"]
    layers = load_layers()
    for name, layer in layers.items():
        source = style["sources"][name]
        assert source["type"] == "vector"
        assert source["tiles"] == [f"ogc/collections/{name}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}?f=mvt"]
        assert source["minzoom"] == layer.tiles["minzoom"] and source["maxzoom"] == layer.tiles["maxzoom"]
        drawn = [s for s in style["layers"] if s.get("source") == name]
        assert drawn and all(s["source-layer"] == name for s in drawn)
    assert style["sources"]["cadastral_parcels"]["minzoom"] == 14  # no parcel tile is asked below zoom 14
    # + analysis results (GeoJSON); raster layers are listed separately (they have no vector tiles)
    assert {entry["id"] for entry in portal["layers"] if not entry.get("raster")} == set(layers) | {"conflicts"}
    assert portal["maxItems"] == 10000
    assert "basemap" not in style["sources"]  # offline: our own layers are the base map


def test_style_describes_public_fields_only():
    text = json.dumps(portal_style(), ensure_ascii=False)
    for layer in load_layers().values():
        for field in layer.personal_fields:
            assert f'"{field.name}"' not in text, (layer.name, field.name)
            assert f'"{field.title.vi}"' not in text, (layer.name, field.title.vi)


def test_an_outside_base_map_can_be_configured(monkeypatch):
    monkeypatch.setenv("GISPLATFORM_BASEMAP_URL", "https://tile.example.org/{z}/{x}/{y}.png")
    monkeypatch.setenv("GISPLATFORM_BASEMAP_ATTRIBUTION", "© example")
    style = portal_style()
    assert style["sources"]["basemap"]["tiles"] == ["https://tile.example.org/{z}/{x}/{y}.png"]
    assert [layer["id"] for layer in style["layers"]][:2] == ["background", "basemap"]
    monkeypatch.setenv("GISPLATFORM_BASEMAP_URL", "ftp://nope")
    with pytest.raises(ValueError, match="XYZ template"):
        portal_style()


def test_style_is_valid_for_maplibre(tmp_path):
    validator = PORTAL_DIR / "node_modules" / ".bin" / "gl-style-validate"
    if not validator.exists() or not shutil.which("node"):
        pytest.skip("the MapLibre style validator comes with `npm ci` in gisplatform/portal (scripts/setup.sh)")
    path = tmp_path / "style.json"
    path.write_text(json.dumps(portal_style()), encoding="utf-8")
    result = subprocess.run([str(validator), str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


# --- served by the server ----------------------------------------------------------------------------------------


def test_portal_serves_its_page_style_and_map_library(http, api_server):
    page = http.get(f"{api_server}/")
    assert page.status_code == 200
    for asset in re.findall(r'(?:src|href)="(static/[^"]+|style\.json)"', page.text):
        r = http.get(f"{api_server}/{asset}")
        assert r.status_code == 200, asset
    style = http.get(f"{api_server}/style.json")
    assert style.headers["Content-Type"].startswith("application/json")
    assert style.json()["version"] == 8
    assert (MAPLIBRE_DIST / "maplibre-gl.js").is_file(), "run scripts/setup.sh (npm ci in gisplatform/portal)"
    lib = http.get(f"{api_server}/static/maplibre/maplibre-gl.js")
    assert lib.status_code == 200 and "javascript" in lib.headers["Content-Type"]
    assert http.get(f"{api_server}/static/maplibre/package.json").status_code == 404  # only the two files
    # the page's own code and styles stay small
    own = sum((PORTAL_DIR / "static" / name).stat().st_size for name in ("index.html", "app.js", "app.css", "vn2000.js"))
    print(f"\nportal's own HTML + JS + CSS: {own / 1024:.1f} KiB")
    assert own < 96 * 1024


# --- GeoPackage downloads -----------------------------------------------------------------------------------------


def _gpkg(content: bytes, tmp_path: Path, name: str = "x.gpkg") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_items_as_geopackage(http, api, tmp_path):
    r = http.get(f"{api}/collections/cadastral_parcels/items", params={"f": "gpkg", "limit": 40})
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"] == MEDIA_TYPE
    assert r.headers["Content-Disposition"] == 'attachment; filename="cadastral_parcels.gpkg"'
    path = _gpkg(r.content, tmp_path)
    info = pyogrio.read_info(path)
    assert info["layer_name"] == "cadastral_parcels" and info["features"] == 40
    assert info["crs"] == "EPSG:4326" and info["geometry_type"] == "MultiPolygon"
    types = dict(zip(info["fields"], info["dtypes"]))
    assert types["map_sheet_no"] == "int64" and types["area_m2"] == "float64" and types["record_date"] == "datetime64[D]"
    assert types["parcel_no"] == "object"
    frame = pyogrio.read_dataframe(path)
    page = http.get(f"{api}/collections/cadastral_parcels/items", params={"limit": 40}).json()
    assert list(frame["id"]) == [f["id"] for f in page["features"]]
    assert list(frame["parcel_no"]) == [f["properties"]["parcel_no"] for f in page["features"]]
    x0, y0 = page["features"][0]["geometry"]["coordinates"][0][0][0]
    gx, gy = frame.geometry.iloc[0].geoms[0].exterior.coords[0]
    assert (gx, gy) == pytest.approx((x0, y0), abs=1e-7)  # longitude, latitude


@pytest.mark.parametrize("crs, x_range", [(EPSG_9215, (375_000, 520_000)), (EPSG_4326, (106, 108))])
def test_geopackage_in_another_crs(http, api, tmp_path, crs, x_range):
    r = http.get(f"{api}/collections/mining_licences/items", params={"f": "gpkg", "limit": 5, "crs": crs})
    assert r.status_code == 200
    frame = pyogrio.read_dataframe(_gpkg(r.content, tmp_path))
    assert pyogrio.read_info(_gpkg(r.content, tmp_path, "y.gpkg"))["crs"] == "EPSG:" + crs.rsplit("/", 1)[-1]
    x, _ = frame.geometry.iloc[0].geoms[0].exterior.coords[0]
    assert x_range[0] < x < x_range[1]  # easting / longitude first, whatever the CRS's axis order
    if crs == EPSG_9215:  # exactly the stored coordinates
        stored = http.get(f"{api}/collections/mining_licences/items", params={"limit": 5, "crs": crs}).json()
        assert frame.geometry.iloc[0].geoms[0].exterior.coords[0] == pytest.approx(
            tuple(stored["features"][0]["geometry"]["coordinates"][0][0][0]), abs=1e-6)


def test_geopackage_of_a_filter_and_of_nothing(http, api, tmp_path):
    point = http.get(f"{api}/collections/water_licences/items", params={"limit": 1}).json()["features"][0]
    r = http.get(f"{api}/collections/water_licences/items", params={
        "f": "gpkg", "filter": f"licence_no = '{point['properties']['licence_no']}'"})
    frame = pyogrio.read_dataframe(_gpkg(r.content, tmp_path))
    assert len(frame) >= 1 and set(frame["licence_no"]) == {point["properties"]["licence_no"]}
    assert pyogrio.read_info(_gpkg(r.content, tmp_path, "p.gpkg"))["geometry_type"] == "Point"
    empty = http.get(f"{api}/collections/cadastral_parcels/items", params={"f": "gpkg", "bbox": "107.30,22.40,107.301,22.401"})
    assert empty.status_code == 200
    info = pyogrio.read_info(_gpkg(empty.content, tmp_path, "empty.gpkg"))
    assert info["features"] == 0 and "parcel_no" in list(info["fields"])


def test_geopackage_is_offered_where_pygeoapi_lists_formats(http, api):
    collection = http.get(f"{api}/collections/cadastral_parcels/items", params={"limit": 1}).json()
    assert any(link["type"] == MEDIA_TYPE and "f=gpkg" in link["href"] for link in collection["links"])
    # the catalogue's records have no GeoPackage: a clear 400, not a server error
    assert http.get(f"{api}/collections/catalogue/items", params={"f": "gpkg"}).status_code == 400


def test_geopackage_formatter_without_features_keeps_the_schema(tmp_path):
    layer = load_layers()["water_protection_corridors"]
    info = pyogrio.read_info(_gpkg(geopackage([], layer, None), tmp_path))
    assert info["features"] == 0 and list(info["fields"]) == ["id", *(f.name for f in layer.public_fields)]


@pytest.mark.parametrize("layer", LAYERS)
def test_no_geopackage_holds_personal_data(http, api, personal_values, layer):  # noqa: F811
    r = http.get(f"{api}/collections/{layer}/items", params={"f": "gpkg", "limit": 10000}, timeout=120)
    assert r.status_code == 200
    assert leaks(r.content, personal_values) == []


def test_csv_download_is_readable(http, api):
    r = http.get(f"{api}/collections/cadastral_parcels/items", params={"f": "csv", "limit": 10})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8"))))
    assert len(rows) == 10 and "parcel_no" in rows[0]
