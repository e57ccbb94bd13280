"""The WSGI application gunicorn serves: the portal, the OGC API under ``/ogc`` and our OpenAPI definitions.

    /                 the portal: the land-data web map (gisplatform/portal/static/), its MapLibre GL JS
                      (/static/maplibre/, from gisplatform/portal/node_modules) and /style.json
    /ogc/...          pygeoapi's Flask application (landing page, conformance, collections, items, tiles,
                      the metadata catalogue, /ogc/openapi)
    /schemas/...      the OpenAPI definitions /ogc/openapi is built from (ogc_config/schemas/*.yaml, our own)
    /rasters/...      PNG map tiles of the raster layers (hillshade, planning colours): gisplatform.raster.tiles,
                      our own route because pygeoapi 0.24 has no renderer of GeoTIFFs into styled tiles

It is built by :func:`create_app` (gunicorn target ``gisplatform.publish.server:create_app()``) from the
files ``gisplatform serve`` wrote: ``PYGEOAPI_CONFIG`` and ``PYGEOAPI_OPENAPI`` must be set, since pygeoapi
reads both when its Flask module is imported. The providers connect to the database themselves, as the
read-only API role (:func:`gisplatform.publish.connection.api_database_url`).

Conformance: QGIS sends CQL2 filters to the server only when the conformance declaration lists the
Features Part 3 filter classes next to the CQL2 ones. pygeoapi builds /conformance on every request from the
module-level list ``pygeoapi.api.itemtypes.CONFORMANCE_CLASSES_FEATURES`` (added once per collection with a
feature provider). :func:`extend_conformance` appends ``gisplatform.publish.cql.CONFORMANCE_CLASSES`` to that
list in place, once per process, before the Flask module is imported — no pygeoapi function is replaced or
wrapped, and the classes appear exactly where pygeoapi would have put them had it declared them itself.
(The config file cannot do it: pygeoapi has no setting for conformance classes.) The same hook withdraws
Features Part 4, create/replace/delete, which pygeoapi claims although no collection is editable.

Fixed pages: the landing page and /conformance depend only on the configuration and on what the request
negotiates (format, language, encoding); :class:`ConfigPages` keeps pygeoapi's answers to them, keyed on exactly
those inputs, instead of rebuilding them per request. Nothing that reads data is kept.

Errors: pygeoapi answers bad requests with its own JSON exception (4xx), which is kept. A provider error
pygeoapi does not catch becomes the JSON exception of its own status and user message; anything else
unexpected (an exception, or a 5xx whose body might carry a connection string or SQL) is logged here with its
details and answered with a generic JSON body: no stack trace or internal detail leaves the server.
"""
from __future__ import annotations

import json
import logging
import mimetypes
import os
import re
import threading
from collections import OrderedDict
from http import HTTPStatus
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import parse_qs

LOGGER = logging.getLogger("gisplatform.publish.server")

PORTAL_STATIC = Path(__file__).resolve().parents[1] / "portal" / "static"
API_PREFIX = "/ogc"
SCHEMAS_PREFIX = "/schemas"
STATUS_PREFIX = "/status"  # the read-only ETL status page (gisplatform.publish.status)
RASTERS_PREFIX = "/rasters"
CORS_HEADERS = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Expose-Headers", "Content-Crs, Content-Language, Link"),
]

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


# --- conformance -----------------------------------------------------------------------------------------


FEATURES_PART4 = "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete"


def extend_conformance(config: dict | None = None) -> list[str]:
    """Add the CQL2/Features-3 classes gisplatform.publish.cql supports to pygeoapi's feature classes.

    With ``config``, also withdraw Features Part 4 (create/replace/delete), which pygeoapi declares for every
    feature collection although ours are read-only (``editable`` is never set): a client must not be told it
    may write. Returns the classes added.
    """
    from pygeoapi.api import itemtypes

    from gisplatform.publish.cql import CONFORMANCE_CLASSES

    declared = itemtypes.CONFORMANCE_CLASSES_FEATURES  # changed in place: pygeoapi reads it per request
    added = [uri for uri in CONFORMANCE_CLASSES if uri not in declared]
    declared.extend(added)
    if config is not None:
        editable = any(p.get("editable") for r in (config.get("resources") or {}).values()
                       for p in r.get("providers", []))
        if not editable and FEATURES_PART4 in declared:
            declared.remove(FEATURES_PART4)
    return added


# --- small WSGI helpers ------------------------------------------------------------------------------------


