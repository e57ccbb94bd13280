"""The pygeoapi configuration: ``ogc_config/base.yml`` + one collection per layer + the metadata catalogue.

Nothing is described twice. The hand-edited base holds the server settings and the service metadata; every
collection is derived from its ``layers/*.yml`` (bilingual title, description, keywords), from the database
(extents) and from the provider modules (``feature_provider_definition``, ``tile_provider_definition``,
``catalogue_resource_definition``), which own how a layer is read. The result is written at server start
(``gisplatform serve``) or on demand (``gisplatform ogc config``); it is a build artefact, never edited.

Extents:
  spatial   the CRS84 bounding box of ``api.<layer>`` (its ``geom_wgs84`` column), rounded outwards;
            the province's box when the layer is empty (a collection must have an extent, and clients zoom to it)
  temporal  from the layer's first successful ETL run to now (an open interval: the data keeps changing
            while the server runs, so the end is left open rather than frozen at start time)
"""
from __future__ import annotations

import logging
import math
import re
from copy import deepcopy
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
import yaml

from gisplatform.config import load_yaml, settings
from gisplatform.crs import PROVINCE_BBOX_WGS84
from gisplatform.layers import Layer, load_layers
from gisplatform.publish.html import compile_labels, write_html_assets
from gisplatform.publish.views import API_SCHEMA

LOGGER = logging.getLogger(__name__)

CONFIG_FILE = "pygeoapi-config.yml"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
URL_PREFIX = "/ogc"  # where server.py mounts the API under the server root


def base_config_path() -> Path:
    return settings().project_dir / "ogc_config" / "base.yml"


def load_base(path: Path | None = None) -> dict:
    path = path or base_config_path()
    with path.open(encoding="utf-8") as fh:
        base = load_yaml(fh)
    if not isinstance(base, dict) or not {"server", "metadata", "logging"} <= set(base):
        raise ValueError(f"{path}: expected the sections server, logging and metadata")
    if base.get("resources"):
        raise ValueError(f"{path}: must not define resources (they are generated from layers/*.yml)")
    return base


def portal_url(server_url: str) -> str:
    """The server root (the portal) for an API URL ending in /ogc; the API URL itself otherwise."""
    url = server_url.rstrip("/")
    return (url[: -len(URL_PREFIX)] if url.endswith(URL_PREFIX) else url) + "/"


# --- extents from the database ------------------------------------------------------------------------


def _round_out(bbox: tuple[float, float, float, float], digits: int = 6) -> list[float]:
    f = 10**digits
    return [math.floor(bbox[0] * f) / f, math.floor(bbox[1] * f) / f,
            math.ceil(bbox[2] * f) / f, math.ceil(bbox[3] * f) / f]


def _spatial_extents(connection, layers: list[Layer]) -> dict[str, list[float] | None]:
    out: dict[str, list[float] | None] = {}
    for layer in layers:
        row = connection.execute(sa.text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
            f'FROM (SELECT ST_Extent(geom_wgs84) AS e FROM {API_SCHEMA}."{layer.name}") t')).one()
        out[layer.name] = _round_out(tuple(row)) if row[0] is not None else None
    return out


def _first_runs(layers: list[Layer]) -> dict[str, datetime]:
    """Start of each layer's first successful run: etl.runs (platform role), else api.catalogue (API role)."""
    names = [layer.name for layer in layers]
    queries = [
        ("platform", "SELECT layer, min(started_at) FROM etl.runs WHERE status = 'succeeded' "
                     "AND layer = ANY(:names) GROUP BY layer"),
        ("api", f"SELECT layer, min(finished_at) FROM {API_SCHEMA}.catalogue WHERE layer = ANY(:names) "
                "GROUP BY layer"),
    ]
    for which, query in queries:
        try:
            with _engine(which).connect() as connection:
                return {k: v for k, v in connection.execute(sa.text(query), {"names": names}) if v is not None}
        except sa.exc.SQLAlchemyError as exc:
            LOGGER.info("temporal extents from the %s connection failed: %s", which, exc)
    return {}


def _engine(which: str) -> sa.Engine:
    if which == "api":
        from gisplatform.publish.connection import api_engine

        return api_engine()
    from gisplatform.db.engine import engine

    return engine()


def layer_extents(layers: list[Layer]) -> dict[str, dict]:
    """pygeoapi ``extents`` per layer name (spatial always; temporal when the layer was ever loaded)."""
    with _engine("api").connect() as connection:
        boxes = _spatial_extents(connection, layers)
    first = _first_runs(layers)
    extents: dict[str, dict] = {}
    for layer in layers:
        bbox = boxes.get(layer.name) or list(PROVINCE_BBOX_WGS84)
        extents[layer.name] = {"spatial": {"bbox": bbox, "crs": CRS84}}
        if layer.name in first:
            extents[layer.name]["temporal"] = {"begin": first[layer.name], "end": None, "trs": GREGORIAN}
    return extents


# --- the configuration ----------------------------------------------------------------------------------


def _keywords(layer: Layer) -> dict[str, list[str]] | list[str]:
    words = {lang: list(values) for lang, values in layer.keywords.items() if values}
    return words or [layer.name]


def _short_licence_name(name: str | dict) -> str:
    """'Creative Commons Attribution 4.0 International (CC BY 4.0)' -> 'CC BY 4.0' (same in every language)."""
    text = name.get("en") or next(iter(name.values())) if isinstance(name, dict) else str(name)
    inner = re.search(r"\(([^()]+)\)\s*$", text)
    return inner.group(1) if inner else text


