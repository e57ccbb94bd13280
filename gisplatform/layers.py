"""Layer definitions: ``layers/*.yml`` read into typed objects that every stage uses.

A layer file is the one place where a dataset's table, geometry, fields, natural key, personal fields, source
column names, validation rules and bilingual titles are declared. Nothing downstream (migrations, the loader,
the OGC configuration, the portal) describes a layer a second time; they all ask this module.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from gisplatform.config import load_yaml, settings

FIELD_TYPES = ("text", "integer", "number", "date", "boolean")
GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
SEVERITIES = ("error", "warning")
DATA_SCHEMA = "data"
HISTORY_SCHEMA = "history"
CODES_SCHEMA = "codes"  # the code tables the layers' fields are checked against
WGS84_SRID = 4326  # every layer keeps a copy of its geometry in WGS84 (geom_wgs84), for serving


class LayerDefinitionError(ValueError):
    """A layers/*.yml file that cannot be used; the message names the file and the key to fix."""


@dataclass(frozen=True)
class Text:
    """A label in Vietnamese (the default language) and English."""

    vi: str
    en: str

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.vi


@dataclass(frozen=True)
class Field:
    name: str
    type: Literal["text", "integer", "number", "date", "boolean"]
    title: Text
    description: Text | None = None
    source: tuple[str, ...] = ()
    required: bool = False
    personal: bool = False
    code_table: str | None = None
    multi: str | None = None  # separator of a multi-code value such as "ONT+CLN"
    pad: int | None = None  # zero-pad codes to this width (Excel drops leading zeros)
    domain: tuple[str, ...] | None = None
    values: dict[str, Text] = field(default_factory=dict)  # labels of domain values
    min: float | None = None
    max: float | None = None
    unit: str | None = None
    derive: str | None = None  # "function(arg, ...)" computed by transform.derive
    default_from: str | None = None  # take this field's value when the source leaves it empty

    @property
    def is_derived(self) -> bool:
        return self.derive is not None

    @property
    def public(self) -> bool:
        return not self.personal


@dataclass(frozen=True)
class Rule:
    rule: str
    severity: Literal["error", "warning"]
    repair: bool = False
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Layer:
    name: str
    title: Text
    description: Text
    keywords: dict[str, tuple[str, ...]]
    geometry_type: str
    storage_srid: int
    natural_key: tuple[str, ...]
    fields: tuple[Field, ...]
    rules: tuple[Rule, ...]
    record_date: str | None = None
    derive: dict[str, Any] | None = None
    tiles: dict[str, Any] | None = None  # vector-tile settings (zoom range, simplification, limits)
    publish: dict[str, Any] | None = None  # OGC API settings (title field, default sort, paging)
    path: Path | None = None

    @property
    def table(self) -> str:
        return self.name

    @property
    def qualified_table(self) -> str:
        return f"{DATA_SCHEMA}.{self.name}"

    @property
    def history_table(self) -> str:
        return f"{HISTORY_SCHEMA}.{self.name}"

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"layer {self.name} has no field {name!r}")

    @property
    def source_fields(self) -> tuple[Field, ...]:
        """Fields read from source files (not derived)."""
        return tuple(f for f in self.fields if not f.is_derived)

    @property
    def public_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.public)

    @property
    def personal_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.personal)

    def rule(self, name: str) -> Rule | None:
        for r in self.rules:
            if r.rule == name:
                return r
        return None


# --- reading ----------------------------------------------------------------------------------------------


def _text(value: Any, where: str) -> Text:
    if isinstance(value, dict) and set(value) >= {"vi", "en"}:
        return Text(vi=str(value["vi"]).strip(), en=str(value["en"]).strip())
    raise LayerDefinitionError(f"{where}: expected {{vi: ..., en: ...}}, got {value!r}")


_FIELD_KEYS = {
    "name", "type", "title", "description", "source", "required", "personal", "code_table", "multi", "pad",
    "domain", "values", "min", "max", "unit", "derive", "default_from",
}
_LAYER_KEYS = {
    "name", "title", "description", "keywords", "geometry", "natural_key", "record_date", "fields", "rules", "derive",
    "tiles", "publish",
}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _field(raw: dict, where: str) -> Field:
    unknown = set(raw) - _FIELD_KEYS
    if unknown:
        raise LayerDefinitionError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_FIELD_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise LayerDefinitionError(f"{where}: field name {name!r} must be lower_snake_case")
    where = f"{where} (field {name})"
    ftype = raw.get("type")
    if ftype not in FIELD_TYPES:
        raise LayerDefinitionError(f"{where}: type {ftype!r} is not one of {FIELD_TYPES}")
    if "derive" not in raw and not raw.get("source"):
        raise LayerDefinitionError(f"{where}: give the source column names ('source: [...]') or a 'derive:'")
    values = {k: _text(v, f"{where} values.{k}") for k, v in (raw.get("values") or {}).items()}
    domain = tuple(raw["domain"]) if raw.get("domain") else None
    if values and domain and set(values) != set(domain):
        raise LayerDefinitionError(f"{where}: 'values' labels must cover exactly the 'domain' codes")
    return Field(
        name=name,
        type=ftype,
        title=_text(raw.get("title"), f"{where} title"),
        description=_text(raw["description"], f"{where} description") if raw.get("description") else None,
        source=tuple(raw.get("source") or ()),
        required=bool(raw.get("required", False)),
        personal=bool(raw.get("personal", False)),
        code_table=raw.get("code_table"),
        multi=raw.get("multi"),
        pad=raw.get("pad"),
        domain=domain,
        values=values,
        min=raw.get("min"),
        max=raw.get("max"),
        unit=raw.get("unit"),
        derive=raw.get("derive"),
        default_from=raw.get("default_from"),
    )


def _rule(raw: dict, where: str) -> Rule:
    raw = dict(raw)
    name = raw.pop("rule", None)
    severity = raw.pop("severity", None)
    if not name:
        raise LayerDefinitionError(f"{where}: each rule needs 'rule: <name>'")
    if severity not in SEVERITIES:
        raise LayerDefinitionError(f"{where} (rule {name}): severity must be one of {SEVERITIES}")
    repair = bool(raw.pop("repair", False))
    return Rule(rule=name, severity=severity, repair=repair, params=raw)


def parse_layer(raw: dict, path: Path) -> Layer:
    where = str(path)
    unknown = set(raw) - _LAYER_KEYS
    if unknown:
        raise LayerDefinitionError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_LAYER_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise LayerDefinitionError(f"{where}: 'name' must be lower_snake_case, got {name!r}")
    if name != path.stem:
        raise LayerDefinitionError(f"{where}: 'name: {name}' must match the file name ({path.stem})")
    geometry = raw.get("geometry") or {}
    gtype = geometry.get("type")
    if gtype not in GEOMETRY_TYPES:
        raise LayerDefinitionError(f"{where}: geometry.type {gtype!r} is not one of {GEOMETRY_TYPES}")
    crs = str(geometry.get("crs", ""))
    if not re.fullmatch(r"EPSG:\d+", crs):
        raise LayerDefinitionError(f"{where}: geometry.crs must be an EPSG code such as EPSG:9215, got {crs!r}")
    fields = tuple(_field(f, f"{where} fields[{i}]") for i, f in enumerate(raw.get("fields") or []))
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise LayerDefinitionError(f"{where}: duplicate field names")
    natural_key = tuple(raw.get("natural_key") or ())
    if not natural_key or any(k not in names for k in natural_key):
        raise LayerDefinitionError(f"{where}: natural_key {list(natural_key)} must name fields of the layer")
    for f in fields:
        if f.default_from and f.default_from not in names:
            raise LayerDefinitionError(f"{where} (field {f.name}): default_from names no field")
    record_date = raw.get("record_date")
    if record_date and record_date not in names:
        raise LayerDefinitionError(f"{where}: record_date {record_date!r} names no field")
    keywords = {lang: tuple(words) for lang, words in (raw.get("keywords") or {}).items()}
    return Layer(
        name=name,
        title=_text(raw.get("title"), f"{where} title"),
        description=_text(raw.get("description"), f"{where} description"),
        keywords=keywords,
        geometry_type=gtype,
        storage_srid=int(crs.split(":")[1]),
        natural_key=natural_key,
        fields=fields,
        rules=tuple(_rule(r, f"{where} rules[{i}]") for i, r in enumerate(raw.get("rules") or [])),
        record_date=record_date,
        derive=raw.get("derive"),
        tiles=raw.get("tiles"),
        publish=raw.get("publish"),
        path=path,
    )


def read_layer_file(path: Path) -> Layer:
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise LayerDefinitionError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise LayerDefinitionError(f"{path}: expected a mapping at the top level")
    return parse_layer(raw, path)


def _read_any(path: Path):
    """A vector Layer, or a RasterLayer for files with ``kind: raster`` (gisplatform.raster.layers)."""
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise LayerDefinitionError(f"{path}: not valid YAML: {exc}") from exc
    if isinstance(raw, dict) and raw.get("kind") == "raster":
        from gisplatform.raster.layers import parse_raster_layer

        return parse_raster_layer(raw, path)
    if isinstance(raw, dict) and raw.get("kind", "vector") == "vector":
        raw.pop("kind", None)
    return read_layer_file(path) if not isinstance(raw, dict) else parse_layer(raw, path)


@cache
def _load_all(directory: Path) -> dict[str, Any]:
    files = sorted(directory.glob("*.yml"))
    if not files:
        raise LayerDefinitionError(f"no layer definitions (*.yml) in {directory}")
    return {layer.name: layer for layer in map(_read_any, files)}


@cache
def _load(directory: Path) -> dict[str, Layer]:
    return {name: layer for name, layer in _load_all(directory).items() if isinstance(layer, Layer)}


@cache
def _canonical(directory: Path) -> Path:
    # resolve() walks the path with a syscall per component; the API server asks for a layer on every request
    return directory.resolve()


def load_layers(directory: Path | None = None) -> dict[str, Layer]:
    """All vector layers, by name, in file-name order.

    Raster layers (``kind: raster``) are not included: every stage that iterates over this (tables, views,
    feature collections, vector tiles, the catalogue) is vector-only. They are in :func:`load_raster_layers`.
    """
    return _load(_canonical(directory or settings().layers_dir))


def load_raster_layers(directory: Path | None = None) -> dict:
    """The raster layers (``kind: raster``), by name, in file-name order."""
    from gisplatform.raster.layers import RasterLayer

    layers = _load_all(_canonical(directory or settings().layers_dir))
    return {name: layer for name, layer in layers.items() if isinstance(layer, RasterLayer)}


def is_raster_layer(name: str, directory: Path | None = None) -> bool:
    return name in load_raster_layers(directory)


def get_layer(name: str, directory: Path | None = None) -> Layer:
    layers = load_layers(directory)
    try:
        return layers[name]
    except KeyError:
        rasters = load_raster_layers(directory)
        hint = f" ({name} is a raster layer)" if name in rasters else ""
        raise LayerDefinitionError(
            f"unknown vector layer {name!r}{hint}; defined layers: {', '.join(layers)}"
        ) from None