def _json_error(start_response, status: str, code: str, description: str, extra_headers=()) -> list[bytes]:
    body = json.dumps({"code": code, "type": code, "description": description}).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            *extra_headers])
    return [body]


def _wants_head(environ) -> bool:
    return environ.get("REQUEST_METHOD") == "HEAD"


class StaticFiles:
    """A fixed set of files (no directory walking, so no path traversal), 404 for anything else."""

    def __init__(self, files: dict[str, Path | Callable[[], tuple[bytes, str]]], *, not_found: WSGIApp):
        self.files = files
        self.not_found = not_found

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "" and environ.get("SCRIPT_NAME"):  # /schemas -> /schemas/
            start_response("301 Moved Permanently", [("Location", environ["SCRIPT_NAME"] + "/"),
                                                     ("Content-Length", "0")])
            return []
        path = environ.get("PATH_INFO") or "/"
        entry = self.files.get(path)
        if entry is None:
            return self.not_found(environ, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _json_error(start_response, "405 Method Not Allowed", "MethodNotAllowed",
                               "only GET and HEAD are allowed here", [("Allow", "GET, HEAD")])
        if callable(entry):
            body, content_type = entry()
        else:
            body = entry.read_bytes()
            content_type = _content_type(entry)
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body))),
                                  ("Cache-Control", "public, max-age=300")])
        return [] if _wants_head(environ) else [body]


def _content_type(path: Path) -> str:
    if path.suffix in (".yaml", ".yml"):
        return "application/yaml; charset=utf-8"
    guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def _not_found_html(environ, start_response):
    body = ("<!doctype html><html lang=\"vi\"><meta charset=\"utf-8\"><title>404</title>"
            "<p>Không tìm thấy trang / Page not found. <a href=\"/\">Trang chủ / Home</a></p></html>").encode()
    start_response("404 Not Found", [("Content-Type", "text/html; charset=utf-8"),
                                     ("Content-Length", str(len(body)))])
    return [body]


def _not_found_json(environ, start_response):
    return _json_error(start_response, "404 Not Found", "NotFound", "no such resource")


def portal_app(limits: dict | None = None) -> WSGIApp:
    from gisplatform.portal import map_assets

    index = PORTAL_STATIC / "index.html"
    files: dict = {"/": index, "/index.html": index}
    for path in sorted(PORTAL_STATIC.glob("*")):
        if path.is_file() and path.name != "index.html":
            files[f"/static/{path.name}"] = path
    files.update(map_assets(limits))  # MapLibre GL JS (from node_modules) and /style.json (built from layers/)
    return StaticFiles(files, not_found=_not_found_html)


def schemas_app(limits: dict | None) -> WSGIApp:
    from gisplatform.publish.openapi import components_document, schema_files

    files: dict = {}
    listing = []
    for path in schema_files():
        files[f"/{path.name}"] = path
        listing.append({"href": f"{path.name}", "rel": "describedby",
                        "type": "application/vnd.oai.openapi;version=3.0", "title": path.stem})
    components = json.dumps(components_document(limits), ensure_ascii=False).encode()
    files["/ogcapi-components.json"] = lambda: (components, "application/vnd.oai.openapi+json;version=3.0")
    listing.append({"href": "ogcapi-components.json", "rel": "describedby",
                    "type": "application/vnd.oai.openapi+json;version=3.0",
                    "title": "all definitions merged (the components of /ogc/openapi)"})
    index = json.dumps({
        "title": "gisplatform OpenAPI definitions (written for this project; used by /ogc/openapi)",
        "links": listing,
    }, ensure_ascii=False).encode()
    files["/"] = lambda: (index, "application/json")
    return StaticFiles(files, not_found=_not_found_json)


# --- pygeoapi ---------------------------------------------------------------------------------------------