def collection_definition(layer: Layer, extents: dict, license_: dict) -> dict[str, Any]:
    from gisplatform.publish.features import feature_provider_definition
    from gisplatform.publish.formats import formatter_definition
    from gisplatform.publish.tiles import tile_provider_definition

    resource: dict[str, Any] = {
        "type": "collection",
        "title": {"vi": layer.title.vi, "en": layer.title.en},
        "description": {"vi": layer.description.vi, "en": layer.description.en},
        "keywords": _keywords(layer),
        "links": [{
            "type": "text/html",
            "rel": "license",
            "title": _short_licence_name(license_["name"]),  # pygeoapi's schema wants a plain string here
            "href": license_["url"],
        }],
        "extents": extents,
        "providers": [feature_provider_definition(layer), tile_provider_definition(layer)],
        "formatters": [formatter_definition()],  # f=gpkg (GeoPackage downloads) next to pygeoapi's f=csv
    }
    limits = (layer.publish or {}).get("limits")
    if isinstance(limits, dict) and limits:
        resource["limits"] = dict(limits)
    return resource


def analysis_resources(license_: dict) -> dict[str, dict]:
    """The conflicts collection and the analysis processes (gisplatform.analysis.publish)."""
    from gisplatform.analysis import publish

    resources = {publish.CONFLICTS: publish.conflicts_resource(list(PROVINCE_BBOX_WGS84), license_,
                                                               _short_licence_name(license_["name"]))}
    resources.update(publish.process_resources())
    return resources


def catalogue_resource(server_url: str | None = None) -> tuple[str, dict]:
    """(collection id, pygeoapi resource) of the metadata catalogue, as gisplatform.publish.records defines it."""
    from gisplatform.publish import records

    definition = deepcopy(records.catalogue_resource_definition(server_url))
    return getattr(records, "CATALOGUE_ID", "catalogue"), definition


def raster_resources(existing: dict, license_: dict) -> dict[str, dict]:
    """OGC API - Coverages collections of the raster layers that have a published version, and the
    ``zonal-statistics`` process (gisplatform.raster)."""
    from gisplatform.layers import load_raster_layers
    from gisplatform.raster.coverages import coverage_collection

    link = {"type": "text/html", "rel": "license", "title": _short_licence_name(license_["name"]),
            "href": license_["url"]}
    out = {}
    for name, layer in load_raster_layers().items():
        if name in existing:
            raise ValueError(f"raster layer {name!r} collides with a vector layer name")
        resource = coverage_collection(layer, link)
        if resource is None:
            LOGGER.info("raster layer %s has no published version yet: no coverage collection", name)
            continue
        out[name] = resource
    from gisplatform.raster.zonal import process_resource

    process_id, process = process_resource()  # zonal statistics over the raster layers (for parcel-report)
    out[process_id] = process
    return out


def build_config(server_url: str, *, bind: tuple[str, int] | None = None,
                 layers: dict[str, Layer] | None = None) -> dict:
    """The complete pygeoapi configuration as a dict (see the module docstring)."""
    config = load_base()
    server_url = server_url.rstrip("/")
    config["server"]["url"] = server_url
    if bind is None:
        parts = urlsplit(server_url)
        bind = (parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80))
    config["server"]["bind"] = {"host": bind[0], "port": int(bind[1])}
    config["metadata"]["identification"]["url"] = portal_url(server_url)

    layers = layers if layers is not None else load_layers()
    extents = layer_extents(list(layers.values()))
    license_ = config["metadata"]["license"]
    resources: dict[str, dict] = {}
    for name, layer in layers.items():
        resources[name] = collection_definition(layer, extents[name], license_)
    resources.update(analysis_resources(license_))
    if "manager" not in config["server"]:  # async process jobs (gisplatform.analysis.publish.process_manager)
        from gisplatform.analysis.publish import process_manager

        config["server"]["manager"] = process_manager(settings().var_dir)
    resources.update(raster_resources(resources, license_))
    catalogue_id, catalogue = catalogue_resource(server_url)
    if catalogue_id in resources:
        raise ValueError(f"the catalogue id {catalogue_id!r} collides with a layer name")
    resources[catalogue_id] = catalogue
    config["resources"] = resources
    return config


class _Dumper(yaml.SafeDumper):
    """Block style, Unicode kept as is (Vietnamese stays readable), no anchors/aliases."""

    def ignore_aliases(self, data):  # noqa: D102
        return True


def _path_representer(dumper, data):
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data))


_Dumper.add_multi_representer(Path, _path_representer)


def dump_config(config: dict) -> str:
    header = ("# GENERATED by gisplatform.publish.config from ogc_config/base.yml and layers/*.yml: do not edit,\n"
              "# edit those and regenerate (`gisplatform ogc config` or restart `gisplatform serve`).\n")
    return header + yaml.dump(config, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=110)


def write_config(out_dir: Path, server_url: str, *, bind: tuple[str, int] | None = None) -> Path:
    """Write ``<out_dir>/pygeoapi-config.yml`` for an API served at ``server_url`` (e.g. http://host:8000/ogc)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / CONFIG_FILE
    config = build_config(server_url, bind=bind)
    config["server"]["templates"] = write_html_assets(out_dir)  # pygeoapi's HTML pages with local libraries
    config["server"]["locale_dir"] = str(compile_labels(out_dir))  # ... and Vietnamese labels
    text = dump_config(config)
    tmp = path.with_suffix(".yml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
