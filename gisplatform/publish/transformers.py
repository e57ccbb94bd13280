"""Reuse pyproj transformers inside pygeoapi instead of building one per request.

pygeoapi 0.24 calls ``pyproj.Transformer.from_crs(...)`` on every request that carries a ``bbox``
(``pygeoapi.crs.transform_bbox``: CRS84 → the storage CRS) or a spatial CQL2 filter
(``_inplace_transform_filter_geometries``: ``filter-crs`` → the storage CRS). For CRS84 → EPSG:9215 PROJ
looks the operation up in proj.db each time: 9.4 ms of CPU per request on this machine, measured as 59 % of a
server worker's time under ``bench/api.py``'s bbox load (py-spy), more than the SQL and the JSON together.

:func:`cache_pygeoapi_transformers` gives the ``pygeoapi.crs`` module (only that module) a view of pyproj
whose ``Transformer.from_crs`` remembers the transformers it built, keyed on its arguments. A transformer is
immutable, and pyproj (>= 3.1) gives every thread its own PROJ context for it, so sharing one between
requests and threads changes nothing but the time. Everything else in ``pygeoapi.crs`` sees pyproj as is.
"""
from __future__ import annotations

import functools
import logging
import types

import pyproj

LOGGER = logging.getLogger(__name__)

CACHE_SIZE = 64  # distinct (source CRS, target CRS, axis order) pairs: a handful per collection


@functools.lru_cache(maxsize=CACHE_SIZE)
def _cached_from_crs(crs_from, crs_to, always_xy=False, **kwargs) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(crs_from, crs_to, always_xy=always_xy, **kwargs)


def cached_from_crs(crs_from, crs_to, always_xy=False, **kwargs) -> pyproj.Transformer:
    """``pyproj.Transformer.from_crs`` remembered per arguments (unhashable arguments are not remembered)."""
    try:
        return _cached_from_crs(crs_from, crs_to, always_xy, **kwargs)
    except TypeError:  # an unhashable argument (e.g. a dict): build it as pygeoapi would have
        return pyproj.Transformer.from_crs(crs_from, crs_to, always_xy=always_xy, **kwargs)


class _Transformer:
    """Stands for ``pyproj.Transformer`` in pygeoapi.crs: cached ``from_crs``, the rest as pyproj has it."""

    from_crs = staticmethod(cached_from_crs)

    def __getattr__(self, name):
        return getattr(pyproj.Transformer, name)


class _Pyproj(types.ModuleType):
    """pyproj as pygeoapi.crs sees it: ``Transformer`` replaced by :class:`_Transformer`."""

    def __init__(self):
        super().__init__("pyproj")
        self.Transformer = _Transformer()

    def __getattr__(self, name):
        return getattr(pyproj, name)


def cache_pygeoapi_transformers() -> bool:
    """Install the cached view of pyproj into ``pygeoapi.crs`` (idempotent). Returns whether it was installed."""
    import pygeoapi.crs as pygeoapi_crs

    if isinstance(pygeoapi_crs.pyproj, _Pyproj):
        return False
    if pygeoapi_crs.pyproj is not pyproj:
        LOGGER.warning("pygeoapi.crs.pyproj is not pyproj: transformers are not cached")
        return False
    pygeoapi_crs.pyproj = _Pyproj()
    return True