def _install_error_handlers(flask_app) -> None:
    from pygeoapi.error import GenericError
    from werkzeug.exceptions import HTTPException

    @flask_app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):  # routing 404, 405 ... as OGC-style JSON
        body = {"code": exc.name.replace(" ", ""), "type": exc.name.replace(" ", ""),
                "description": exc.description or exc.name}
        headers = {"Content-Type": "application/json"}
        if getattr(exc, "valid_methods", None):
            headers["Allow"] = ", ".join(exc.valid_methods)
        return json.dumps(body), exc.code or 500, headers

    @flask_app.errorhandler(GenericError)
    def _provider_error(exc: GenericError):
        """A provider error pygeoapi let through (e.g. from tile metadata): its status and user message."""
        status = int(exc.http_status_code)
        if status >= 500:
            LOGGER.error("provider error: %r", exc, exc_info=exc)
        body = {"code": exc.ogc_exception_code, "type": exc.ogc_exception_code, "description": exc.message}
        return json.dumps(body), status, {"Content-Type": "application/json"}

    @flask_app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        LOGGER.exception("unhandled error in the OGC API")
        body = {"code": "NoApplicableCode", "type": "NoApplicableCode", "description": "internal server error"}
        return json.dumps(body), 500, {"Content-Type": "application/json"}


class _OneLineRequestErrors(logging.Filter):
    """pygeoapi logs every refused request (4xx) at ERROR with a stack trace; keep the one-line reason.

    Real failures are logged with their trace by this module (5xx answers and unhandled exceptions)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.funcName == "get_exception":
            record.exc_info, record.exc_text = None, None
            if record.levelno == logging.ERROR:
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class _NoOffsetWarning(logging.Filter):
    """pygeoapi 0.24 logs a WARNING ("int() argument must be ... not 'NoneType'") for every items request
    without an ``offset`` (it parses the missing value, catches the TypeError and uses 0): noise in the log on
    nearly every request, and a log write each time. Dropped; every other warning stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.funcName == "get_collection_items" and isinstance(record.msg, TypeError)
                    and "NoneType" in str(record.msg))


def pygeoapi_app(config: dict) -> WSGIApp:
    from gisplatform.publish import fastjson
    from gisplatform.publish.transformers import cache_pygeoapi_transformers

    extend_conformance(config)
    cache_pygeoapi_transformers()  # pygeoapi builds pyproj CRSs and transformers per request: reuse them
    from pygeoapi.flask_app import APP  # reads PYGEOAPI_CONFIG / PYGEOAPI_OPENAPI at import

    fastjson.install()  # pygeoapi's JSON answers through orjson (see the module)
    logging.getLogger("pygeoapi.api").addFilter(_OneLineRequestErrors())
    logging.getLogger("pygeoapi.api.itemtypes").addFilter(_NoOffsetWarning())

    APP.config["PROPAGATE_EXCEPTIONS"] = False
    _install_error_handlers(APP)
    return APP


class ConfigPages:
    """Remember pygeoapi's answers for the pages that depend on nothing but the configuration and the request.

    The landing page and /conformance are built by pygeoapi on every request, yet what they say is fixed once
    the process has read its configuration (pygeoapi reads it once, at import; the conformance classes are
    settled by :func:`extend_conformance` before that): they vary only with what the request negotiates. The
    answer (status, headers, body) of a GET of one of ``paths`` is therefore kept, keyed on exactly those
    inputs: the path and the whole query string (``f``, ``lang`` and anything else), the ``Accept``,
    ``Accept-Language`` and ``Accept-Encoding`` headers, and the host, scheme and forwarding headers (pygeoapi
    writes its links from ``server.url``, but a future version that used the request's host would still be
    answered right). Only complete 200 answers are kept, at most ``size`` of them (least recently used go
    first), so odd query strings cannot grow it. Data endpoints are never wrapped: their answers change with
    the data.
    """

    KEY_ENVIRON = ("PATH_INFO", "QUERY_STRING", "HTTP_ACCEPT", "HTTP_ACCEPT_LANGUAGE", "HTTP_ACCEPT_ENCODING",
                   "HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "SCRIPT_NAME", "wsgi.url_scheme",
                   "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_PORT",
                   "HTTP_X_FORWARDED_PREFIX", "HTTP_FORWARDED")

    def __init__(self, app: WSGIApp, paths: Iterable[str], size: int = 64):
        self.app = app
        self.paths = frozenset(paths)
        self.size = size
        self.answers: OrderedDict[tuple, tuple[str, list, bytes]] = OrderedDict()
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") != "GET" or (environ.get("PATH_INFO") or "") not in self.paths:
            return self.app(environ, start_response)
        key = tuple(environ.get(name) for name in self.KEY_ENVIRON)
        with self.lock:
            answer = self.answers.get(key)
            if answer is not None:
                self.answers.move_to_end(key)
        if answer is None:
            answer = self._answer(environ)
            if answer[0].startswith("200"):
                self._keep(key, answer)
        status, headers, body = answer
        start_response(status, list(headers))  # a copy: the Dispatcher rewrites the list it is given
        return [body]

    def _answer(self, environ) -> tuple[str, list, bytes]:
        started: list = []
        written: list[bytes] = []

        def keep_start(status, headers, exc_info=None):
            started[:] = [status, list(headers)]
            return written.append

        result = self.app(environ, keep_start)
        try:
            body = b"".join([*written, *result])
        finally:
            if hasattr(result, "close"):
                result.close()
        return started[0], started[1], body

    def _keep(self, key: tuple, answer: tuple) -> None:
        with self.lock:
            self.answers[key] = answer
            self.answers.move_to_end(key)
            while len(self.answers) > self.size:
                self.answers.popitem(last=False)


