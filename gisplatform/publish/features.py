"""Our pygeoapi feature provider: the ``api.*`` views served as OGC API - Features, the work done in SQL.

pygeoapi's stock PostgreSQL provider reflects the table, builds every feature in Python (WKB → shapely →
pyproj per feature → dict), counts on every request and pages with OFFSET. This provider keeps pygeoapi's
provider API (``query``/``get``/``get_fields``, the exceptions that become 400/404) and instead:

* **builds the response in PostgreSQL**: one statement selects the page in a subquery (filters, ORDER BY,
  LIMIT/OFFSET) and turns only those rows into GeoJSON with ``json_build_object``, ``ST_AsGeoJSON(geom,
  digits)`` and ``json_agg``; Python receives one text value and parses it once (orjson, ``fastjson.loads``).
  No per-feature Python. Reads run in autocommit (no BEGIN/ROLLBACK round trips).
* **never reprojects in Python**: CRS84 output is the stored, pre-transformed ``geom_wgs84`` column
  (7 decimals, about 1 cm); EPSG:4326 is the same with ``ST_FlipCoordinates`` (latitude first, as OGC API
  Part 2 wants); the storage CRS (EPSG:9215) is ``geom`` as stored (9 decimals: the stored millimetre
  coordinates come out unchanged); any other configured EPSG code is ``ST_Transform(..., <integer srid>)``.
  pygeoapi 0.24 hands the provider a ``CrsTransformSpec`` and reprojects only in providers decorated with
  ``@crs_transform``, which this one is not, so nothing is transformed twice. pygeoapi passes **no** spec
  when the requested CRS is the storage CRS, and a CRS84 spec when the request names no CRS: ``None``
  therefore means "the storage CRS".
* **uses the indexes**: ``bbox`` arrives already transformed to the storage CRS by pygeoapi and becomes
  ``geom && ST_MakeEnvelope(..., 9215) AND ST_Intersects(geom, ...)``; CQL2 filters go through
  :mod:`gisplatform.publish.cql`; property filters and sorting only on public fields; ties broken by ``id``.
* **counts cheaply**: ``numberMatched`` without any filter is the live feature count the ETL run recorded
  (``api.catalogue.features``, read in the same statement). With a filter it is, in order: inferred from a
  partly filled page (``offset + numberReturned``), taken from a per-process cache keyed on the layer's last
  successful run (data change only through runs) and the exact filter, or counted in a second statement
  under ``SET LOCAL statement_timeout = '300ms'`` when the planner expects at most 200,000 rows; otherwise,
  or on timeout, numberMatched is left out (pygeoapi then adds ``next`` when the page is full) and the cache
  remembers that this filter is not worth counting under this run, so the next page does not try again. ``resulttype=hits`` counts without the short timeout; ``count: false``
  in the provider definition skips filtered counts (never the free ones).
* **pages by keyset**: with the default order (by ``id``), the provider writes its own ``next`` link
  carrying ``offset=<offset+limit>`` *and* ``after=<last id>``; a request with ``after`` reads ``WHERE id >
  after ORDER BY id LIMIT n`` instead of skipping ``offset`` rows, so the millionth page costs what the first
  does. ``offset`` in such a link only labels the page (it is what pygeoapi and the HTML page show).
* **versions**: with ``datetime`` the query reads ``api.<layer>_versions``: an instant gives each feature as
  it stood then (``version_start <= t < version_end``), an interval every version valid at some time in it
  (open ends ``..``). Those features carry ``version`` and a JSON-FG style ``time.interval`` beside
  ``properties``. A bare date is 00:00 UTC (the end of that day as an interval's end).

How the next link is built. pygeoapi lets a provider return its own ``rel=next`` link (and then adds no
``next``/``prev`` of its own) but gives the provider neither the request nor the server URL, and builds its
own links from the request's query string: a provider cannot write a correct absolute link from what it is
passed (the ``filter`` text, the original ``bbox``/``bbox-crs`` and ``f`` are gone). The provider therefore
reads ``api``, ``request`` and ``dataset`` from pygeoapi's ``get_collection_items`` frame on the call stack
(checked for pygeoapi 0.24; the one framework-independent place they exist) and writes the link exactly as
pygeoapi writes its own (``{collections}/{dataset}/items?f=..&offset=..&after=..&<every other parameter>``),
plus a plain ``offset`` ``prev`` link. If that frame is not found while pygeoapi is calling, ``after`` is
ignored and paging falls back to pygeoapi's OFFSET links (still correct: our links carry the offset too), so
a future pygeoapi can only make paging slower, never wrong. HTML pages (for people, small pages) keep
pygeoapi's offset links, and so do POSTed CQL2 JSON queries (no link can carry the body; pygeoapi's own
links drop the filter too). ``after`` needs pygeoapi's ``include_extra_query_parameters: true`` (set by
:func:`feature_provider_definition`); with it pygeoapi passes every unknown query parameter as a property
filter, so names that are not public fields are ignored there, as pygeoapi ignores unknown parameters
(personal and non-existent names alike, so nothing tells them apart). Remaining limitation: on the last page
of a keyset walk the provider writes no ``next``, so pygeoapi adds its own ``prev`` link, which still carries
that page's ``after`` and shows the same page again; forward paging (GDAL, QGIS, OWSLib) is unaffected.

Errors: every bad input is refused before any SQL with ``ProviderInvalidQueryError`` (HTTP 400) and a message
for a person; unknown feature ids are ``ProviderItemNotFoundError`` (404); all values are bound parameters
and every identifier comes from the layer definition. A name that is not a public field is "unknown",
whether or not the layer has a personal field of that name. ``q`` (free text) is ignored, as by pygeoapi's
own SQL provider.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from functools import cache, lru_cache
from http import HTTPStatus
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import psycopg2
import pyproj
import sqlalchemy as sa
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderConnectionError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
    ProviderQueryError,
)

from gisplatform.layers import Field, Layer, LayerDefinitionError, get_layer
from gisplatform.publish import cql, fastjson
from gisplatform.publish.connection import api_engine
from gisplatform.publish.views import API_SCHEMA

LOGGER = logging.getLogger(__name__)

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CRS84H = "http://www.opengis.net/def/crs/OGC/1.3/CRS84h"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"
OUTPUT_EPSG = (4326, None, 3857)  # None: the layer's storage CRS, in this position of the crs list
CURSOR_PARAMETER = "after"
COUNT_TIMEOUT = "300ms"
COUNT_ESTIMATE_LIMIT = 200_000  # rows the planner expects: above it, counting costs more than the page itself
UNCOUNTED = -1  # in the count cache: counting this filter under this run was too dear
COUNT_CACHE_SIZE = 1024
DEGREE_DIGITS = 7  # ~1 cm
METRE_DIGITS = 3  # 1 mm
STORAGE_DIGITS = 9  # more than the stored millimetres: the stored coordinates come out unchanged
MAX_OFFSET = 2**62
_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
_JSON_TYPES = {"text": "string", "integer": "integer", "number": "number", "boolean": "boolean",
               "date": "string"}


# ------------------------------------------------------------------------------------------ configuration
def feature_provider_definition(layer: Layer) -> dict:
    """The pygeoapi provider entry of a layer's collection (all that this provider's config needs is here)."""
    definition = {
        "type": "feature",
        "name": f"{__name__}.FeatureProvider",
        "data": {"layer": layer.name},
        "id_field": "id",
        "storage_crs": EPSG_URI.format(layer.storage_srid),
        "crs": [CRS84, *(EPSG_URI.format(code or layer.storage_srid) for code in OUTPUT_EPSG)],
        # pygeoapi passes the `after` keyset cursor to the provider only with this switch (see the module doc)
        "include_extra_query_parameters": True,
    }
    title_field = (layer.publish or {}).get("title_field")
    if title_field:
        if title_field not in {f.name for f in layer.public_fields}:
            raise LayerDefinitionError(
                f"{layer.path}: publish.title_field {title_field!r} must name a public field")
        definition["title_field"] = title_field
    return definition


@cache
def _field_schemas(layer_name: str) -> dict[str, dict]:
    """JSON-schema description of the public fields (from the layer definition, never from the database)."""
    return {f.name: field_schema(f) for f in get_layer(layer_name).public_fields}


@lru_cache(maxsize=256)
def _public_fields(layer_name: str, properties: tuple[str, ...]) -> MappingProxyType:
    """The public fields a provider serves (all, or those of its ``properties`` list), read-only: shared by the
    providers of every request."""
    fields = {f.name: f for f in get_layer(layer_name).public_fields if not properties or f.name in properties}
    for name in fields:
        if not _IDENT.match(name):  # layers.py already enforces it; identifiers go into SQL
            raise ProviderConnectionError(f"bad field name {name!r}")
    return MappingProxyType(fields)


def copy_field_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of one field schema that shares nothing mutable (they hold scalars and lists of scalars only)."""
    return {key: list(value) if isinstance(value, list) else value for key, value in schema.items()}


