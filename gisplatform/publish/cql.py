"""CQL2 filters (a pygeofilter AST) → a parameterised PostgreSQL/PostGIS condition.

pygeoapi parses ``filter=`` (CQL2 text) and POSTed CQL2 JSON with pygeofilter and hands the provider the AST;
:func:`to_sql` turns that AST into a SQL fragment with bound parameters (``:cql_0``, ``:cql_1``, ...) for
SQLAlchemy's ``text()``. Nothing from the request is ever written into the SQL text: property names are
checked against the layer's public fields and become quoted identifiers from the layer definition, and every
value is a bound parameter typed after the field it is compared with.

What is translated
  comparisons  = <> < <= > >= between a property and a value (either side), or between two properties of
               compatible types; BETWEEN, NOT BETWEEN; IN, NOT IN; IS [NOT] NULL
  LIKE         case-sensitive, CQL2 wildcards ``%`` and ``_``, ``\\`` escapes (the same as PostgreSQL);
               CASEI(property) and CASEI('text') on either side (pygeofilter gives them as ``lower``)
  logic        AND, OR, NOT, INCLUDE/EXCLUDE
  spatial      S_INTERSECTS S_WITHIN S_CONTAINS S_DISJOINT S_EQUALS S_TOUCHES S_CROSSES S_OVERLAPS between
               the geometry (``geometry`` or the real column name) and a literal: any WKT/GeoJSON geometry,
               ``BBOX(x1, y1, x2, y2)`` (3-D boxes too), ``ENVELOPE(...)``, and the legacy predicate
               ``BBOX(geometry, x1, y1, x2, y2[, crs])``
  temporal     T_BEFORE T_AFTER T_DURING T_INTERSECTS T_EQUALS T_MEETS T_METBY T_OVERLAPPEDBY T_BEGINS
               T_BEGUNBY T_ENDS T_ENDEDBY T_CONTAINS (pygeofilter's infix form ``a T_AFTER b``) on date
               fields and on the version time (``updated``), against DATE, TIMESTAMP and INTERVAL literals
               (open ends ``..`` in CQL2 JSON); a date compared with a timestamp is taken at 00:00 UTC

Coordinates. pygeoapi's ``modify_pygeofilter`` reprojects geometry literals from ``filter-crs`` into the
storage CRS and marks them with it; it does NOT touch bounding boxes (pygeofilter's ``Envelope``, the ``BBOX``
literal, which pygeofilter 0.4 parses as a function call, and the legacy ``BBOX`` predicate). Those are taken
to be in ``envelope_crs`` (the request's ``filter-crs``; CRS84 by default) and reprojected here with the same
pyproj operation pygeoapi uses (EPSG:6960 for VN-2000 ↔ WGS 84), edges densified so the box keeps its shape.

Not translated (``ValueError`` with a message for the user, which the provider answers with 400): arithmetic,
functions other than CASEI, ACCENTI, arrays, RELATE, DWITHIN/BEYOND, durations, literal-only comparisons.

Known limitations from pygeofilter 0.4: it parses ``T_INTERSECTS`` and ``T_OVERLAPS`` into the same node,
evaluated here as T_INTERSECTS (the one clients use), so a T_OVERLAPS filter gets T_INTERSECTS semantics. Its
CQL2 text grammar also lacks T_DISJOINT, T_STARTS/T_FINISHES and the CQL2 1.0 function-call form
T_AFTER(a, b), which is why ``temporal-functions`` is not declared below.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any, Mapping

import numpy as np
import pyproj
import shapely
import shapely.geometry
import shapely.validation
from pygeofilter import ast, values

from gisplatform.layers import Field

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

_SPEC = "http://www.opengis.net/spec"
CONFORMANCE_CLASSES: list[str] = [
    # OGC API - Features - Part 3: the filter, filter-lang and filter-crs parameters (pygeoapi) and filtering
    # the items of a collection (this translator, through gisplatform.publish.features).
    f"{_SPEC}/ogcapi-features-3/1.0/conf/filter",
    f"{_SPEC}/ogcapi-features-3/1.0/conf/features-filter",
    # CQL2 text in ``filter=``. (CQL2 JSON ASTs are translated too, but pygeoapi 0.24 parses them only from a
    # POST body, never from ``filter-lang=cql2-json`` in a GET, so the class is not claimed.)
    f"{_SPEC}/cql2/1.0/conf/cql2-text",
    f"{_SPEC}/cql2/1.0/conf/basic-cql2",
    f"{_SPEC}/cql2/1.0/conf/advanced-comparison-operators",  # LIKE, BETWEEN, IN
    f"{_SPEC}/cql2/1.0/conf/case-insensitive-comparison",  # CASEI
    f"{_SPEC}/cql2/1.0/conf/basic-spatial-functions",  # S_INTERSECTS with POINT and BBOX
    f"{_SPEC}/cql2/1.0/conf/basic-spatial-functions-plus",  # S_INTERSECTS with every geometry literal
    f"{_SPEC}/cql2/1.0/conf/spatial-functions",  # all eight S_ functions
]

GEOMETRY_NAME = "geometry"  # the name OGC clients use for the primary geometry (pygeoapi's queryables)
_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")


class _Kind:
    TEXT, INTEGER, NUMBER, BOOLEAN, DATE, TIMESTAMP, GEOMETRY = (
        "text", "integer", "number", "boolean", "date", "timestamp", "geometry")


_NUMERIC = {_Kind.INTEGER, _Kind.NUMBER}
_TEMPORAL = {_Kind.DATE, _Kind.TIMESTAMP}
_TYPE_WORDS = {"text": "text", "integer": "an integer", "number": "a number",
               "boolean": "a boolean (true/false)", "date": "a date (DATE('2024-01-31'))",
               "timestamp": "a time (TIMESTAMP('2024-01-31T08:00:00Z'))"}


@dataclass(frozen=True)
class _Column:
    """A property reference resolved to SQL: ``sql`` is a quoted column (or lower(column))."""

    sql: str
    kind: str
    name: str
    lowered: bool = False


def to_sql(node: Any, fields: Mapping[str, Field], geometry_column: str, srid: int, *,
           temporal_columns: Mapping[str, str] | None = None, envelope_crs: str | None = None,
           prefix: str = "cql") -> tuple[str, dict[str, Any]]:
    """Translate a pygeofilter AST into ``(sql, params)``.

    fields           the queryable (public) fields by name; nothing else may be named in the filter
    geometry_column  the geometry column in the storage CRS (``geometry`` is accepted as its name too)
    srid             the storage CRS's EPSG code (geometry literals are already in it, see the module doc)
    temporal_columns extra timestamp-valued names → SQL column, e.g. ``{"updated": '"version_start"'}``
    envelope_crs     CRS URI of bounding boxes (the request's filter-crs); CRS84 if not given
    prefix           bound parameter names are ``<prefix>_<n>``
    """
    translator = _Translator(fields, geometry_column, srid, dict(temporal_columns or {}),
                             envelope_crs or CRS84, prefix)
    sql = translator.condition(node)
    return sql, translator.params


def queryable_names(fields: Mapping[str, Field],
                    temporal_columns: Mapping[str, str] | None = None) -> list[str]:
    return [GEOMETRY_NAME, *fields, *(temporal_columns or {})]


class _Translator:
    def __init__(self, fields: Mapping[str, Field], geometry_column: str, srid: int,
                 temporal_columns: dict[str, str], envelope_crs: str, prefix: str):
        if not _IDENT.match(geometry_column):
            raise ValueError(f"bad geometry column name {geometry_column!r}")
        self.fields = fields
        self.geometry_column = geometry_column
        self.srid = int(srid)
        self.temporal_columns = temporal_columns
        self.envelope_crs = envelope_crs
        self.prefix = prefix
        self.params: dict[str, Any] = {}

    # ------------------------------------------------------------------------------------------ helpers
    def bind(self, value: Any) -> str:
        name = f"{self.prefix}_{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def unknown(self, name: str) -> ValueError:
        names = ", ".join(queryable_names(self.fields, self.temporal_columns))
        return ValueError(f"unknown property {name!r}; queryable properties: {names}")

    def column(self, node: Any) -> _Column | None:
        """A property reference (or CASEI of one) as SQL, or None if the node is a literal."""
        if isinstance(node, ast.Attribute):
            name = node.name
            if name in self.fields:
                field = self.fields[name]
                if not _IDENT.match(field.name):
                    raise ValueError(f"bad field name {field.name!r}")
                return _Column(f'"{field.name}"', field.type, name)
            if name in (GEOMETRY_NAME, self.geometry_column):
                return _Column(f'"{self.geometry_column}"', _Kind.GEOMETRY, GEOMETRY_NAME)
            if name in self.temporal_columns:
                return _Column(self.temporal_columns[name], _Kind.TIMESTAMP, name)
            raise self.unknown(name)
        if isinstance(node, ast.Function):
            fname = node.name.lower()
            if fname == "lower":  # CASEI(...)
                if len(node.arguments) != 1:
                    raise ValueError("CASEI takes one argument")
                inner = node.arguments[0]
                col = self.column(inner)
                if col is None:
                    return None  # CASEI('literal'): handled as a literal
                if col.kind != _Kind.TEXT:
                    raise ValueError(f"CASEI needs a text property; {col.name} is {_TYPE_WORDS[col.kind]}")
                return _Column(f"lower({col.sql})", _Kind.TEXT, col.name, lowered=True)
            if fname == "accenti":
                raise ValueError("ACCENTI (accent-insensitive comparison) is not supported")
            if fname == "bbox":
                return None  # a BBOX literal
            raise ValueError(f"function {node.name.upper()}() is not supported in filters")
        if isinstance(node, ast.Arithmetic):
            raise ValueError("arithmetic (+ - * /) is not supported in filters")
        if isinstance(node, ast.Node):
            raise ValueError(f"{type(node).__name__} cannot be used as a value here")
        return None

    def literal(self, node: Any, kind: str, name: str) -> str:
        """Bind a literal for comparison with a property of the given kind."""
        lowered = False
        if isinstance(node, ast.Function) and node.name.lower() == "lower":
            node, lowered = node.arguments[0], True
            if kind != _Kind.TEXT or not isinstance(node, str):
                raise ValueError("CASEI needs a text value such as CASEI('Nà Pài')")
        value = coerce(node, kind, name)
        placeholder = self.bind(value)
        return f"lower({placeholder})" if lowered else placeholder

    # ------------------------------------------------------------------------------------------ conditions
    def condition(self, node: Any) -> str:  # noqa: C901 - one dispatch on the node type
        if isinstance(node, ast.And):
            return f"({self.condition(node.lhs)} AND {self.condition(node.rhs)})"
        if isinstance(node, ast.Or):
            return f"({self.condition(node.lhs)} OR {self.condition(node.rhs)})"
        if isinstance(node, ast.Not):
            return f"(NOT {self.condition(node.sub_node)})"
        if isinstance(node, ast.Include):
            return "FALSE" if node.not_ else "TRUE"
        if isinstance(node, bool):  # a bare TRUE/FALSE from CQL2 JSON
            return "TRUE" if node else "FALSE"
        if isinstance(node, ast.Comparison):
            return self.comparison(node)
        if isinstance(node, ast.Between):
            return self.between(node)
        if isinstance(node, ast.Like):
            return self.like(node)
        if isinstance(node, ast.In):
            return self.in_(node)
        if isinstance(node, ast.IsNull):
            col = self.column(node.lhs)
            if col is None:
                raise ValueError("IS NULL needs a property on its left")
            return f"({col.sql} IS {'NOT ' if node.not_ else ''}NULL)"
        if isinstance(node, ast.SpatialComparisonPredicate):
            return self.spatial(node)
        if isinstance(node, ast.BBox):
            col = self.column(node.lhs)
            if col is None or col.kind != _Kind.GEOMETRY:
                raise ValueError("BBOX(...) needs the geometry as its first argument")
            box = self.envelope([node.minx, node.miny, node.maxx, node.maxy], node.crs)
            return f"ST_Intersects({col.sql}, {box})"
        if isinstance(node, ast.TemporalPredicate):
            return self.temporal(node)
        if isinstance(node, (ast.Relate, ast.SpatialDistancePredicate)):
            raise ValueError(f"{type(node).__name__} (RELATE, DWITHIN, BEYOND) is not supported")
        if isinstance(node, ast.ArrayPredicate):
            raise ValueError("array functions (A_EQUALS, A_CONTAINS, ...) are not supported")
        if isinstance(node, ast.Exists):
            raise ValueError("EXISTS is not supported")
        if isinstance(node, ast.Attribute):
            raise ValueError(f"{node.name} alone is not a condition: compare it with a value")
        raise ValueError(f"unsupported filter expression: {type(node).__name__}")

    def comparison(self, node: ast.Comparison) -> str:
        op = node.op.value
        left, right = self.column(node.lhs), self.column(node.rhs)
        if left is None and right is None:
            raise ValueError(f"the comparison {op} needs a property on one side")
        if left is not None and right is not None:
            self.check_comparable(left, right, op)
            lsql, rsql = self.comparable_sql(left, right)
            return f"({lsql} {op} {rsql})"
        col, other, swapped = (left, node.rhs, False) if left is not None else (right, node.lhs, True)
        if col.kind == _Kind.GEOMETRY:
            raise ValueError("compare the geometry with S_INTERSECTS, S_EQUALS, ... not with " + op)
        if col.kind == _Kind.BOOLEAN and op not in ("=", "<>"):
            raise ValueError(f"{col.name} is a boolean: only = and <> apply")
        col_sql, lit_sql = self.column_vs_literal(col, other)
        return f"({lit_sql} {op} {col_sql})" if swapped else f"({col_sql} {op} {lit_sql})"

    def column_vs_literal(self, col: _Column, value: Any) -> tuple[str, str]:
        """SQL of a column and a literal compared with it; a date column meets a timestamp at 00:00 UTC."""
        if col.kind == _Kind.DATE and _is_timestamp(value):
            return _date_as_timestamp(col.sql), self.literal(value, _Kind.TIMESTAMP, col.name)
        return col.sql, self.literal(value, col.kind, col.name)

    @staticmethod
    def check_comparable(left: _Column, right: _Column, op: str) -> None:
        kinds = {left.kind, right.kind}
        if _Kind.GEOMETRY in kinds:
            raise ValueError("geometries are compared with S_INTERSECTS, S_EQUALS, ... not with " + op)
        if len(kinds) == 1 or kinds <= _NUMERIC or kinds <= _TEMPORAL:
            return
        raise ValueError(f"{left.name} ({_TYPE_WORDS[left.kind]}) and {right.name} "
                         f"({_TYPE_WORDS[right.kind]}) cannot be compared")

    @staticmethod
    def comparable_sql(left: _Column, right: _Column) -> tuple[str, str]:
        if {left.kind, right.kind} == _TEMPORAL:
            to_ts = (lambda c: _date_as_timestamp(c.sql) if c.kind == _Kind.DATE else c.sql)
            return to_ts(left), to_ts(right)
        return left.sql, right.sql

    def between(self, node: ast.Between) -> str:
        col = self.column(node.lhs)
        if col is None or col.kind in (_Kind.GEOMETRY, _Kind.BOOLEAN):
            raise ValueError("BETWEEN needs a number, text or date property on its left")
        if col.kind == _Kind.DATE and (_is_timestamp(node.low) or _is_timestamp(node.high)):
            col_sql, kind = _date_as_timestamp(col.sql), _Kind.TIMESTAMP
        else:
            col_sql, kind = col.sql, col.kind
        low, high = self.literal(node.low, kind, col.name), self.literal(node.high, kind, col.name)
        return f"({col_sql} {'NOT ' if node.not_ else ''}BETWEEN {low} AND {high})"

    def like(self, node: ast.Like) -> str:
        col = self.column(node.lhs)
        if col is None or col.kind != _Kind.TEXT:
            raise ValueError("LIKE needs a text property on its left")
        pattern = node.pattern
        lowered = False
        if isinstance(pattern, dict) and pattern.get("op") == "casei":  # raw in pygeofilter's CQL2 JSON
            args = pattern.get("args")
            pattern = ast.Function("lower", list(args) if isinstance(args, list) else [args])
        if (isinstance(pattern, ast.Function) and pattern.name.lower() == "lower"
                and len(pattern.arguments) == 1):
            pattern, lowered = pattern.arguments[0], True
        if not isinstance(pattern, str):
            raise ValueError("the LIKE pattern must be a quoted text such as '%Pài%'")
        placeholder = self.bind(pattern)
        if lowered:
            placeholder = f"lower({placeholder})"
        # CQL2's wildcards (% and _) and escape (\) are PostgreSQL's (pygeofilter's singlechar "." is not).
        operator = "ILIKE" if node.nocase else "LIKE"
        return f"({col.sql} {'NOT ' if node.not_ else ''}{operator} {placeholder})"

    def in_(self, node: ast.In) -> str:
        col = self.column(node.lhs)
        if col is None or col.kind == _Kind.GEOMETRY:
            raise ValueError("IN needs a property on its left")
        if not node.sub_nodes:
            raise ValueError("IN needs at least one value")
        if col.kind == _Kind.DATE and any(_is_timestamp(v) for v in node.sub_nodes):
            col_sql, kind = _date_as_timestamp(col.sql), _Kind.TIMESTAMP
        else:
            col_sql, kind = col.sql, col.kind
        items = ", ".join(self.literal(v, kind, col.name) for v in node.sub_nodes)
        return f"({col_sql} {'NOT ' if node.not_ else ''}IN ({items}))"

    # ------------------------------------------------------------------------------------------ spatial
    _SPATIAL = {
        ast.GeometryIntersects: "ST_Intersects", ast.GeometryDisjoint: "ST_Disjoint",
        ast.GeometryContains: "ST_Contains", ast.GeometryWithin: "ST_Within",
        ast.GeometryTouches: "ST_Touches", ast.GeometryCrosses: "ST_Crosses",
        ast.GeometryOverlaps: "ST_Overlaps", ast.GeometryEquals: "ST_Equals",
    }

    def spatial(self, node: ast.SpatialComparisonPredicate) -> str:
        function = self._SPATIAL.get(type(node))
        if function is None:
            raise ValueError(f"unsupported spatial predicate {type(node).__name__}")
        left, right = self.geometry_operand(node.lhs), self.geometry_operand(node.rhs)
        if left[1] == right[1]:
            raise ValueError(f"S_{node.op.value} needs the geometry property on one side and a geometry "
                             "literal (POINT(...), POLYGON(...), BBOX(...)) on the other")
        return f"{function}({left[0]}, {right[0]})"

    def geometry_operand(self, node: Any) -> tuple[str, bool]:
        """(SQL, is_property) of one side of a spatial predicate."""
        if isinstance(node, values.Geometry):
            return self.geometry_literal(node.geometry), False
        if isinstance(node, values.Envelope):
            # Both pygeofilter 0.4 parsers fill Envelope(x1, x2, y1, y2) positionally from the four numbers,
            # which CQL2 JSON's {"bbox": [...]} (and the text ENVELOPE(...)) give as minx, miny, maxx, maxy.
            return self.envelope([node.x1, node.x2, node.y1, node.y2], None), False
        if isinstance(node, ast.Function) and node.name.lower() == "bbox":
            return self.envelope(_bbox_args(node.arguments), None), False
        col = self.column(node)
        if col is None or col.kind != _Kind.GEOMETRY:
            raise ValueError("spatial predicates compare the geometry with a geometry literal")
        return col.sql, True

    def geometry_literal(self, geojson: dict) -> str:
        try:
            geom = shapely.geometry.shape(geojson)
        except Exception as exc:  # noqa: BLE001 - any malformed literal is the user's to fix
            raise ValueError(f"the geometry literal is not valid: {exc}") from None
        crs = ((geojson.get("crs") or {}).get("properties") or {}).get("name")
        if crs is not None:
            source = _epsg(crs)
            if source != self.srid:  # pygeoapi reprojects literals before us; a direct caller may not
                geom = _reproject(geom, crs, self.srid)
        return self.bind_geometry(geom)

    def envelope(self, bounds: list[float], crs: str | None) -> str:
        try:
            x1, y1, x2, y2 = (float(v) for v in bounds)
        except (TypeError, ValueError):
            raise ValueError("a bounding box needs four numbers: BBOX(minx, miny, maxx, maxy)") from None
        if not all(map(math.isfinite, (x1, y1, x2, y2))):
            raise ValueError("bounding box values must be finite numbers")
        if x1 > x2 or y1 > y2:
            raise ValueError("a bounding box is BBOX(minx, miny, maxx, maxy) with min <= max")
        box = shapely.box(x1, y1, x2, y2)
        source = crs or self.envelope_crs
        if _epsg(source) != self.srid:
            box = _reproject(shapely.segmentize(box, max(x2 - x1, y2 - y1) / 16 or 1.0), source, self.srid)
        return self.bind_geometry(box)

    def bind_geometry(self, geom) -> str:
        if geom.is_empty:
            raise ValueError("the geometry literal is empty")
        coords = shapely.get_coordinates(geom)
        if not all(math.isfinite(v) for v in coords.ravel()):
            raise ValueError("the geometry literal could not be reprojected to the layer's coordinate system "
                             "(check filter-crs and the axis order of its coordinates)")
        if not geom.is_valid:
            reason = shapely.validation.explain_validity(geom)
            raise ValueError(f"the geometry literal is not valid: {reason}")
        return f"ST_GeomFromWKB({self.bind(shapely.to_wkb(geom))}, {self.srid})"

    # ------------------------------------------------------------------------------------------ temporal
    def temporal(self, node: ast.TemporalPredicate) -> str:
        a, b = self.temporal_operand(node.lhs), self.temporal_operand(node.rhs)
        if a.is_literal and b.is_literal:
            raise ValueError(f"T_{node.op.value} needs a date property or the version time on one side")
        as_timestamp = a.kind == _Kind.TIMESTAMP or b.kind == _Kind.TIMESTAMP
        a1, a2 = (self.temporal_sql(v, as_timestamp, start) for v, start in ((a.start, True), (a.end, False)))
        b1, b2 = (self.temporal_sql(v, as_timestamp, start) for v, start in ((b.start, True), (b.end, False)))
        rule = _ALLEN.get(type(node))
        if rule is None:
            raise ValueError(f"T_{node.op.value} is not supported")
        return "(" + rule.format(a1=a1, a2=a2, b1=b1, b2=b2) + ")"

    def temporal_operand(self, node: Any) -> "_Temporal":
        col = self.column(node) if not isinstance(node, (values.Interval, date, datetime, str)) else None
        if col is not None:
            if col.kind not in _TEMPORAL:
                raise ValueError(f"temporal predicates need a date property or the version time; {col.name} "
                                 f"is {_TYPE_WORDS.get(col.kind, col.kind)}")
            return _Temporal(("col", col), ("col", col), col.kind, False)
        if isinstance(node, values.Interval):
            start, end = (_temporal_value(v) for v in (node.start, node.end))
        else:
            start = end = _temporal_value(node)
            if start is None:
                raise ValueError("'..' (open end) is only valid inside an INTERVAL")
        kinds = {_Kind.TIMESTAMP if isinstance(v, datetime) else _Kind.DATE
                 for v in (start, end) if v is not None}
        kind = _Kind.TIMESTAMP if _Kind.TIMESTAMP in kinds else _Kind.DATE
        if start is not None and end is not None and _as_datetime(start) > _as_datetime(end):
            raise ValueError("an INTERVAL must start before it ends")
        return _Temporal(("lit", start), ("lit", end), kind, True)

    def temporal_sql(self, value: tuple[str, Any], as_timestamp: bool, start: bool) -> str:
        tag, v = value
        sql_type = "timestamptz" if as_timestamp else "date"
        if tag == "col":
            col: _Column = v
            return _date_as_timestamp(col.sql) if as_timestamp and col.kind == _Kind.DATE else col.sql
        if v is None:  # an open end of an interval
            return f"CAST('{'-infinity' if start else 'infinity'}' AS {sql_type})"
        if as_timestamp:
            return f"CAST({self.bind(_as_datetime(v))} AS timestamptz)"
        return f"CAST({self.bind(v)} AS date)"


@dataclass(frozen=True)
class _Temporal:
    start: tuple[str, Any]
    end: tuple[str, Any]
    kind: str
    is_literal: bool


# Allen's relations between [a1, a2] and [b1, b2] (an instant: start = end), as in CQL2 1.0 §7.
# pygeofilter maps both T_INTERSECTS and T_OVERLAPS to TimeOverlaps: it gets T_INTERSECTS semantics.
_ALLEN: dict[type, str] = {
    ast.TimeBefore: "{a2} < {b1}",
    ast.TimeAfter: "{a1} > {b2}",
    ast.TimeMeets: "{a2} = {b1}",
    ast.TimeMetBy: "{a1} = {b2}",
    ast.TimeOverlaps: "{a1} <= {b2} AND {a2} >= {b1}",  # T_INTERSECTS
    ast.TimeOverlappedBy: "{a1} > {b1} AND {a1} < {b2} AND {a2} > {b2}",
    ast.TimeBegins: "{a1} = {b1} AND {a2} < {b2}",
    ast.TimeBegunBy: "{a1} = {b1} AND {a2} > {b2}",
    ast.TimeDuring: "{a1} > {b1} AND {a2} < {b2}",
    ast.TimeContains: "{a1} < {b1} AND {a2} > {b2}",
    ast.TimeEnds: "{a1} > {b1} AND {a2} = {b2}",
    ast.TimeEndedBy: "{a1} < {b1} AND {a2} = {b2}",
    ast.TimeEquals: "{a1} = {b1} AND {a2} = {b2}",
}


# ---------------------------------------------------------------------------------------------- values
def coerce(value: Any, kind: str, name: str) -> Any:  # noqa: C901 - one branch per type
    """A literal as the Python value to bind for a property of the given kind, or ValueError for the user."""
    if isinstance(value, ast.Node) or isinstance(value, (values.Geometry, values.Envelope, values.Interval)):
        raise ValueError(f"{name} must be compared with a single value")
    want = _TYPE_WORDS.get(kind, kind)
    if value is None:
        raise ValueError(f"use '{name} IS NULL' to test for a missing value")
    if kind == _Kind.TEXT:
        if isinstance(value, str):
            return value
        raise ValueError(f"{name} is text: quote the value, e.g. {name} = '{value}'")
    if kind == _Kind.INTEGER:
        if isinstance(value, bool):
            raise ValueError(f"{name} must be compared with {want}, not a boolean")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,18}\s*", value):
            return int(value)
        raise ValueError(f"{name} must be compared with {want}, got {_show(value)}")
    if kind == _Kind.NUMBER:
        if isinstance(value, bool):
            raise ValueError(f"{name} must be compared with {want}, not a boolean")
        if isinstance(value, (int, float)) and math.isfinite(value):
            return value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if math.isfinite(number):
                return number
        raise ValueError(f"{name} must be compared with {want}, got {_show(value)}")
    if kind == _Kind.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValueError(f"{name} must be compared with {want}, got {_show(value)}")
    if kind == _Kind.DATE:
        if isinstance(value, datetime):
            raise ValueError(f"{name} is a date: compare it with DATE('...')")
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                pass
        raise ValueError(f"{name} must be compared with {want}, got {_show(value)}")
    if kind == _Kind.TIMESTAMP:
        if isinstance(value, (date, datetime)):
            return _as_datetime(value)
        if isinstance(value, str):
            try:
                return _as_datetime(datetime.fromisoformat(value.strip()))
            except ValueError:
                pass
        raise ValueError(f"{name} must be compared with {want}, got {_show(value)}")
    raise ValueError(f"{name} cannot be compared with a value")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_timestamp(value: Any) -> bool:
    return isinstance(value, datetime)


def _date_as_timestamp(sql: str) -> str:
    return f"(CAST({sql} AS timestamp) AT TIME ZONE 'UTC')"


def _as_datetime(value: date | datetime) -> datetime:
    """A timezone-aware datetime; dates are 00:00 UTC, naive times are UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    return datetime.combine(value, time(0), tzinfo=timezone.utc)


def _temporal_value(value: Any) -> date | datetime | None:
    if value is None or value == "..":
        return None
    if isinstance(value, (date, datetime)):
        return value
    if isinstance(value, timedelta):
        raise ValueError("durations in intervals are not supported; give both ends as dates or times")
    if isinstance(value, str):
        for parse in (date.fromisoformat, datetime.fromisoformat):
            try:
                return parse(value.strip())
            except ValueError:
                continue
    raise ValueError(f"not a date or time: {_show(value)}")


def _bbox_args(arguments: list) -> list:
    if len(arguments) == 4:
        return list(arguments)
    if len(arguments) == 6:  # minx, miny, minz, maxx, maxy, maxz
        return [arguments[0], arguments[1], arguments[3], arguments[4]]
    raise ValueError("BBOX takes 4 (or 6) numbers: BBOX(minx, miny, maxx, maxy)")


@lru_cache(maxsize=64)
def _crs(uri: str) -> pyproj.CRS:
    from pygeoapi.crs import get_crs  # the same URI rules as pygeoapi's crs/bbox-crs/filter-crs

    if re.fullmatch(r"EPSG:\d+", uri):
        return pyproj.CRS.from_epsg(int(uri[5:]))
    try:
        return get_crs(uri)
    except Exception:  # noqa: BLE001 - pyproj's CRSError and pygeoapi's wrapping of it
        raise ValueError(f"unknown coordinate reference system {uri!r}") from None


def _epsg(uri: str) -> int | None:
    return _crs(uri).to_epsg()


@lru_cache(maxsize=64)
def _transformer(source: str, srid: int) -> pyproj.Transformer:
    # pygeoapi's own choice for bbox and filter literals (authority axis order, PROJ's best operation:
    # EPSG:6960 for VN-2000 ↔ WGS 84 in Lạng Sơn), so bbox=, BBOX() and POLYGON() agree.
    return pyproj.Transformer.from_crs(_crs(source), pyproj.CRS.from_epsg(srid))


def _reproject(geom, source: str, srid: int):
    transformer = _transformer(source, srid)
    return shapely.transform(geom, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
