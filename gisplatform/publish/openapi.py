"""The OpenAPI document of /ogc, generated at server start and made to work offline.

pygeoapi's ``generate_openapi_document`` builds the document from the configuration (it instantiates every
provider to list its fields, so the database must be reachable). Its ``$ref``s point at remote files
(schemas.opengis.net, raw.githubusercontent.com ...), which breaks every client that resolves them without
Internet access: swagger-ui in an intranet, schemathesis, code generators. So after generation:

1. every remote ``$ref`` is rewritten to a local ``#/components/...`` definition, chosen by the name the
   remote reference ends with (``.../ogcapi-features-1.yaml#/components/responses/Features`` ->
   ``#/components/responses/Features``, ``.../parameters/sortby.yaml`` -> ``#/components/parameters/sortby``,
   ``cql2.json`` -> ``#/components/schemas/cql2expression``);
2. those definitions are our own, written for this project in ``ogc_config/schemas/*.yaml`` (never copied
   from OGC's files) and inlined into ``components``, so the document is self-contained; the same files are
   served under ``/schemas/`` for reading;
3. what pygeoapi leaves undeclared is added where the server supports it: ``filter``/``filter-lang``/
   ``filter-crs`` (CQL2 text) and ``resulttype`` on feature items, the correct responses of /conformance,
   /collections and the tile resources, the tile-set and tiling-scheme paths;
4. the result is checked: no remote reference, every local reference resolves. A remote reference we have no
   definition for (a pygeoapi upgrade) is replaced by a generic stub and reported (``strict=True`` raises).
"""
from __future__ import annotations

import json
import logging
import re
from copy import deepcopy
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

from gisplatform.config import load_yaml, settings

LOGGER = logging.getLogger(__name__)

OPENAPI_FILE = "openapi.json"
COMPONENT_KINDS = ("parameters", "responses", "schemas")
CQL2_TEXT_CLASS = "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text"
OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi+json;version=3.0"

_FRAGMENT = re.compile(r"^/components/(parameters|responses|schemas)/([^/]+)$")
_FILE = re.compile(r"/(parameters|responses|schemas)/([^/]+?)\.(?:ya?ml|json)$")
_SIBLING = re.compile(r"^[A-Za-z0-9_.-]+\.ya?ml#(/components/.+)$")


class OpenAPIError(RuntimeError):
    """The generated document cannot be made self-contained."""


def schemas_dir() -> Path:
    return settings().project_dir / "ogc_config" / "schemas"


def schema_files() -> list[Path]:
    return sorted(schemas_dir().glob("*.yaml"))


# --- walking a JSON tree -------------------------------------------------------------------------------