# --- the whole server ---------------------------------------------------------------------------------------


CONFIG_PAGES = ("", "/", "/conformance")  # under /ogc: the landing page and the conformance declaration
ITEMS_PATH = re.compile(r"^/ogc/collections/[^/]+/items(/[^/]+)?/?$")
COVERAGE_PATH = re.compile(r"^/ogc/collections/[^/]+/coverage/?$")
DROPPED_HEADERS = ("access-control-allow-origin", "x-powered-by")  # CORS set below; no software version
JSON_TYPES = ("application/json", "application/geo+json", "application/problem+json", "text/html")


def _bad_coverage_bbox(query: str) -> str | None:
    """pygeoapi 0.24 answers a malformed coverage bbox with a 500 (InvalidParameterValue): say what is wrong."""
    for bbox in parse_qs(query, keep_blank_values=True).get("bbox", []):
        parts = bbox.split(",")
        try:
            values = [float(v) for v in parts]
        except ValueError:
            return f"bbox {bbox!r}: give four numbers minx,miny,maxx,maxy"
        if len(values) != 4 or not all(map(lambda v: v == v and abs(v) != float("inf"), values)):
            return f"bbox {bbox!r}: give four finite numbers minx,miny,maxx,maxy"
        if not (values[0] < values[2] and values[1] < values[3]):
            return f"bbox {bbox!r}: minx must be < maxx and miny < maxy"
    return None


def _phrase(status: str) -> str:
    try:
        return HTTPStatus(int(status[:3])).phrase
    except ValueError:
        return status[4:]


def _header(headers: list[tuple[str, str]], name: str) -> str:
    return next((v for k, v in headers if k.lower() == name), "")


