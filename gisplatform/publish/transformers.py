"""Reuse pyproj transformers and CRS objects inside pygeoapi instead of building them per request.

pygeoapi 0.24 calls ``pyproj.Transformer.from_crs(...)`` on every request that carries a ``bbox``
(``pygeoapi.crs.transform_bbox``: CRS84 → the storage CRS) or a spatial CQL2 filter
(``_inplace_transform_filter_geometries``: ``filter-crs`` → the storage CRS). For CRS84 → EPSG:9215 PROJ
looks the operation up in proj.db each time: 9.4 ms of CPU per request on this machine, measured as 59 % of a
server worker's time under ``bench/api.py``'s bbox load (py-spy), more than the SQL and the JSON together.

It also builds ``pyproj.CRS`` objects from URIs (``pygeoapi.crs.get_crs``) three or more times per feature
request (the provider's ``storage_crs``, the output CRS of ``create_crs_transform_spec``, bbox and filter CRSs)
and writes each one out as WKT (``CrsTransformSpec``, and ``hash(CRS)`` is ``hash(CRS.to_wkt())``, which the
transformer cache below computes for its key): about 0.3 ms of CPU per request, a quarter of a feature by id.

:func:`cache_pygeoapi_transformers` gives the ``pygeoapi.crs`` module (only that module) a view of pyproj in
which

* ``Transformer.from_crs`` remembers the transformers it built, keyed on its arguments;
* ``CRS.from_authority`` (the one way ``get_crs`` makes a CRS from a URI) remembers the CRS per (authority,
  code), as a :class:`SharedCRS`: a ``pyproj.CRS`` that also remembers its ``to_wkt``/``to_epsg`` answers.
  Everything else about ``CRS`` (``isinstance``, ``from_wkt``, calling it) is pyproj's own.

Thread safety: a transformer and a CRS are immutable, and pyproj (>= 3.1) gives every thread its own PROJ
object for them (``CRSLocal``, a ``threading.local``; https://github.com/pyproj4/pyproj/issues/782), so
sharing them between requests and gthread threads changes nothing but the time. The remembered WKT/EPSG
answers are plain strings and integers in a dict; two threads asking at once at worst both compute the same
value (a dict store is atomic under the GIL). ``lru_cache`` is thread-safe. Errors (unknown codes) are not
remembered, and the caches are bounded (``CACHE_SIZE``): a client naming many ``filter-crs`` codes cannot
grow them. Everything else in ``pygeoapi.crs`` sees pyproj as is.
"""
from __future__ import annotations

import functools
import logging
import types

import pyproj

LOGGER = logging.getLogger(__name__)

CACHE_SIZE = 64  # distinct (source CRS, target CRS, axis order) pairs or CRS codes: a handful per collection


@functools.lru_cache(maxsize=CACHE_SIZE)
def _cached_from_crs(crs_from, crs_to, always_xy=False, **kwargs) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(crs_from, crs_to, always_xy=always_xy, **kwargs)


def cached_from_crs(crs_from, crs_to, always_xy=False, **kwargs) -> pyproj.Transformer:
    """``pyproj.Transformer.from_crs`` remembered per arguments (unhashable arguments are not remembered)."""
    try:
        return _cached_from_crs(crs_from, crs_to, always_xy, **kwargs)
    except TypeError:  # an unhashable argument (e.g. a dict): build it as pygeoapi would have
        return pyproj.Transformer.from_crs(crs_from, crs_to, always_xy=always_xy, **kwargs)


class SharedCRS(pyproj.CRS):
    """A ``pyproj.CRS`` shared by all requests: its WKT and EPSG code are computed once per argument set."""

    def to_wkt(self, *args, **kwargs) -> str:
        return self._remembered("to_wkt", super().to_wkt, args, kwargs)

    def to_epsg(self, *args, **kwargs) -> int | None:
        return self._remembered("to_epsg", super().to_epsg, args, kwargs)

    def _remembered(self, method: str, compute, args: tuple, kwargs: dict):
        # created lazily: copies and unpickled CRSs (pyproj keeps only ``srs`` in its state) start empty
        memo = self.__dict__.setdefault("_memo", {})
        key = (method, args, tuple(sorted(kwargs.items())))
        if key not in memo:
            memo[key] = compute(*args, **kwargs)
        return memo[key]


@functools.lru_cache(maxsize=CACHE_SIZE)
def cached_crs_from_authority(auth_name: str, code: str | int) -> SharedCRS:
    """``pyproj.CRS.from_authority`` remembered per (authority, code), as a :class:`SharedCRS`."""
    return SharedCRS.from_authority(auth_name, code)


class _Transformer:
    """Stands for ``pyproj.Transformer`` in pygeoapi.crs: cached ``from_crs``, the rest as pyproj has it."""

    from_crs = staticmethod(cached_from_crs)

    def __getattr__(self, name):
        return getattr(pyproj.Transformer, name)


class _CRSType(type):
    """Makes :class:`_CRS` answer like ``pyproj.CRS`` for ``isinstance``, calls and every other attribute."""

    def __instancecheck__(cls, instance) -> bool:
        return isinstance(instance, pyproj.CRS)

    def __call__(cls, *args, **kwargs) -> pyproj.CRS:
        return pyproj.CRS(*args, **kwargs)

    def __getattr__(cls, name):
        return getattr(pyproj.CRS, name)


class _CRS(metaclass=_CRSType):
    """Stands for ``pyproj.CRS`` in pygeoapi.crs: cached ``from_authority``, the rest as pyproj has it."""

    from_authority = staticmethod(cached_crs_from_authority)


class _Pyproj(types.ModuleType):
    """pyproj as pygeoapi.crs sees it: ``Transformer`` and ``CRS`` replaced by the cached stand-ins above."""

    def __init__(self):
        super().__init__("pyproj")
        self.Transformer = _Transformer()
        self.CRS = _CRS

    def __getattr__(self, name):
        return getattr(pyproj, name)


def cache_pygeoapi_transformers() -> bool:
    """Install the cached view of pyproj into ``pygeoapi.crs`` (idempotent). Returns whether it was installed."""
    import pygeoapi.crs as pygeoapi_crs

    if isinstance(pygeoapi_crs.pyproj, _Pyproj):
        return False
    if pygeoapi_crs.pyproj is not pyproj:
        LOGGER.warning("pygeoapi.crs.pyproj is not pyproj: transformers and CRSs are not cached")
        return False
    pygeoapi_crs.pyproj = _Pyproj()
    return True