def field_schema(f: Field) -> dict[str, Any]:
    """JSON-schema description of one field: type, bilingual title and description, domain, unit."""
    schema: dict[str, Any] = {"type": _JSON_TYPES[f.type], "title": f.title.vi, "x-title-en": f.title.en}
    if f.type == "date":
        schema["format"] = "date"
    if f.description:
        schema["description"] = f.description.vi
        schema["x-description-en"] = f.description.en
    if f.domain:
        schema["enum"] = list(f.domain)
    if f.unit:
        schema["x-ogc-unit"] = f.unit
    return schema


# ------------------------------------------------------------------------------------------ the provider
class ProviderQueryTimeoutError(ProviderQueryError):
    """The database gave up on a query (statement_timeout): too expensive, not malformed."""

    http_status_code = HTTPStatus.SERVICE_UNAVAILABLE
    default_msg = "the query took too long"


@dataclass(frozen=True)
class _When:
    """A parsed ``datetime`` parameter: an instant (start is end) or an interval (None = open)."""

    start: datetime | None
    end: datetime | None
    instant: bool


@dataclass
class _Context:
    """What pygeoapi's get_collection_items knows and the provider is not given: for writing links."""

    api: Any
    request: Any
    dataset: str


class FeatureProvider(BaseProvider):
    """pygeoapi feature provider over ``api.<layer>`` / ``api.<layer>_versions`` (see the module doc)."""

    def __init__(self, provider_def: dict):
        super().__init__(provider_def)  # pygeoapi creates one provider per request: nothing slow here
        data = self.data if isinstance(self.data, dict) else {}
        try:
            self.layer = get_layer(data.get("layer") or "")
        except LayerDefinitionError as exc:
            raise ProviderConnectionError(f"provider data must be {{layer: <name>}}: {exc}") from exc
        self.storage_srid = self.layer.storage_srid
        if self.storage_crs.to_epsg() != self.storage_srid:
            raise ProviderConnectionError(
                f"storage_crs of {self.layer.name} must be EPSG:{self.storage_srid} (the api views' geom)")
        self.id_field = "id"
        self.field_defs = _public_fields(self.layer.name, tuple(self.properties or ()))

    def get_fields(self) -> dict:
        schemas = _field_schemas(self.layer.name)
        return {name: copy_field_schema(schemas[name]) for name in self.field_defs}  # pygeoapi edits what it gets

    @property
    def _fields(self) -> dict:
        """pygeoapi's ``p.fields`` / ``p._fields``: this provider's own copy of the schemas, made on first use.

        pygeoapi makes a provider per request and reads the fields only for queryables, the schema, the OpenAPI
        document and some parameter checks (one item, a CQL2 or bbox query never look), so the copy waits until
        it is asked for; it is still per provider because pygeoapi edits what it gets (the schema endpoint pops
        ``format`` and sets ``x-ogc-role``).
        """
        if self._field_copy is None:
            self._field_copy = self.get_fields()
        return self._field_copy

    @_fields.setter
    def _fields(self, value: dict) -> None:
        self._field_copy = value or None  # BaseProvider.__init__ sets {}: "not made yet"

    # -------------------------------------------------------------------------------------- query
    def query(self, offset=0, limit=10, resulttype="results", bbox=[], datetime_=None, properties=[],
              sortby=[], select_properties=[], skip_geometry=False, q=None, filterq=None,
              crs_transform_spec=None, **kwargs):
        context, from_pygeoapi = _pygeoapi_context()
        offset, limit = _non_negative(offset, "offset"), _non_negative(limit, "limit")
        if limit < 1:
            raise _bad("limit must be at least 1")
        if resulttype not in ("results", "hits"):
            raise _bad(f"resulttype must be 'results' or 'hits', not {resulttype!r}")
        hits = resulttype == "hits"
        when = _parse_datetime(datetime_)
        versions = when is not None
        source = f'{API_SCHEMA}."{self.layer.name}{"_versions" if versions else ""}"'
        start_column = '"version_start"' if versions else '"updated"'

        where: list[str] = []
        params: dict[str, Any] = {}
        if when is not None:
            where += _version_conditions(when, params)
        cursor_value, filters = self._split_properties(properties)
        for i, (name, value) in enumerate(filters):
            params[f"pf_{i}"] = self._typed_value(name, value)
            where.append(f'"{name}" = :pf_{i}')
        where += self._bbox_condition(bbox, params)
        if filterq is not None:
            where.append(self._cql_condition(filterq, params, start_column, kwargs, context))

        keyset_order = not sortby and (when is None or when.instant)  # ids are unique in the page order
        order = self._order_by(sortby, versions and not keyset_order)
        selected = self._select(select_properties)
        cursor_links = (keyset_order and context is not None and not hits
                        and (context.request.format or "json") != "html"
                        and not getattr(context.request, "data", None))  # a POSTed filter is not in any link
        after = None
        if cursor_value is not None:
            after = _integer(cursor_value, CURSOR_PARAMETER)
            if not keyset_order:
                raise _bad(f"'{CURSOR_PARAMETER}' (the paging cursor) works with the default order by id and "
                           "without a datetime interval; use offset instead")
            if from_pygeoapi and not cursor_links:
                after = None  # pygeoapi will write offset links: keep them right by paging with offset

        filter_sql = " AND ".join(where) or "TRUE"
        page_where = filter_sql + (' AND "id" > :p_after' if after is not None else "")
        if after is not None:
            params["p_after"] = after
        params["p_layer"] = self.layer.name

        geometry = None if skip_geometry else _geometry_sql(
            getattr(crs_transform_spec, "target_crs_uri", None), self.storage_srid,
            bool(getattr(crs_transform_spec, "always_xy", False)))
        run_sql = (f"(SELECT json_build_object('id', run_id, 'at', finished_at, 'features', features) "
                   f"FROM {API_SCHEMA}.catalogue WHERE layer = :p_layer)")
        if hits:
            sql = f"SELECT json_build_object('features', '[]'::json, 'run', {run_sql})::text"
        else:
            columns = _unique(['"id"', *(f'"{n}"' for n in selected), *(c for c, _ in order),
                               *(['"version"', '"version_start"', '"version_end"'] if versions else []),
                               *([geometry[0]] if geometry else [])])
            order_sql = ", ".join(f"{c} {d}" for c, d in order)
            params["p_limit"] = limit
            page = (f"SELECT {', '.join(columns)} FROM {source} WHERE {page_where} "
                    f"ORDER BY {order_sql} LIMIT :p_limit")
            if after is None:
                page += " OFFSET :p_offset"
                params["p_offset"] = offset
            feature = _feature_sql(selected, geometry[1] if geometry else None, versions)
            sql = (f"WITH page AS ({page}) SELECT json_build_object("
                   f"'features', (SELECT coalesce(json_agg({feature} ORDER BY {order_sql}), '[]'::json) "
                   "FROM page), "
                   f"'run', {run_sql})::text")

        with self._connection() as connection:
            result = fastjson.loads(self._scalar(connection, sql, params))
            features = result["features"]
            run = result["run"] or {}
            matched = None
            if not where and run.get("features") is not None:
                matched = run["features"]  # counted by the ETL run, in the same transaction as the data
            elif not hits and after is None and len(features) < limit and (features or offset == 0):
                matched = offset + len(features)  # the page ran out: nothing to count
            else:
                key = _count_key(self.layer.name, (run.get("id"), run.get("at")), source, filter_sql, params)
                matched = _COUNTS.get(key)
                if matched == UNCOUNTED and not hits:
                    matched = None  # known to be too dear to count under this run: leave it out at once
                elif (matched is None or matched == UNCOUNTED) and (hits or self.count or not where):
                    count_params = {k: v for k, v in params.items() if not k.startswith("p_")}
                    matched = self._count(connection, source, filter_sql, count_params, quick=not hits)
                    _COUNTS.put(key, UNCOUNTED if matched is None else matched)

        response: dict[str, Any] = {"type": "FeatureCollection", "features": features}
        if matched is not None:
            response["numberMatched"] = matched
        response["numberReturned"] = len(features)
        links = []
        if cursor_links and features and len(features) == limit:
            links += _cursor_links(context, offset, limit, features[-1]["id"])
        if (from_pygeoapi and after is not None and not links and matched is not None
                and matched > offset + limit):
            # this page's offset does not match its cursor (a hand-made URL): pygeoapi would add a `next`
            # link from numberMatched that repeats this cursor; leave the count out instead
            del response["numberMatched"]
        if links:
            response["links"] = links
        return response

    # -------------------------------------------------------------------------------------- get
    def get(self, identifier, crs_transform_spec=None, **kwargs):
        fid = _feature_id(identifier)
        if fid is None:
            raise ProviderItemNotFoundError(user_msg=f"no feature {_show(identifier)} in {self.layer.name}")
        source = f'{API_SCHEMA}."{self.layer.name}"'
        geometry = _geometry_sql(getattr(crs_transform_spec, "target_crs_uri", None), self.storage_srid,
                                 bool(getattr(crs_transform_spec, "always_xy", False)))
        feature = _feature_sql(list(self.field_defs), geometry[1], False)
        sql = (f"SELECT json_build_object('feature', {feature}, "
               f"'prev', (SELECT max(\"id\") FROM {source} WHERE \"id\" < $1), "
               f"'next', (SELECT min(\"id\") FROM {source} WHERE \"id\" > $1))::text "
               f"FROM {source} WHERE \"id\" = $1")
        with self._connection() as connection:
            text = self._prepared_scalar(connection, sql, "bigint", fid)
        if text is None:
            raise ProviderItemNotFoundError(user_msg=f"no feature {fid} in {self.layer.name}")
        result = fastjson.loads(text)
        feature = result["feature"]
        for rel in ("prev", "next"):  # pygeoapi turns these into the HTML page's prev/next item links
            if result[rel] is not None:
                feature[rel] = result[rel]
        return feature

    # -------------------------------------------------------------------------------------- pieces
    def _unknown(self, name: Any) -> ProviderInvalidQueryError:
        return _bad(f"unknown property {_show(name)}; queryable properties: {', '.join(self.field_defs)}")

    def _split_properties(self, properties) -> tuple[Any, list[tuple[str, Any]]]:
        """The `after` cursor and the equality filters on public fields.

        With ``include_extra_query_parameters`` pygeoapi passes every unknown query parameter here as well:
        those are ignored, as pygeoapi ignores unknown parameters (a personal field's name is as unknown).
        Without the switch only real filters arrive, so an unknown name is the caller's mistake: 400.
        """
        cursor_value, filters = None, []
        for item in properties or []:
            try:
                name, value = item
            except (TypeError, ValueError):
                raise _bad("property filters must be (name, value) pairs") from None
            if name == CURSOR_PARAMETER and self.include_extra_query_parameters:
                cursor_value = value
            elif name in self.field_defs:
                filters.append((name, value))
            elif not self.include_extra_query_parameters:
                raise self._unknown(name)
        return cursor_value, filters

    def _typed_value(self, name: str, value: Any) -> Any:
        field = self.field_defs[name]
        try:
            return cql.coerce(value, field.type, name)
        except ValueError as exc:
            raise _bad(str(exc)) from None

    def _bbox_condition(self, bbox, params: dict) -> list[str]:
        if not bbox:
            return []
        try:
            values = [float(v) for v in bbox]
        except (TypeError, ValueError):
            raise _bad("bbox must be numbers: minx,miny,maxx,maxy") from None
        if len(values) == 6:
            values = [values[0], values[1], values[3], values[4]]
        if len(values) != 4:
            raise _bad("bbox must have 4 numbers (minx,miny,maxx,maxy) or 6 (with heights)")
        if not all(v == v and abs(v) != float("inf") for v in values):
            raise _bad("bbox could not be converted to the layer's coordinate system: check bbox-crs and the "
                       "axis order (EPSG:4326 is latitude first; CRS84, the default, is longitude first)")
        x1, y1, x2, y2 = values
        if x1 > x2 or y1 > y2:
            raise _bad("bbox must be minx,miny,maxx,maxy with min <= max")
        params.update(b_x1=x1, b_y1=y1, b_x2=x2, b_y2=y2)
        envelope = f"ST_MakeEnvelope(:b_x1, :b_y1, :b_x2, :b_y2, {self.storage_srid})"
        return [f'"geom" && {envelope}', f'ST_Intersects("geom", {envelope})']

    def _cql_condition(self, filterq, params: dict, start_column: str, kwargs: dict,
                       context: _Context | None) -> str:
        envelope_crs = kwargs.get("filter_crs")
        if envelope_crs is None and context is not None:
            envelope_crs = context.request.params.get("filter-crs")
        try:
            sql, cql_params = cql.to_sql(filterq, self.field_defs, "geom", self.storage_srid,
                                         temporal_columns={"updated": start_column},
                                         envelope_crs=envelope_crs or cql.CRS84)
        except ValueError as exc:
            raise _bad(f"filter: {exc}") from None
        params.update(cql_params)
        return sql

    def _order_by(self, sortby, with_version: bool) -> list[tuple[str, str]]:
        order = []
        for item in sortby or []:
            if not isinstance(item, dict):
                raise _bad("sortby must be a list of {property, order}")
            name = item.get("property")
            if name not in self.field_defs:
                raise self._unknown(name)
            direction = {"+": "ASC", "A": "ASC", "-": "DESC", "D": "DESC"}.get(item.get("order", "+"))
            if direction is None:
                raise _bad("sort order must be + (ascending) or - (descending)")
            order.append((f'"{name}"', direction))
        order.append(('"id"', "ASC"))
        if with_version:
            order.append(('"version"', "ASC"))
        return order

    def _select(self, select_properties) -> list[str]:
        if not select_properties:
            return list(self.field_defs)
        for name in select_properties:
            if name not in self.field_defs:
                raise self._unknown(name)
        return [name for name in self.field_defs if name in set(select_properties)]

    # -------------------------------------------------------------------------------------- database
    @staticmethod
    @contextmanager
    def _connection():
        """A pooled connection in autocommit mode: no BEGIN and ROLLBACK round trips around a read.

        psycopg2's own ``autocommit`` switch is flipped and restored (SQLAlchemy's AUTOCOMMIT isolation level
        would send ``SET default_transaction_isolation`` on the way in and out: two more round trips).
        """
        try:
            connection = api_engine().connect()
        except sa.exc.DBAPIError as exc:
            LOGGER.exception("cannot connect to the API database")
            raise ProviderConnectionError(user_msg="the database is not reachable") from exc
        with connection:
            dbapi = connection.connection.dbapi_connection
            dbapi.autocommit = True
            try:
                yield connection
            finally:
                try:
                    dbapi.autocommit = False  # back to what the pool's other users expect
                except Exception:  # noqa: BLE001 - a broken connection is discarded by the pool anyway
                    connection.invalidate()

    def _scalar(self, connection, sql: str, params: dict) -> Any:
        try:
            return connection.execute(sa.text(sql), params).scalar()
        except sa.exc.DBAPIError as exc:
            raise self._database_error(exc) from exc

    def _prepared_scalar(self, connection, sql: str, argument_type: str, argument: Any) -> Any:
        """Run ``sql`` (one ``$1`` argument) as a statement prepared once per database connection.

        For one item by id the database spent more time parsing and planning (a view of many columns and two
        sub-queries) than running the three index lookups; a prepared statement is planned once per connection
        and its generic plan reused. The statement lives in the database session, which the pool keeps across
        requests (it is never reset with DISCARD ALL; a pooler in transaction mode would need this off)."""
        name = "gp_" + hashlib.blake2b(f"{argument_type}:{sql}".encode(), digest_size=8).hexdigest()
        prepared = connection.connection.info.setdefault("gisplatform_prepared", set())
        try:
            with connection.connection.dbapi_connection.cursor() as cursor:
                if name not in prepared:
                    cursor.execute(f"PREPARE {name} ({argument_type}) AS {sql}")
                    prepared.add(name)
                cursor.execute(f"EXECUTE {name} (%s)", (argument,))
                row = cursor.fetchone()
        except psycopg2.Error as exc:
            raise self._database_error(sa.exc.DBAPIError.instance(sql, (argument,), exc, psycopg2.Error)) from exc
        return row[0] if row else None

    def _count(self, connection, source: str, filter_sql: str, params: dict, quick: bool) -> int | None:
        """count(*) of the filter; with quick, only when the planner expects at most COUNT_ESTIMATE_LIMIT rows
        and under a 300 ms budget (None when either says no)."""
        sql = f"SELECT count(*) FROM {source} WHERE {filter_sql}"
        if quick:
            estimate = self._estimated_rows(connection, source, filter_sql, params)
            if estimate > COUNT_ESTIMATE_LIMIT:
                LOGGER.debug("numberMatched of %s left out: about %s rows to count", self.layer.name, estimate)
                return None
            # SET LOCAL in the same query string: one round trip, ends with the implicit transaction
            sql = f"SET LOCAL statement_timeout = '{COUNT_TIMEOUT}'; {sql}"
        try:
            return int(connection.execute(sa.text(sql), params).scalar())
        except sa.exc.DBAPIError as exc:
            if quick and _pgcode(exc) == "57014":
                LOGGER.info("numberMatched of %s left out: counting took over %s", self.layer.name,
                            COUNT_TIMEOUT)
                return None
            raise self._database_error(exc) from exc

    def _estimated_rows(self, connection, source: str, filter_sql: str, params: dict) -> float:
        """The planner's row estimate for the filter (EXPLAIN only plans: about a millisecond)."""
        try:
            plan = connection.execute(sa.text(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {source} WHERE {filter_sql}"),
                                      params).scalar()
        except sa.exc.DBAPIError as exc:
            raise self._database_error(exc) from exc
        plan = json.loads(plan) if isinstance(plan, str) else plan
        return float(plan[0]["Plan"]["Plan Rows"])

    def _database_error(self, exc: sa.exc.DBAPIError) -> Exception:
        code = _pgcode(exc) or ""
        if code == "57014":
            return ProviderQueryTimeoutError(user_msg=(
                "the query took too long; narrow it down (bbox, filter, a smaller limit) and try again"))
        if code.startswith("22") or code == "XX000":  # data exceptions, GEOS errors on odd geometries
            LOGGER.warning("query on %s refused by the database: %s", self.layer.name, exc.orig)
            return _bad("the database could not evaluate this query with these values (check the filter's "
                        "values and geometries)")
        if isinstance(exc, sa.exc.OperationalError):
            LOGGER.exception("API database error")
            return ProviderConnectionError(user_msg="the database is not reachable")
        LOGGER.exception("API query failed")
        return ProviderQueryError(user_msg="query error")

    def __repr__(self):
        return f"<FeatureProvider> {self.layer.name}"


# ------------------------------------------------------------------------------------------ SQL pieces
def _feature_sql(properties: list[str], geometry_json: str | None, versions: bool) -> str:
    """``json_build_object`` of one GeoJSON feature from the columns of the current row."""
    pairs = [f"'{name}', \"{name}\"" for name in properties]
    if len(pairs) <= 50:  # json_build_object takes at most 100 arguments
        props = f"json_build_object({', '.join(pairs)})"
    else:  # rare: merged as jsonb (key order then follows jsonb's)
        chunks = [f"json_build_object({', '.join(pairs[i:i + 50])})::jsonb" for i in range(0, len(pairs), 50)]
        props = "(" + " || ".join(chunks) + ")::json"
    parts = ["'type', 'Feature'", "'id', \"id\"", f"'geometry', {geometry_json or 'NULL::json'}",
             f"'properties', {props}"]
    if versions:
        utc = "YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\""
        parts += ["'version', \"version\"",
                  "'time', json_build_object('interval', json_build_array("
                  f"to_char(\"version_start\" AT TIME ZONE 'UTC', '{utc}'), "
                  f"coalesce(to_char(\"version_end\" AT TIME ZONE 'UTC', '{utc}'), '..')))"]
    return f"json_build_object({', '.join(parts)})"


def _geometry_sql(target_uri: str | None, storage_srid: int, always_xy: bool) -> tuple[str, str]:
    """(column to select, ST_AsGeoJSON(...) expression over it) for the requested output CRS."""
    column, srid, flip, digits = _geometry_output(target_uri, storage_srid, always_xy)
    expression = f'"{column}"'
    if srid is not None:
        expression = f"ST_Transform({expression}, {int(srid)})"
    if flip:
        expression = f"ST_FlipCoordinates({expression})"
    return f'"{column}"', f"ST_AsGeoJSON({expression}, {digits}, 0)::json"  # options 0: no "crs" member


@lru_cache(maxsize=64)
def _geometry_output(target_uri: str | None, storage_srid: int,
                     always_xy: bool) -> tuple[str, int | None, bool, int]:
    """(column, srid to ST_Transform to or None, flip axes, decimals) for an output CRS URI.

    ``None`` is what pygeoapi passes when the requested CRS is the storage CRS (it passes CRS84 when the
    request names none).
    """
    if target_uri is None:
        return "geom", None, False, STORAGE_DIGITS
    if target_uri in (CRS84, CRS84H):
        return "geom_wgs84", None, False, DEGREE_DIGITS
    try:
        from pygeoapi.crs import get_crs

        crs = get_crs(target_uri)
    except Exception:  # noqa: BLE001 - pygeoapi validated the URI against the configured list already
        raise _bad(f"unknown output CRS {_show(target_uri)}") from None
    epsg = crs.to_epsg()
    if epsg is None:
        if crs.equals(pyproj.CRS("OGC:CRS84")):
            return "geom_wgs84", None, False, DEGREE_DIGITS
        raise _bad(f"output CRS {_show(target_uri)} has no EPSG code")
    if epsg == storage_srid:
        return "geom", None, False, STORAGE_DIGITS
    flip = not always_xy and bool(crs.axis_info) and crs.axis_info[0].direction.lower() in ("north", "south")
    digits = DEGREE_DIGITS if crs.is_geographic else METRE_DIGITS
    if epsg == 4326:
        return "geom_wgs84", None, flip, digits
    storage = pyproj.CRS.from_epsg(storage_srid)
    same_datum = crs.datum is not None and storage.datum is not None and crs.datum.name == storage.datum.name
    return ("geom" if same_datum else "geom_wgs84"), epsg, flip, digits


def _version_conditions(when: _When, params: dict) -> list[str]:
    if when.instant:
        params["t_at"] = when.start
        return ['"version_start" <= :t_at', '("version_end" IS NULL OR "version_end" > :t_at)']
    conditions = []
    if when.end is not None:
        params["t_end"] = when.end
        conditions.append('"version_start" <= :t_end')
    if when.start is not None:
        params["t_start"] = when.start
        conditions.append('("version_end" IS NULL OR "version_end" > :t_start)')
    return conditions


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ------------------------------------------------------------------------------------------ request values
def _bad(message: str) -> ProviderInvalidQueryError:
    return ProviderInvalidQueryError(user_msg=message)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _non_negative(value: Any, name: str) -> int:
    number = _integer(value, name)
    if number < 0:
        raise _bad(f"{name} must be zero or more")
    return number


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise _bad(f"{name} must be an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,18}\s*", value):
        number = int(value)
    else:
        raise _bad(f"{name} must be an integer, got {_show(value)}")
    if abs(number) > MAX_OFFSET:
        raise _bad(f"{name} is out of range")
    return number


def _feature_id(identifier: Any) -> int | None:
    if isinstance(identifier, bool):
        return None
    if isinstance(identifier, int):
        number = identifier
    elif isinstance(identifier, str) and re.fullmatch(r"[+-]?\d{1,18}", identifier.strip()):
        number = int(identifier)
    else:
        return None
    return number if -2**63 <= number < 2**63 else None


def _parse_datetime(value: Any) -> _When | None:
    """The ``datetime`` parameter: RFC 3339 date-time or date, or an interval ``start/end`` (``..``: open)."""
    if value is None or value == "":
        return None
    problem = (f"datetime {_show(value)} is not valid: give an RFC 3339 date-time (2024-05-01T08:00:00Z), "
               "a date (2024-05-01) or an interval start/end with '..' for an open end (2024-01-01/..)")
    if not isinstance(value, str):
        raise _bad(problem)
    text = value.strip()
    try:
        if "/" in text:
            parts = text.split("/")
            if len(parts) != 2:
                raise ValueError
            start = None if parts[0] in ("", "..") else _instant(parts[0], end_of_day=False)
            end = None if parts[1] in ("", "..") else _instant(parts[1], end_of_day=True)
            if start is not None and end is not None and start > end:
                raise _bad(f"datetime interval {_show(value)} ends before it starts")
            return _When(start, end, False)
        if text == "..":
            raise ValueError
        at = _instant(text, end_of_day=False)
        return _When(at, at, True)
    except ValueError:
        raise _bad(problem) from None


def _instant(text: str, end_of_day: bool) -> datetime:
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):  # a whole day: from its start, or to its end (interval ends)
        day = date.fromisoformat(text)
        return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=timezone.utc)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?", text):
        raise ValueError(text)
    moment = datetime.fromisoformat(text.upper())
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _pgcode(exc: sa.exc.DBAPIError) -> str | None:
    return getattr(exc.orig, "pgcode", None)


