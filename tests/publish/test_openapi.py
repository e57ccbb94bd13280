"""The OpenAPI document the server publishes: self-contained (no remote reference), valid, and complete
where clients look (QGIS reads limit's default and maximum; GDAL looks for resulttype and filter)."""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

from gisplatform.layers import load_layers, load_raster_layers
from gisplatform.publish.openapi import (
    OpenAPIError,
    load_local_components,
    local_ref_for,
    make_offline,
    remote_refs,
    schema_files,
    unresolved_refs,
)

OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"


@pytest.fixture(scope="module")
def document(http, api):
    r = http.get(f"{api}/openapi", params={"f": "json"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith(OPENAPI_JSON)
    return r.json()


def _all_refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _all_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _all_refs(value)


def _params(document: dict, operation: dict) -> dict[str, dict]:
    out = {}
    for p in operation.get("parameters", []):
        if "$ref" in p:
            kind, name = p["$ref"].split("/")[-2:]
            p = document["components"][kind][name]
        out[p["name"]] = p
    return out


def test_no_remote_references(document, api_server):
    remote = [ref for ref in _all_refs(document) if not ref.startswith("#") and not ref.startswith(api_server)]
    assert remote == []
    assert "schemas.opengis.net" not in json.dumps(document.get("paths", {}))


def test_every_reference_resolves_locally(document):
    assert unresolved_refs(document) == []


def test_document_is_valid_openapi_30(document):
    if importlib.util.find_spec("openapi_spec_validator"):
        from openapi_spec_validator import validate

        validate(document)
    from pygeoapi.openapi import validate_openapi_document  # JSON Schema of OpenAPI 3.0, bundled with pygeoapi

    assert validate_openapi_document(document)
    assert document["openapi"].startswith("3.0")


def test_items_declare_limit_default_and_maximum(document, api):
    for name in load_layers():
        operation = document["paths"][f"/collections/{name}/items"]["get"]
        limit = _params(document, operation)["limit"]["schema"]
        assert limit["default"] == 100 and limit["maximum"] == 10000 and limit["minimum"] == 1


def test_items_declare_filter_resulttype_and_paging(document):
    for name in load_layers():
        params = _params(document, document["paths"][f"/collections/{name}/items"]["get"])
        assert {"bbox", "limit", "offset", "crs", "bbox-crs", "filter", "filter-lang", "filter-crs", "resulttype",
                "sortby", "properties", "skipGeometry"} <= set(params), name
        assert params["filter-lang"]["schema"]["enum"] == ["cql2-text"]
        assert params["resulttype"]["schema"]["enum"] == ["results", "hits"]
        assert params["bbox"]["schema"]["type"] == "array" and params["bbox"]["explode"] is False


def test_responses_have_schemas(document):
    components = document["components"]
    features = components["responses"]["Features"]["content"]["application/geo+json"]["schema"]
    assert features == {"$ref": "#/components/schemas/featureCollectionGeoJSON"}
    assert components["responses"]["ConformanceDeclaration"]["content"]["application/json"]["schema"]
    assert document["paths"]["/conformance"]["get"]["responses"]["200"]["$ref"].endswith("ConformanceDeclaration")
    assert document["paths"]["/collections"]["get"]["responses"]["200"]["$ref"].endswith("/Collections")
    for name in ("landingPage", "confClasses", "collections", "collection", "extent", "link", "exception",
                 "featureCollectionGeoJSON", "featureGeoJSON", "geometryGeoJSON", "tileSet", "tileSets",
                 "recordGeoJSON", "cql2expression"):
        assert name in components["schemas"], name


def test_tile_paths_use_local_parameters(document):
    base = "/collections/cadastral_parcels/tiles/{tileMatrixSetId}"
    tile = document["paths"][f"{base}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"]
    names = set(_params(document, tile["get"]))
    assert {"tileMatrixSetId", "tileMatrix", "tileRow", "tileCol"} <= names
    assert "/collections/cadastral_parcels/tiles/{tileMatrixSetId}" in document["paths"]


def test_our_definitions_are_served_under_schemas(http, api_server):
    index = http.get(f"{api_server}/schemas/").json()
    hrefs = {link["href"] for link in index["links"]}
    assert {p.name for p in schema_files()} <= hrefs
    for path in schema_files():
        r = http.get(f"{api_server}/schemas/{path.name}")
        assert r.status_code == 200
        served = yaml.safe_load(r.text)
        assert served == yaml.safe_load(path.read_text(encoding="utf-8"))
        # Each file is a document of its own: refs are local or to a sibling file that is served too.
        for ref in _all_refs(served):
            target, _, _ = ref.partition("#")
            assert target == "" or target in hrefs, (path.name, ref)
    merged = http.get(f"{api_server}/schemas/ogcapi-components.json").json()
    assert unresolved_refs(merged) == []


def test_remote_reference_mapping():
    assert local_ref_for("https://schemas.opengis.net/ogcapi/features/part1/1.0/openapi/ogcapi-features-1.yaml"
                         "#/components/responses/Features") == "#/components/responses/Features"
    assert local_ref_for("https://raw.githubusercontent.com/opengeospatial/ogcapi-records/master/core/openapi/"
                         "parameters/sortby.yaml") == "#/components/parameters/sortby"
    assert local_ref_for("https://schemas.opengis.net/cql2/1.0/cql2.json") == "#/components/schemas/cql2expression"
    assert local_ref_for("https://example.org/something-else.yaml") is None


def test_unknown_remote_reference_is_stubbed_and_reported_or_refused():
    def doc():
        return {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {"/x": {"get": {
            "parameters": [{"$ref": "https://example.org/p/odd.yaml#/x"}],
            "responses": {"200": {"$ref": "https://example.org/r/other.json#/y"}}}}}}

    relaxed = doc()
    stubbed = make_offline(relaxed, load_local_components())
    assert len(stubbed) == 2 and remote_refs(relaxed) == [] and unresolved_refs(relaxed) == []
    assert relaxed["components"]["parameters"]["odd"]["in"] == "query"
    with pytest.raises(OpenAPIError):
        make_offline(doc(), load_local_components(), strict=True)


def test_local_definitions_do_not_clash_and_take_limits():
    components = load_local_components({"default_items": 7, "max_items": 70})
    assert components["parameters"]["limit"]["schema"]["default"] == 7
    assert components["parameters"]["limit"]["schema"]["maximum"] == 70
    doc = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}, "components": components}
    assert unresolved_refs(doc) == [] and remote_refs(doc) == []


