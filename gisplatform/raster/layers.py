"""Raster layer definitions: ``layers/<name>.yml`` with ``kind: raster``.

    name: elevation
    kind: raster
    title: {vi: ..., en: ...}
    description: {vi: ..., en: ...}
    keywords: {vi: [...], en: [...]}
    raster:
      type: continuous          # continuous (elevation: bilinear) | categorical (planning classes: nearest)
      crs: EPSG:9215            # storage CRS: every source is reprojected to it
      resolution: 20            # metres, the pixel size after reprojection
      dtype: float32            # storage data type
      nodata: -9999
      bands: 1
      unit: m
      valid_range: [-10, 2000]  # plausibility of the values (continuous)
      resampling: bilinear      # nearest for categorical layers (anything else would invent classes)
    render: {style: hillshade, minzoom: 8, maxzoom: 16, opacity: 0.6}
    categories:                 # categorical layers: pixel value -> class
      - {value: 1, code: LUA, title: {vi: ..., en: ...}, colour: "#FFFC8C"}
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gisplatform.layers import LayerDefinitionError, Text, _NAME, _text

RASTER_TYPES = ("continuous", "categorical")
RESAMPLINGS = ("nearest", "bilinear", "cubic", "average", "mode")
DTYPES = ("uint8", "uint16", "int16", "int32", "float32", "float64")
RENDER_STYLES = ("hillshade", "categories")
_KEYS = {"name", "kind", "title", "description", "keywords", "raster", "render", "categories", "publish"}
_RASTER_KEYS = {"type", "crs", "resolution", "dtype", "nodata", "bands", "unit", "valid_range", "resampling"}
_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")


@dataclass(frozen=True)
class Category:
    value: int  # the pixel value
    code: str  # the land-use / planning code (e.g. LUA)
    title: Text
    colour: str  # "#RRGGBB"

    @property
    def rgb(self) -> tuple[int, int, int]:
        return tuple(int(self.colour[i:i + 2], 16) for i in (1, 3, 5))


@dataclass(frozen=True)
class RasterLayer:
    name: str
    title: Text
    description: Text
    keywords: dict[str, tuple[str, ...]]
    raster_type: str
    storage_srid: int
    resolution: float
    dtype: str
    nodata: float
    bands: int = 1
    unit: str | None = None
    valid_range: tuple[float, float] | None = None
    resampling: str = "nearest"
    render: dict[str, Any] = field(default_factory=dict)
    categories: tuple[Category, ...] = ()
    path: Path | None = None
    kind: str = "raster"

    @property
    def categorical(self) -> bool:
        return self.raster_type == "categorical"

    def category(self, value: int) -> Category | None:
        return next((c for c in self.categories if c.value == value), None)

    @property
    def category_values(self) -> np.ndarray:
        return np.array([c.value for c in self.categories])


def _where(path: Path) -> str:
    return str(path)


def _categories(raw: Any, where: str) -> tuple[Category, ...]:
    out = []
    for i, c in enumerate(raw or []):
        at = f"{where} categories[{i}]"
        if not isinstance(c, dict) or not {"value", "code", "title", "colour"} <= set(c):
            raise LayerDefinitionError(f"{at}: each category needs value, code, title {{vi, en}} and colour")
        if not _COLOUR.match(str(c["colour"])):
            raise LayerDefinitionError(f"{at}: colour {c['colour']!r} must be #RRGGBB")
        out.append(Category(int(c["value"]), str(c["code"]), _text(c["title"], f"{at} title"), str(c["colour"])))
    values = [c.value for c in out]
    if len(set(values)) != len(values):
        raise LayerDefinitionError(f"{where}: category values must be unique")
    return tuple(out)


def _raster_section(raw: dict, where: str) -> dict:
    section = raw.get("raster") or {}
    unknown = set(section) - _RASTER_KEYS
    if unknown:
        raise LayerDefinitionError(f"{where}: unknown raster key(s) {sorted(unknown)}; allowed: {sorted(_RASTER_KEYS)}")
    if section.get("type") not in RASTER_TYPES:
        raise LayerDefinitionError(f"{where}: raster.type must be one of {RASTER_TYPES}")
    if not re.fullmatch(r"EPSG:\d+", str(section.get("crs", ""))):
        raise LayerDefinitionError(f"{where}: raster.crs must be an EPSG code such as EPSG:9215")
    if section.get("dtype") not in DTYPES:
        raise LayerDefinitionError(f"{where}: raster.dtype must be one of {DTYPES}")
    if "nodata" not in section:
        raise LayerDefinitionError(f"{where}: raster.nodata is required (the value of pixels without data)")
    if section.get("resampling", "nearest") not in RESAMPLINGS:
        raise LayerDefinitionError(f"{where}: raster.resampling must be one of {RESAMPLINGS}")
    if not float(section.get("resolution") or 0) > 0:
        raise LayerDefinitionError(f"{where}: raster.resolution must be a positive pixel size in metres")
    return section


def parse_raster_layer(raw: dict, path: Path) -> RasterLayer:
    where = _where(path)
    unknown = set(raw) - _KEYS
    if unknown:
        raise LayerDefinitionError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name) or name != path.stem:
        raise LayerDefinitionError(f"{where}: 'name' must be lower_snake_case and match the file name")
    section = _raster_section(raw, where)
    categories = _categories(raw.get("categories"), where)
    categorical = section["type"] == "categorical"
    if categorical and not categories:
        raise LayerDefinitionError(f"{where}: a categorical raster needs 'categories:'")
    resampling = section.get("resampling", "nearest" if categorical else "bilinear")
    if categorical and resampling not in ("nearest", "mode"):
        raise LayerDefinitionError(f"{where}: a categorical raster must use nearest (or mode) resampling: "
                                   f"{resampling} would invent class values between classes")
    render = dict(raw.get("render") or {})
    if render.get("style", "categories" if categorical else "hillshade") not in RENDER_STYLES:
        raise LayerDefinitionError(f"{where}: render.style must be one of {RENDER_STYLES}")
    valid = section.get("valid_range")
    return RasterLayer(
        name=name,
        title=_text(raw.get("title"), f"{where} title"),
        description=_text(raw.get("description"), f"{where} description"),
        keywords={lang: tuple(words) for lang, words in (raw.get("keywords") or {}).items()},
        raster_type=section["type"],
        storage_srid=int(str(section["crs"]).split(":")[1]),
        resolution=float(section["resolution"]),
        dtype=section["dtype"],
        nodata=float(section["nodata"]),
        bands=int(section.get("bands", 1)),
        unit=section.get("unit"),
        valid_range=(float(valid[0]), float(valid[1])) if valid else None,
        resampling=resampling,
        render=render,
        categories=categories,
        path=path,
    )


def get_raster_layer(name: str) -> RasterLayer:
    from gisplatform.layers import load_raster_layers

    layers = load_raster_layers()
    if name not in layers:
        raise LayerDefinitionError(f"unknown raster layer {name!r}; raster layers: {', '.join(layers) or '(none)'}")
    return layers[name]
