"""The managed raster folder: ``<raster dir>/<layer>/<version>.tif`` (+ ``.json``) and ``current.tif``.

``current.tif`` is a relative symbolic link to the published version. It is replaced by an atomic rename
(``os.replace`` of a freshly made link) only after the new COG is completely written and validated, so readers
(the coverage provider, the tile renderer, zonal statistics) see either the old version or the new one, never a
half-written file, and a failed run leaves the published version untouched. Older versions are kept: they are
the raster layer's history, listed with their run in the run log.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from gisplatform.config import settings

CURRENT = "current.tif"


def raster_root() -> Path:
    """``GISPLATFORM_RASTER_DIR``, else ``<var dir>/rasters`` (machine-local state, never committed)."""
    explicit = os.environ.get("GISPLATFORM_RASTER_DIR")
    return Path(explicit) if explicit else settings().var_dir / "rasters"


def layer_dir(layer: str) -> Path:
    return raster_root() / layer


@dataclass(frozen=True)
class Version:
    layer: str
    version: str
    path: Path
    meta: dict

    @property
    def source_sha256(self) -> str | None:
        return self.meta.get("source", {}).get("sha256")


def current_path(layer: str) -> Path:
    """Where readers open the published version (exists only once a version was published)."""
    return layer_dir(layer) / CURRENT


def current_version(layer: str) -> Version | None:
    link = current_path(layer)
    if not link.is_symlink() or not link.exists():
        return None
    target = link.parent / os.readlink(link)
    return Version(layer, target.stem, target, _meta(target))


def _meta(tif: Path) -> dict:
    sidecar = tif.with_suffix(".json")
    return json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else {}


def versions(layer: str) -> list[Version]:
    """Every stored version of the layer, oldest first (version names start with a UTC time stamp)."""
    folder = layer_dir(layer)
    return [Version(layer, p.stem, p, _meta(p)) for p in sorted(folder.glob("*.tif")) if p.name != CURRENT]


def staging_path(layer: str, version: str) -> Path:
    """A file name readers never open: the COG is written here, then renamed to ``<version>.tif``."""
    folder = layer_dir(layer)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f".{version}.tif.part"


def commit_version(layer: str, version: str, staged: Path, meta: dict) -> Version:
    """Make the staged, validated COG a version and point ``current.tif`` at it (both atomic renames)."""
    folder = layer_dir(layer)
    final = folder / f"{version}.tif"
    sidecar = final.with_suffix(".json")
    tmp_meta = folder / f".{version}.json.part"
    tmp_meta.write_text(json.dumps(meta, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    os.replace(tmp_meta, sidecar)
    os.replace(staged, final)
    link_tmp = folder / f".current.{os.getpid()}.tmp"
    if link_tmp.is_symlink() or link_tmp.exists():
        link_tmp.unlink()
    os.symlink(final.name, link_tmp)
    os.replace(link_tmp, folder / CURRENT)
    return Version(layer, version, final, meta)


def pixel_coords(transform, box) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(columns, rows) — fractional — of the corners of ``box`` on a north-up grid (our COGs have no rotation)."""
    cols = tuple((x - transform.c) / transform.a for x in (box[0], box[2]))
    rows = tuple((y - transform.f) / transform.e for y in (box[1], box[3]))
    return cols, rows