class Dispatcher:
    """Route by path prefix and make the answers uniform for clients.

    - CORS: every answer may be read by a web page of any origin (open data); preflights answered here;
    - no ``X-Powered-By: pygeoapi <version>`` header (the software version is nobody's business);
    - GeoJSON media type: pygeoapi 0.24 labels items ``application/json``; OGC API - Features Part 1
      (/req/geojson/content) wants ``application/geo+json``, which GDAL and QGIS also accept: relabelled;
    - HTML pages get ``charset=utf-8`` in their media type (pygeoapi leaves it out);
    - errors: a 4xx whose body is not JSON or HTML (pygeoapi answers a missing tile with plain text labelled
      as a vector tile) is turned into the usual JSON exception; a 5xx never carries its original body to the
      client (it may hold SQL or a connection string): it is logged and replaced by a generic JSON message.
    """

    def __init__(self, portal: WSGIApp, mounts: dict[str, WSGIApp], record_collections: Iterable[str] = ()):
        self.portal = portal
        self.mounts = sorted(mounts.items(), key=lambda kv: -len(kv[0]))
        self.record_items = {f"{API_PREFIX}/collections/{name}/items" for name in record_collections}

    def _refuse(self, environ, is_items: bool) -> str | None:
        """Requests pygeoapi 0.24 would answer with a 500 (its bugs), refused here with the reason."""
        if COVERAGE_PATH.match(environ.get("PATH_INFO") or ""):
            return _bad_coverage_bbox(environ.get("QUERY_STRING") or "")
        if not is_items:
            return None
        if environ.get("REQUEST_METHOD") == "POST" and not environ.get("CONTENT_TYPE"):
            return "POST .../items needs Content-Type: application/json with a CQL2 JSON filter"
        if (environ.get("PATH_INFO") or "").rstrip("/") in self.record_items:
            formats = parse_qs(environ.get("QUERY_STRING") or "").get("f", [])
            if any(f.strip().lower() == "csv" for f in formats):
                return "f=csv is offered for the layers' features, not for the catalogue's records"
        return None

    def _route(self, environ) -> WSGIApp:
        path = environ.get("PATH_INFO") or "/"
        for prefix, app in self.mounts:
            if path == prefix or path.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = path[len(prefix):]
                return app
        return self.portal

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "OPTIONS" and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
            start_response("204 No Content", [*CORS_HEADERS,
                                              ("Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS"),
                                              ("Access-Control-Allow-Headers", "Accept, Accept-Language, "
                                                                               "Content-Type, Content-Crs"),
                                              ("Access-Control-Max-Age", "86400")])
            return []
        is_items = bool(ITEMS_PATH.match(environ.get("PATH_INFO") or ""))
        refusal = self._refuse(environ, is_items)
        if refusal:
            return _json_error(start_response, "400 Bad Request", "InvalidParameterValue", refusal, CORS_HEADERS)
        captured: dict = {}

        def capture(status, headers, exc_info=None):
            code = int(status[:3])
            content_type = _header(headers, "content-type").split(";")[0].strip().lower()
            if code >= 500 or (code >= 400 and content_type not in JSON_TYPES):
                captured.update(status=status, headers=headers, replace=True)
                return lambda data: None  # the body is replaced below
            headers = [(k, v) for k, v in headers if k.lower() not in DROPPED_HEADERS] + CORS_HEADERS
            if is_items and code == 200 and content_type == "application/json":
                headers = [(k, "application/geo+json" if k.lower() == "content-type" else v) for k, v in headers]
            elif content_type == "text/html" and "charset" not in _header(headers, "content-type").lower():
                # pygeoapi labels its pages text/html without a charset: HTTP then means ISO-8859-1 (RFC 9110
                # defaults, requests and curl follow it), and Vietnamese text turns into mojibake
                headers = [(k, "text/html; charset=utf-8" if k.lower() == "content-type" else v) for k, v in headers]
            return start_response(status, headers, exc_info)

        try:
            app = self._route(environ)
            result = app(environ, capture)
        except Exception:  # noqa: BLE001 - last line of defence
            LOGGER.exception("unhandled error serving %s", environ.get("PATH_INFO"))
            return _json_error(start_response, "500 Internal Server Error", "NoApplicableCode",
                               "internal server error", CORS_HEADERS)
        if captured.get("replace"):
            return self._replace_error(environ, captured["status"], result, start_response)
        return result

    @staticmethod
    def _replace_error(environ, status: str, result, start_response) -> list[bytes]:
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        text = body[:2000].decode("utf-8", "replace").strip()
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        code = parsed.get("code") if isinstance(parsed, dict) else None
        if not (isinstance(code, str) and code.isidentifier()):
            code = "NoApplicableCode" if status >= "500" else _phrase(status).replace(" ", "")
        if status >= "500":
            LOGGER.error("%s on %s %s?%s: %s", status, environ.get("REQUEST_METHOD"),
                         environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
                         environ.get("QUERY_STRING", ""), text)
            description = ("the service is temporarily unavailable" if status.startswith("503")
                           else "internal server error")
        else:
            description = parsed.get("description") if isinstance(parsed, dict) else None
            description = str(description or text or _phrase(status))[:500]
        return _json_error(start_response, status, code, description, CORS_HEADERS)


def create_app() -> WSGIApp:
    """The WSGI application (gunicorn: ``gisplatform.publish.server:create_app()``)."""
    from pygeoapi.util import yaml_load

    for var in ("PYGEOAPI_CONFIG", "PYGEOAPI_OPENAPI"):
        if not os.environ.get(var) or not Path(os.environ[var]).is_file():
            raise RuntimeError(f"{var} must name an existing file (run `gisplatform serve`, which writes both)")
    with open(os.environ["PYGEOAPI_CONFIG"], encoding="utf-8") as fh:
        config = yaml_load(fh)
    api = ConfigPages(pygeoapi_app(config), CONFIG_PAGES)
    records = [name for name, r in (config.get("resources") or {}).items()
               if any(p.get("type") == "record" for p in r.get("providers", []))]
    limits = config["server"].get("limits")
    from gisplatform.publish.status import status_app
    from gisplatform.raster.tiles import RasterTilesApp

    return Dispatcher(portal_app(limits), {API_PREFIX: api, SCHEMAS_PREFIX: schemas_app(limits),
                                           STATUS_PREFIX: status_app(), RASTERS_PREFIX: RasterTilesApp()},
                      record_collections=records)