def _refs(node: Any, path: tuple = ()) -> Iterator[tuple[dict, tuple]]:
    """Every dict holding a "$ref", with where it is."""
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node, path
        for key, value in node.items():
            yield from _refs(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _refs(value, path + (i,))


def _pointer(doc: dict, ref: str) -> Any:
    node: Any = doc
    for part in ref.lstrip("#/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise KeyError(ref)
        node = node[part]
    return node


def remote_refs(doc: dict) -> list[str]:
    return sorted({node["$ref"] for node, _ in _refs(doc) if not node["$ref"].startswith("#")})


def unresolved_refs(doc: dict) -> list[str]:
    """Local references that point at nothing (and every non-local one)."""
    bad = set()
    for node, _ in _refs(doc):
        ref = node["$ref"]
        if not ref.startswith("#/"):
            bad.add(ref)
            continue
        try:
            _pointer(doc, ref)
        except KeyError:
            bad.add(ref)
    return sorted(bad)


# --- our own definitions -------------------------------------------------------------------------------


def load_local_components(limits: dict | None = None) -> dict[str, dict]:
    """Merge ``ogc_config/schemas/*.yaml`` into one ``components`` object with document-local references."""
    merged: dict[str, dict] = {kind: {} for kind in COMPONENT_KINDS}
    origin: dict[tuple[str, str], str] = {}
    for path in schema_files():
        with path.open(encoding="utf-8") as fh:
            fragment = load_yaml(fh) or {}
        components = deepcopy(fragment.get("components") or {})
        for node, _ in _refs(components):
            sibling = _SIBLING.match(node["$ref"])
            if sibling:
                node["$ref"] = "#" + sibling.group(1)
        for kind, definitions in components.items():
            if kind not in merged:
                raise OpenAPIError(f"{path}: unsupported components section {kind!r}")
            for name, definition in definitions.items():
                if (kind, name) in origin:
                    raise OpenAPIError(f"{path}: {kind}/{name} is already defined in {origin[kind, name]}")
                origin[kind, name] = path.name
                merged[kind][name] = definition
    limits = limits or {}
    limit = merged["parameters"].get("limit")
    if limit:
        default, maximum = limits.get("default_items", 10), limits.get("max_items", 10)
        limit["schema"].update({"default": default, "maximum": maximum})
        limit["description"] = limit["description"].rstrip() + f" (default={default}, maximum={maximum})."
    return merged


def components_document(limits: dict | None = None) -> dict:
    """A stand-alone OpenAPI document of our definitions (served as /schemas/ogcapi-components.json)."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "gisplatform — OGC API definitions", "version": "1.0", "license": {"name": "MIT"}},
        "paths": {},
        "components": load_local_components(limits),
    }


# --- remote -> local ------------------------------------------------------------------------------------


def local_ref_for(ref: str) -> str | None:
    """The ``#/components/<kind>/<name>`` that replaces a remote reference, by the name it ends with."""
    parts = urlsplit(ref)
    fragment = _FRAGMENT.match(parts.fragment or "")
    if fragment:
        return f"#/components/{fragment.group(1)}/{fragment.group(2)}"
    file_ = _FILE.search(parts.path)
    if file_ and not parts.fragment:
        return f"#/components/{file_.group(1)}/{file_.group(2)}"
    if parts.path.endswith("/cql2.json") or parts.path.endswith("/cql2.yaml"):
        return "#/components/schemas/cql2expression"
    return None


def _stub(kind: str, name: str) -> dict:
    if kind == "parameters":
        return {"name": name, "in": "query", "required": False, "schema": {"type": "string"},
                "description": "(no local definition)"}
    if kind == "responses":
        return {"description": "(no local definition)"}
    return {"description": "(no local definition)"}


def make_offline(doc: dict, local: dict[str, dict], *, strict: bool = False) -> list[str]:
    """Rewrite remote references to local components (adding ours); return the ones we had to stub."""
    components = doc.setdefault("components", {})
    for kind in COMPONENT_KINDS:
        components.setdefault(kind, {}).update(deepcopy(local.get(kind, {})))
    stubbed: list[str] = []
    for node, where in list(_refs(doc)):
        ref = node["$ref"]
        if ref.startswith("#"):
            continue
        target = local_ref_for(ref)
        if target is None:  # unknown shape of reference: name the stub after the file, kind from the position
            stubbed.append(f"{ref} (at {'/'.join(map(str, where))})")
            kind = ("parameters" if len(where) > 1 and where[-2] == "parameters"
                    else "responses" if len(where) > 1 and where[-2] == "responses" else "schemas")
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", urlsplit(ref).path.rsplit("/", 1)[-1].split(".")[0]) or "remote"
            target = f"#/components/{kind}/{name}"
        _, _, kind, name = target.split("/", 3)
        if name not in components[kind]:
            if not stubbed or not stubbed[-1].startswith(ref + " (at "):
                stubbed.append(ref)
            components[kind][name] = _stub(kind, name)
        node["$ref"] = target
    if stubbed and strict:
        raise OpenAPIError("no local definition for: " + ", ".join(sorted(set(stubbed))))
    for ref in sorted(set(stubbed)):
        LOGGER.warning("OpenAPI: no local definition for %s; a generic stub was used", ref)
    return sorted(set(stubbed))


# --- filling the gaps pygeoapi leaves ---------------------------------------------------------------------


def _provider_types(resource: dict) -> set[str]:
    return {p.get("type") for p in resource.get("providers", [])}


def _params(operation: dict) -> list:
    return operation.setdefault("parameters", [])


def _param_names(doc: dict, operation: dict) -> set[str]:
    names = set()
    for p in operation.get("parameters", []):
        if "$ref" in p:
            try:
                p = _pointer(doc, p["$ref"])
            except KeyError:
                continue
        names.add(p.get("name"))
    return names


def _add_params(doc: dict, operation: dict, *names: str) -> None:
    present = _param_names(doc, operation)
    for name in names:
        if name not in present:
            _params(operation).append({"$ref": f"#/components/parameters/{name}"})


def _cql_classes() -> list[str]:
    try:
        from gisplatform.publish.cql import CONFORMANCE_CLASSES
    except ImportError:  # pragma: no cover - the CQL module is part of the package
        return []
    return list(CONFORMANCE_CLASSES)


def complete_document(doc: dict, config: dict) -> None:
    """Declare what the server supports but pygeoapi's generator leaves out (see the module docstring)."""
    paths = doc.get("paths", {})

    for path, target in (("/conformance", "ConformanceDeclaration"), ("/collections", "Collections")):
        if path in paths:
            paths[path]["get"]["responses"]["200"] = {"$ref": f"#/components/responses/{target}"}
    if "/openapi" in paths:
        paths["/openapi"]["get"]["responses"]["200"] = {
            "description": "This document (JSON), or an HTML viewer of it with f=html.",
            "content": {OPENAPI_MEDIA_TYPE: {"schema": {"type": "object"}},
                        "text/html": {"schema": {"type": "string"}}},
        }

    supports_cql_text = CQL2_TEXT_CLASS in _cql_classes()
    has_tiles = False
    for name, resource in config.get("resources", {}).items():
        if resource.get("type") != "collection" or resource.get("visibility") == "hidden":
            continue
        kinds = _provider_types(resource)
        items = paths.get(f"/collections/{name}/items", {})
        item = paths.get(f"/collections/{name}/items/{{featureId}}", {})
        if "feature" in kinds and "get" in items:
            _add_params(doc, items["get"], "resulttype")
            if supports_cql_text:
                _add_params(doc, items["get"], "filter", "filter-lang", "filter-crs")
        elif "record" in kinds:
            if "get" in items:
                items["get"]["responses"]["200"] = {"$ref": "#/components/responses/Records"}
                for param in items["get"].get("parameters", []):  # pygeoapi cannot write records as CSV
                    if param.get("name") == "f" and "csv" in param.get("schema", {}).get("enum", []):
                        param["schema"]["enum"].remove("csv")
            if "get" in item:
                item["get"]["responses"]["200"] = {"$ref": "#/components/responses/Record"}
        if "tile" in kinds:
            has_tiles = True
            _complete_tiles(doc, name, resource)
        if "coverage" in kinds:
            _complete_coverage(doc, name)

    if has_tiles:
        paths.setdefault("/TileMatrixSets", {"get": {
            "summary": "Tiling schemes", "description": "The tiling schemes the tiles are available in.",
            "tags": ["server"], "operationId": "getTileMatrixSetsList",
            "parameters": [{"$ref": "#/components/parameters/f"}],
            "responses": {"200": {"$ref": "#/components/responses/TileMatrixSets"},
                          "400": {"$ref": "#/components/responses/InvalidParameter"},
                          "500": {"$ref": "#/components/responses/ServerError"}}}})
        paths.setdefault("/TileMatrixSets/{tileMatrixSetId}", {"get": {
            "summary": "A tiling scheme", "description": "Definition of one tiling scheme.",
            "tags": ["server"], "operationId": "getTileMatrixSet",
            "parameters": [{"$ref": "#/components/parameters/tileMatrixSetId"},
                           {"$ref": "#/components/parameters/f"}],
            "responses": {"200": {"$ref": "#/components/responses/TileMatrixSet"},
                          "400": {"$ref": "#/components/responses/InvalidParameter"},
                          "404": {"$ref": "#/components/responses/NotFound"},
                          "500": {"$ref": "#/components/responses/ServerError"}}}})

    _drop_empty_enums(doc)

    # pygeoapi's own tile-list definitions describe a draft shape the server no longer returns.
    for kind, name in (("responses", "Tiles"), ("schemas", "tiles"), ("schemas", "tilematrixsetlink"),
                       ("schemas", "queryable")):
        if not _is_referenced(doc, f"#/components/{kind}/{name}"):
            doc["components"][kind].pop(name, None)


def _drop_empty_enums(node: Any) -> None:
    """``enum: []`` (pygeoapi's ``properties`` parameter of a collection without fields) is invalid OpenAPI."""
    if isinstance(node, dict):
        if node.get("enum") == []:
            del node["enum"]
        for value in node.values():
            _drop_empty_enums(value)
    elif isinstance(node, list):
        for value in node:
            _drop_empty_enums(value)


def _complete_coverage(doc: dict, name: str) -> None:
    """pygeoapi documents a coverage as a feature collection: it is CoverageJSON, GeoTIFF or HTML
    (gisplatform.raster.coverages), and a subset too large to send is a 413."""
    operation = doc["paths"].get(f"/collections/{name}/coverage", {}).get("get")
    if not operation:
        return
    operation["responses"]["200"] = {
        "description": "The coverage or the subset asked for: CoverageJSON (f=json), GeoTIFF (f=GTiff) or HTML.",
        "content": {"application/prs.coverage+json": {"schema": {"type": "object"}},
                    "image/tiff; application=geotiff": {"schema": {"type": "string", "format": "binary"}},
                    "text/html": {"schema": {"type": "string"}}}}
    operation["responses"]["413"] = {"$ref": "#/components/responses/InvalidParameter"}


def _complete_tiles(doc: dict, name: str, resource: dict) -> None:
    paths = doc["paths"]
    base = f"/collections/{name}/tiles"
    if base in paths:
        paths[base]["get"]["responses"]["200"] = {"$ref": "#/components/responses/TileSetsList"}
    tile = paths.get(f"{base}/{{tileMatrixSetId}}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}", {}).get("get")
    if tile:
        tile["responses"].setdefault("204", {"description": "No feature in this tile (empty tile)."})
    title = resource.get("title")
    if isinstance(title, dict):
        title = title.get("vi") or next(iter(title.values()))
    paths.setdefault(f"{base}/{{tileMatrixSetId}}/metadata", {"get": {
        "summary": f"Tile set metadata of {title} (also as TileJSON)",
        "description": "Same as the tile set resource; f=tilejson gives a TileJSON 3.0 document for map libraries.",
        "tags": [name], "operationId": f"get{name.capitalize()}.collection.vector.getTileSetMetadata",
        "parameters": [{"$ref": "#/components/parameters/tileMatrixSetId"},
                       {"name": "f", "in": "query", "required": False, "style": "form", "explode": False,
                        "description": "json (OGC tile set metadata, default), tilejson or html.",
                        "schema": {"type": "string", "enum": ["json", "tilejson", "html"], "default": "json"}}],
        "responses": {"200": {"$ref": "#/components/responses/TileSet"},
                      "400": {"$ref": "#/components/responses/InvalidParameter"},
                      "404": {"$ref": "#/components/responses/NotFound"},
                      "500": {"$ref": "#/components/responses/ServerError"}}}})
    paths.setdefault(f"{base}/{{tileMatrixSetId}}", {"get": {
        "summary": f"Tile set metadata of {title}",
        "description": "The tiling scheme, the zoom levels with data and a templated link to the tiles.",
        "tags": [name], "operationId": f"get{name.capitalize()}.collection.vector.getTileSet",
        "parameters": [{"$ref": "#/components/parameters/tileMatrixSetId"},
                       {"$ref": "#/components/parameters/f"}],
        "responses": {"200": {"$ref": "#/components/responses/TileSet"},
                      "400": {"$ref": "#/components/responses/InvalidParameter"},
                      "404": {"$ref": "#/components/responses/NotFound"},
                      "500": {"$ref": "#/components/responses/ServerError"}}}})


def _is_referenced(doc: dict, ref: str) -> bool:
    return any(node["$ref"] == ref for node, _ in _refs(doc))


# --- generation -------------------------------------------------------------------------------------------


def _unescape(node: Any) -> Any:
    """pygeoapi's to_json HTML-escapes < and > in every string; undo it (the document is JSON, not HTML)."""
    if isinstance(node, str):
        return node.replace("&lt;", "<").replace("&gt;", ">")
    if isinstance(node, list):
        return [_unescape(v) for v in node]
    if isinstance(node, dict):
        return {k: _unescape(v) for k, v in node.items()}
    return node


def build_openapi(config_path: Path, *, strict: bool = False) -> dict:
    """The complete, self-contained OpenAPI document for the configuration file at ``config_path``."""
    from pygeoapi.openapi import generate_openapi_document
    from pygeoapi.util import yaml_load

    config_path = Path(config_path)
    with config_path.open(encoding="utf-8") as fh:
        config = yaml_load(fh)
    doc = _unescape(json.loads(generate_openapi_document(config_path, "json", fail_on_invalid_collection=True)))
    make_offline(doc, load_local_components(config["server"].get("limits")), strict=strict)
    complete_document(doc, config)
    bad = unresolved_refs(doc)
    if bad:
        raise OpenAPIError("unresolvable references in the OpenAPI document: " + ", ".join(bad))
    return doc


def write_openapi(config_path: Path, out_path: Path, *, strict: bool = False) -> Path:
    """Generate the document (see :func:`build_openapi`) and write it as JSON (pygeoapi serves it verbatim)."""
    doc = build_openapi(config_path, strict=strict)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(out_path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    tmp.replace(out_path)
    return out_path
