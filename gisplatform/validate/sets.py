"""Set rules: checks that need every row of the run, evaluated in SQL on the staging table.

They run after all batches are staged and before the merge, in the run's transaction. A finding is appended to
the row's ``errors`` (rejects it) or ``notes`` and ``qa_flags`` (warning), like the row rules' findings.
"""
from __future__ import annotations

from gisplatform.load.staging import quote
from gisplatform.validate.base import SetRule


def key_equal(a: str, b: str, key: tuple[str, ...]) -> str:
    return " AND ".join(f"{a}.{quote(k)} = {b}.{quote(k)}" for k in key)


def key_text(alias: str, key: tuple[str, ...]) -> str:
    """SQL for the natural key as people read it: 'map_sheet_no=12, parcel_no=125'."""
    parts = ", ".join(f"'{k}=' || coalesce({alias}.{quote(k)}::text, '(empty)')" for k in key)
    return f"concat_ws(', ', {parts})"


def finding(rule: str, kind: str, message_sql: str) -> str:
    return (f"jsonb_build_array(jsonb_build_object('rule', '{rule}', 'kind', '{kind}', 'field', NULL, "
            f"'message', {message_sql}))")


def record_sql(staging: str, kind: str, rule: str, findings_sql: str) -> str:
    """UPDATE recording one finding on each row of ``findings_sql`` (columns: sid, message)."""
    entry = finding(rule, kind, "f.message")
    if kind == "error":
        target = f"errors = (coalesce(s.errors::jsonb, '[]'::jsonb) || {entry})::text"
    else:
        flags = (f"array(SELECT DISTINCT x FROM unnest(coalesce(s.qa_flags::text[], '{{}}') "
                 f"|| ARRAY['{kind}:{rule}']) AS x ORDER BY 1)::text")
        target = f"notes = (coalesce(s.notes::jsonb, '[]'::jsonb) || {entry})::text, qa_flags = {flags}"
    return f"UPDATE {staging} s SET {target} FROM ({findings_sql}) f WHERE s.sid = f.sid"


class DuplicateNaturalKey(SetRule):
    """No two source rows share a natural key (all copies are rejected: only the source can say which is right)."""

    def statements(self, staging: str, seen: str, data_table: str) -> list[str]:
        key = self.layer.natural_key
        cols = ", ".join(quote(k) for k in key)
        not_null = " AND ".join(f"{quote(k)} IS NOT NULL" for k in key)
        within = f"""
            WITH dup AS (SELECT {cols} FROM {staging} WHERE {not_null} GROUP BY {cols} HAVING count(*) > 1)
            SELECT s.sid, 'duplicate natural key (' || {key_text('s', key)} || '): also in '
                   || string_agg(o.src_file || ' row ' || o.src_row, ', ' ORDER BY o.src_file, o.src_row)
                   || '; every copy is rejected: correct the numbering at the source' AS message
            FROM {staging} s JOIN dup USING ({cols})
                 JOIN {staging} o ON {key_equal('s', 'o', key)} AND o.sid <> s.sid
            GROUP BY s.sid, {', '.join(f's.{quote(k)}' for k in key)}"""
        # a row skipped as unchanged is in the source too: a new row with its key duplicates it
        against_unchanged = f"""
            SELECT s.sid, 'duplicate natural key (' || {key_text('s', key)} || '): same key as '
                   || d.source_file || ' row ' || d.source_row || ', loaded unchanged; correct the numbering at the '
                   || 'source' AS message
            FROM {staging} s JOIN {data_table} d ON {key_equal('s', 'd', key)}
            WHERE d.retired_at IS NULL AND d.source_hash IN (SELECT source_hash FROM {seen})"""
        return [record_sql(staging, self.failure_kind, self.name, within),
                record_sql(staging, self.failure_kind, self.name, against_unchanged)]


class Overlaps(SetRule):
    """Features do not overlap each other by more than a tolerance (m², in EPSG:9215)."""

    def statements(self, staging: str, seen: str, data_table: str, incremental: bool = False) -> list[str]:
        tolerance = float(self.param("tolerance_m2", 1.0))
        key = self.layer.natural_key
        # '2********': the interiors share an area (also catches one parcel inside another, which ST_Overlaps misses)
        within = f"""
            WITH pairs AS MATERIALIZED (
                SELECT a.sid AS a_sid, b.sid AS b_sid, ST_Area(ST_Intersection(a.geom, b.geom)) AS area,
                       {key_text('a', key)} AS a_key, {key_text('b', key)} AS b_key,
                       a.src_file || ' row ' || a.src_row AS a_where, b.src_file || ' row ' || b.src_row AS b_where
                FROM {staging} a JOIN {staging} b ON a.geom && b.geom AND a.sid < b.sid
                WHERE a.errors IS NULL AND b.errors IS NULL AND ST_Relate(a.geom, b.geom, '2********')
            ), sides AS (
                SELECT a_sid AS sid, 'overlaps ' || b_key || ' (' || b_where || ') by ' || round(area::numeric, 1)
                       || ' m²' AS message FROM pairs WHERE area > {tolerance}
                UNION ALL
                SELECT b_sid, 'overlaps ' || a_key || ' (' || a_where || ') by ' || round(area::numeric, 1) || ' m²'
                FROM pairs WHERE area > {tolerance})
            SELECT sid, string_agg(message, '; ') AS message FROM sides GROUP BY sid"""
        staying = ("TRUE" if incremental else f"d.source_hash IN (SELECT source_hash FROM {seen})")
        against_loaded = f"""
            SELECT a.sid, string_agg('overlaps loaded feature ' || {key_text('d', key)} || ' by '
                   || round(ST_Area(ST_Intersection(a.geom, d.geom))::numeric, 1) || ' m²', '; ') AS message
            FROM {staging} a JOIN {data_table} d ON a.geom && d.geom
            WHERE a.errors IS NULL AND d.retired_at IS NULL AND ({staying})
              AND NOT EXISTS (SELECT 1 FROM {staging} r WHERE {key_equal('r', 'd', key)})
              AND ST_Relate(a.geom, d.geom, '2********')
              AND ST_Area(ST_Intersection(a.geom, d.geom)) > {tolerance}
            GROUP BY a.sid"""
        return [record_sql(staging, self.failure_kind, self.name, within),
                record_sql(staging, self.failure_kind, self.name, against_loaded)]