# Failures schemathesis may report that are not ours to fix, each with the reason:
KNOWN_FAILURES = [
    # pygeoapi 0.24's JSON-LD template for an empty page of items ends with a dangling comma (its bug).
    (re.compile(r"ST109 JSON deserialization error"), re.compile(r"f=jsonld")),
    # gunicorn refuses request lines over limit_request_line (8190 bytes) before the application sees them.
    (re.compile(r"Received: 414"), re.compile(r"URI Too Long")),
]


def _unexpected_failures(junit: Path) -> list[str]:
    unexpected = []
    for failure in ElementTree.parse(junit).iter("failure"):
        for block in re.split(r"\n(?=\d+\. Test Case ID:)", failure.text or ""):
            if not any(a.search(block) and b.search(block) for a, b in KNOWN_FAILURES):
                unexpected.append(block.strip()[:3000])
    return unexpected


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(document, api, tmp_path):
    """Requests generated from the (offline) document: never a 5xx, and every answer documented and valid."""
    binary = Path(sys.executable).parent / "schemathesis"
    if not binary.exists():
        pytest.skip("schemathesis is not installed (scripts/setup.sh --test installs it)")
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(document))
    command = [str(binary), "run", str(spec), "--url", api,
               "--exclude-method", "POST", "--exclude-method", "OPTIONS",  # read-only API; POST = CQL2 JSON
               "--exclude-path-regex", r"/tiles/\{tileMatrixSetId\}/\{tileMatrix\}",  # binary tiles
               "--max-examples", "25", "--seed", "20261127", "--request-timeout", "60",
               "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                           "response_schema_conformance",
               "--suppress-health-check", "all", "--no-color",
               "--report", "junit", "--report-dir", str(tmp_path / "report")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1500, cwd=tmp_path)  # its cache dir
    reports = sorted((tmp_path / "report").glob("*.xml"))
    assert reports, result.stdout[-4000:] + result.stderr[-2000:]
    operations = int(ElementTree.parse(reports[-1]).getroot().get("tests", 0))
    assert operations >= 5 * len(load_layers()), (operations, result.stdout[-3000:])  # it did test something
    unexpected = _unexpected_failures(reports[-1])
    assert not unexpected, "\n\n".join(unexpected[:5])


def test_ogc_config_command_writes_configuration_and_document(published_database, tmp_path):
    """`gisplatform ogc config --openapi` (what an administrator runs to inspect or validate the setup)."""
    import os

    from gisplatform.publish.records import CATALOGUE_ID

    env = {**os.environ, "GISPLATFORM_DATABASE_URL": published_database.render_as_string(hide_password=False)}
    url = "https://gis.example.org/ogc"
    result = subprocess.run([str(Path(sys.executable).parent / "gisplatform"), "ogc", "config", "--out",
                             str(tmp_path), "--url", url, "--openapi"], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid against pygeoapi's configuration schema" in result.stdout
    config = yaml.safe_load((tmp_path / "pygeoapi-config.yml").read_text(encoding="utf-8"))
    assert config["server"]["url"] == url and config["metadata"]["identification"]["url"] == "https://gis.example.org/"
    # + the analysis (issue 6) and, for raster layers with a published version, coverages and zonal-statistics
    assert set(config["resources"]) == set(load_layers()) | {CATALOGUE_ID, "conflicts", "parcel-report",
                                                            "licence-precheck", "land-statistics"} | set(
        load_raster_layers()) | {"zonal-statistics"}
    parcels = config["resources"]["cadastral_parcels"]
    assert parcels["title"] == {"vi": "Thửa đất địa chính", "en": "Cadastral parcels"}
    assert [p["type"] for p in parcels["providers"]] == ["feature", "tile"]
    document = json.loads((tmp_path / "openapi.json").read_text(encoding="utf-8"))
    assert remote_refs(document) == [] and unresolved_refs(document) == []
    assert document["servers"][0]["url"] == url
