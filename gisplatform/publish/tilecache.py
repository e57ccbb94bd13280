"""A disk cache of vector tiles, keyed by the layer's last successful ETL run.

Data in the ``api`` views changes only through ETL runs, so a tile cut once stays right until the layer's next
successful run: the cache key is ``<layer>/run-<run id>/<z>/<x>/<y>.mvt``, with the run id read from
``api.catalogue`` (remembered per process for ``VERSION_TTL`` seconds, so a new run shows within that time).
When a process first sees a new run id for a layer it deletes the folders of older runs. Empty tiles are
cached as empty files (HTTP 204). Files are written to a temporary name and renamed, so two workers cutting the
same tile, or a reader meeting a half-written file, cannot happen.

Why: a zoom-14 parcel tile holds thousands of parcels and costs a few hundred milliseconds of PostGIS time; the
portal's visitors ask for the same few hundred tiles around towns again and again (GeoServer has GeoWebCache
for the same reason). Only zooms up to ``max_zoom`` are cached: deeper tiles are cheap and too many to keep.

Switched on by ``GISPLATFORM_TILE_CACHE`` (a folder, or ``off``); ``gisplatform serve`` sets it to
``var/tile-cache`` unless told otherwise. With it unset, providers cut every tile afresh (the tests of the tile
SQL rely on that). ``gisplatform ogc tiles-clear`` empties it by hand.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from gisplatform.publish.views import API_SCHEMA

LOGGER = logging.getLogger(__name__)

ENV = "GISPLATFORM_TILE_CACHE"
VERSION_TTL = 2.0  # seconds a process trusts the run id it read
DEFAULT_MAX_ZOOM = 16


class TileCache:
    """Cached tile bytes under ``root``; ``version`` asks the database which run a layer's data is from."""

    def __init__(self, root: Path, max_zoom: int = DEFAULT_MAX_ZOOM):
        self.root = Path(root)
        self.max_zoom = max_zoom
        self._versions: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def version(self, engine: sa.Engine, layer: str) -> str | None:
        """``run-<id>`` of the layer's last successful run (None when it never loaded: nothing is cached)."""
        now = time.monotonic()
        seen = self._versions.get(layer)
        if seen and now - seen[0] < VERSION_TTL:
            return seen[1]
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            run_id = conn.execute(sa.text(f"SELECT run_id FROM {API_SCHEMA}.catalogue WHERE layer = :layer"),
                                  {"layer": layer}).scalar()
        version = None if run_id is None else f"run-{run_id}"
        with self._lock:
            previous = self._versions.get(layer)
            self._versions[layer] = (now, version)
        if version and (previous is None or previous[1] != version):
            self._prune(layer, keep=version)
        return version

    def path(self, layer: str, version: str, z: int, x: int, y: int) -> Path:
        return self.root / layer / version / str(z) / str(x) / f"{y}.mvt"

    def get(self, layer: str, version: str, z: int, x: int, y: int) -> bytes | None:
        """The cached bytes (``b""`` for a cached empty tile), or None when the tile is not cached."""
        try:
            return self.path(layer, version, z, x, y).read_bytes()
        except OSError:
            return None

    def put(self, layer: str, version: str, z: int, x: int, y: int, data: bytes) -> None:
        target = self.path(layer, version, z, x, y)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(data)
            os.replace(temporary, target)
        except OSError as exc:  # a full disk or a prune racing us: serve the tile anyway, uncached
            LOGGER.warning("tile cache: cannot write %s: %s", target, exc)
            temporary.unlink(missing_ok=True)

    def _prune(self, layer: str, keep: str) -> None:
        """Delete the folders of this layer's older runs (their tiles can never be asked for again)."""
        folder = self.root / layer
        if not folder.is_dir():
            return
        for old in folder.iterdir():
            if old.is_dir() and old.name != keep:
                LOGGER.info("tile cache: dropping %s (layer %s now at %s)", old, layer, keep)
                shutil.rmtree(old, ignore_errors=True)

    def clear(self) -> int:
        """Delete every cached tile; returns how many files there were."""
        count = sum(1 for p in self.root.rglob("*.mvt")) if self.root.is_dir() else 0
        shutil.rmtree(self.root, ignore_errors=True)
        with self._lock:
            self._versions.clear()
        return count


_CACHES: dict[str, TileCache] = {}


def tile_cache() -> TileCache | None:
    """The process's cache as ``GISPLATFORM_TILE_CACHE`` says (None: off)."""
    setting = os.environ.get(ENV, "").strip()
    if not setting or setting.lower() in ("off", "0", "no", "false"):
        return None
    cache = _CACHES.get(setting)
    if cache is None:
        cache = _CACHES.setdefault(setting, TileCache(Path(setting)))
    return cache


def default_cache_dir() -> Path:
    from gisplatform.config import settings

    return settings().var_dir / "tile-cache"