# ------------------------------------------------------------------------------------------ paging links
def _pygeoapi_context() -> tuple[_Context | None, bool]:
    """(api, request, dataset) of the pygeoapi request being answered, and whether pygeoapi is the caller.

    pygeoapi 0.24 gives providers no request; its ``get_collection_items(api, request, dataset)`` is on the
    call stack whatever the web framework (Flask, Starlette, Django), so its arguments are read from there.
    """
    frame = sys._getframe(1)
    from_pygeoapi = False
    try:
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            if module.startswith("pygeoapi."):
                from_pygeoapi = True
                if module == "pygeoapi.api.itemtypes" and frame.f_code.co_name == "get_collection_items":
                    local = frame.f_locals
                    api, request, dataset = local.get("api"), local.get("request"), local.get("dataset")
                    if (callable(getattr(api, "get_collections_url", None)) and isinstance(dataset, str)
                            and hasattr(getattr(request, "params", None), "items")
                            and hasattr(request, "format")):
                        return _Context(api, request, dataset), True
                    return None, True
            frame = frame.f_back
        return None, from_pygeoapi
    finally:
        del frame


def _cursor_links(context: _Context, offset: int, limit: int, last_id: Any) -> list[dict]:
    """``next`` (keyset) and ``prev`` links written the way pygeoapi writes its own paging links."""
    request = context.request
    uri = f"{context.api.get_collections_url()}/{context.dataset}/items"
    others = "".join(f"&{quote(str(k), safe='')}={quote(str(v), safe=',')}" for k, v in request.params.items()
                     if k not in ("f", "offset", CURSOR_PARAMETER))
    head = f"{uri}?f={request.format}&" if request.format is not None else f"{uri}?"
    links = [{"type": "application/geo+json", "rel": "next", "title": "Items (next)",
              "href": f"{head}offset={offset + limit}&{CURSOR_PARAMETER}={int(last_id)}{others}"}]
    if offset > 0:
        links.append({"type": "application/geo+json", "rel": "prev", "title": "Items (prev)",
                      "href": f"{head}offset={max(0, offset - limit)}{others}"})
    return links


# ------------------------------------------------------------------------------------------ count cache
class _CountCache:
    """count(*) results per process, keyed on (layer, last successful run, source, filter, values)."""

    def __init__(self, size: int):
        self.size = size
        self.items: OrderedDict[tuple, int] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple | None) -> int | None:
        if key is None:
            return None
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key: tuple | None, value: int) -> None:
        if key is None:
            return
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


_COUNTS = _CountCache(COUNT_CACHE_SIZE)


def _count_key(layer: str, run_id: Any, source: str, filter_sql: str, params: dict) -> tuple | None:
    values = tuple(sorted((k, v) for k, v in params.items() if not k.startswith("p_")))
    key = (layer, run_id, source, filter_sql, values)
    try:
        hash(key)
    except TypeError:
        return None
    return key
