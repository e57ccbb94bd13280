"""One set-based merge of the staging table into the layer's tables, inside the run's transaction.

For each accepted staged row, by natural key:
  * new key                         → INSERT, version 1;
  * same key, different row hash    → the current version is copied to history (valid until now), then UPDATE;
  * same key, retired earlier       → the retired version goes to history (valid until its retirement), UPDATE;
  * same key, same hash and flags   → untouched (no write, no new version).
In a full snapshot, a live feature whose key is not in the source at all is retired (``retired_at``), never
deleted. Rejected rows go to the quarantine (``etl.rejects``), one row per reason (rows rejected again unchanged:
``etl.rejects_again``, see :func:`rejected_again_sql`); warnings and repairs on written rows go to ``etl.issues``.

All statements use data-modifying CTEs so history, update and insert read one snapshot of the table.
"""
from __future__ import annotations

import math
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Callable

from gisplatform.layers import DATA_SCHEMA, Layer
from gisplatform.load.staging import Staging, quote
from gisplatform.validate.base import SetContext, SetRule
from gisplatform.validate.sets import duplicate_message, finding, flags_with, key_equal, key_text

BULK_EMPTY_FRACTION = 0.1  # live rows below this share of the staged rows: rebuild spatial indexes once
REJECT_COLUMNS = "run_id, layer, file, row_number, natural_key, rule, field, message, raw_record, source_hash"
VERSION_COLUMNS = (
    "geom", "geom_wgs84", "qa_flags", "source_file", "source_row", "source_raw", "source_hash", "row_hash")


@dataclass
class MergeCounts:
    processed: int = 0  # staged rows (accepted + rejected)
    rejected: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0  # accepted but identical to the stored version
    retired: int = 0
    history: int = 0
    revived: int = 0  # of the updated, features that were retired and are live again


def _fields(layer: Layer) -> list[str]:
    return [quote(f.name) for f in layer.fields]


def _staged_value(column: str) -> str:
    """How a staging column becomes a stored one (staging keeps JSON and arrays as text)."""
    return {
        "qa_flags": "c.qa_flags::text[]",
        "source_raw": "c.source_raw::jsonb",
        "source_file": "c.src_file",
        "source_row": "c.src_row",
    }.get(column, f"c.{column}")


def _insert_columns(layer: Layer) -> tuple[list[str], list[str]]:
    """Stored columns of a version, and the staging expressions that fill them (in the same order)."""
    fields = _fields(layer)
    return fields + list(VERSION_COLUMNS), [f"c.{f}" for f in fields] + [_staged_value(c) for c in VERSION_COLUMNS]


def _issues_insert(staging: Staging, layer: Layer, rows: str, rule: str | None = None) -> str:
    """INSERT of the warnings and repairs (``notes``) of the written rows ``rows`` (aliased ``c``); those of
    one ``rule`` only, if given."""
    of_rule = f" AND n->>'rule' = '{rule}'" if rule else ""
    return f"""
            INSERT INTO etl.issues (run_id, layer, file, row_number, natural_key, rule, field, message, kind)
            SELECT {staging.run_id}, '{layer.name}', c.src_file, c.src_row, {key_text('c', layer.natural_key)},
                   n->>'rule', n->>'field', n->>'message', CASE WHEN n->>'kind' = 'repair' THEN 'repair'
                   ELSE 'warning' END
            FROM {rows}, jsonb_array_elements(c.notes::jsonb) n
            WHERE c.notes IS NOT NULL{of_rule}
            RETURNING 1"""


def quarantine_sql(staging: Staging, layer: Layer) -> str:
    """Every reason of every rejected staged row into the quarantine; returns the number of rejected rows (one
    scan of the staging table for both)."""
    # Rows rejected in Python carry the record as read; rows rejected by a set rule (a duplicate key) passed
    # the row rules, so their staged values, with the geometry as WKT, are the record.
    staged = ", ".join(f"'{f.name}', s.{quote(f.name)}" for f in layer.fields)
    return f"""
        WITH rejected AS MATERIALIZED (SELECT * FROM {staging.table} WHERE errors IS NOT NULL
        ), quarantined AS (
            INSERT INTO etl.rejects ({REJECT_COLUMNS})
            SELECT {staging.run_id}, '{layer.name}', s.src_file, s.src_row, {key_text('s', layer.natural_key)},
                   e->>'rule', e->>'field', e->>'message',
                   coalesce(s.raw_record::jsonb, jsonb_build_object({staged})
                            || jsonb_build_object('geometry', ST_AsText(s.geom, 3), 'record', 'as staged')),
                   s.source_hash
            FROM rejected s, jsonb_array_elements(s.errors::jsonb) e
        )
        SELECT count(*) FROM rejected"""


def rejected_again_sql(staging: Staging, layer: Layer, previous_run: int, duplicate_rule: str) -> str:
    """Record under this run, with the file and row they now have, the previous run's reasons for the rows it
    rejected that came again unchanged (the ``again`` table): one row of ``etl.rejects_again`` whose arrays hold,
    per reason, the reject that holds it and the raw record (``original``), its rule, source hash and natural key
    and, for a copy of a duplicate key, the message anew, naming the other copies where they are now (rows may
    have moved in the file); other reasons keep their original's message. DISTINCT ON: two identical rows rejected
    last time left their reasons twice; a row takes them once. Read back through the view ``etl.all_rejects``."""
    renamed = f"""
            SELECT a.ord, {duplicate_message('a.natural_key', 'o')} AS message
            FROM {staging.again_table} a JOIN {staging.again_table} o
                 ON o.natural_key = a.natural_key AND o.grouped AND o.ord <> a.ord
            WHERE a.grouped GROUP BY a.ord, a.natural_key"""
    # No ORDER BY in the aggregates (each would sort on its own): one Aggregate feeds every input row to all of
    # them in the same order, so the arrays stay parallel; readers order by file and row, then the original's id.
    return f"""
        INSERT INTO etl.rejects_again (run_id, layer, files, row_numbers, originals, rules, source_hashes,
                                       natural_keys, messages)
        SELECT {staging.run_id}, '{layer.name}', array_agg(a.src_file), array_agg(a.src_row), array_agg(r.original),
               array_agg(r.rule), array_agg(r.source_hash), array_agg(r.natural_key),
               array_agg(CASE WHEN r.rule = '{duplicate_rule}' THEN
                              CASE WHEN a.grouped THEN coalesce(g.message, r.message) ELSE r.message END END)
        FROM {staging.again_table} a JOIN (
            SELECT DISTINCT ON (source_hash, rule, field, message) id, original, natural_key, rule, field, message,
                   source_hash
            FROM etl.all_rejects
            WHERE run_id = {int(previous_run)} AND source_hash IS NOT NULL
            ORDER BY source_hash, rule, field, message, id) r ON r.source_hash = a.source_hash
            LEFT JOIN ({renamed}) g ON g.ord = a.ord
        HAVING count(*) > 0"""


def upsert_sql(staging: Staging, layer: Layer) -> str:
    data, hist = layer.qualified_table, layer.history_table
    fields = _fields(layer)
    key = layer.natural_key
    targets, sources = _insert_columns(layer)
    stored = ", ".join(targets)
    from_staging = ", ".join(sources)
    set_clause = ", ".join(f"{t} = {v}" for t, v in zip(targets, sources))
    return f"""
        WITH incoming AS (
            SELECT * FROM {staging.table} WHERE errors IS NULL
        ), changed AS (
            SELECT c.*, d.fid AS d_fid, d.retired_at IS NOT NULL AS d_was_retired
            FROM incoming c LEFT JOIN {data} d ON {key_equal('d', 'c', key)}
            WHERE d.fid IS NULL OR d.row_hash <> c.row_hash OR d.retired_at IS NOT NULL
               OR d.qa_flags IS DISTINCT FROM c.qa_flags::text[]
        ), to_history AS (
            INSERT INTO {hist} (fid, {stored}, version, version_start, run_id, version_end, ended_by_run, retired)
            SELECT d.fid, {", ".join(f"d.{c}" for c in fields)}, {", ".join(f"d.{c}" for c in VERSION_COLUMNS)},
                   d.version, d.version_start, d.run_id, coalesce(d.retired_at, now()), {staging.run_id},
                   d.retired_at IS NOT NULL
            FROM {data} d JOIN changed c ON c.d_fid = d.fid
            RETURNING 1
        ), updated AS (
            UPDATE {data} d SET {set_clause}, version = d.version + 1, version_start = now(),
                   run_id = {staging.run_id}, retired_at = NULL
            FROM changed c WHERE d.fid = c.d_fid
            RETURNING c.sid
        ), inserted AS (
            INSERT INTO {data} ({stored}, version, version_start, run_id)
            SELECT {from_staging}, 1, now(), {staging.run_id} FROM changed c WHERE c.d_fid IS NULL
            RETURNING 1
        ), issues AS ({_issues_insert(staging, layer, "changed c")}
        )
        SELECT (SELECT count(*) FROM incoming), (SELECT count(*) FROM inserted), (SELECT count(*) FROM updated),
               (SELECT count(*) FROM to_history), (SELECT count(*) FROM issues),
               (SELECT count(*) FROM changed WHERE d_was_retired)"""


def first_load_sql(staging: Staging, layer: Layer) -> str:
    """Into a layer with no rows at all every accepted row is new: one plain INSERT, no join, no history."""
    targets, sources = _insert_columns(layer)
    stored, from_staging = ", ".join(targets), ", ".join(sources)
    accepted = f"(SELECT * FROM {staging.table} WHERE errors IS NULL) c"
    return f"""
        WITH inserted AS (
            INSERT INTO {layer.qualified_table} ({stored}, version, version_start, run_id)
            SELECT {from_staging}, 1, now(), {staging.run_id} FROM {staging.table} c WHERE c.errors IS NULL
            ORDER BY c.sid  -- new features get ids in source order
            RETURNING 1
        ), issues AS ({_issues_insert(staging, layer, accepted)}
        )
        SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM inserted), 0, 0, (SELECT count(*) FROM issues),
               0"""


def warnings_after_insert_sql(staging: Staging, layer: Layer, rule: SetRule, ctx: SetContext,
                              keyed: bool = False) -> list[str]:
    """After a first load that inserted its rows before the pair search ended: the warnings of a pair rule go to
    the inserted features (a flag in their ``qa_flags``, found by natural key, unique among accepted rows) and
    to ``etl.issues``, as if they had been known at the insert. The findings are gathered once into a small
    table (the flagged rows found through the pairs, by ``sid``); the staged rows are not updated, since nothing
    reads them any more. Run as soon as the search has ended, best before the layer's indexes are rebuilt (no
    index entries to add for the new row versions; see _upsert), the features are found by hashing the flagged
    keys and scanning the new rows once (left to itself, the planner sorted the million new rows for a merge
    join); ``keyed``, once the natural key's index is rebuilt, through it (35,000 probes instead of a scan of a
    million rows: 0.45 s less). A million-parcel first load on a slow
    2-core machine: 2.6 s, where updating the staged rows first and reading them back took 4.3 s."""
    late = staging.late_warnings_table
    key = ", ".join(quote(k) for k in layer.natural_key)
    staged_key = ", ".join(f"s.{quote(k)}" for k in layer.natural_key)
    kind, flag = rule.failure_kind, f"{rule.failure_kind}:{rule.name}"
    other_join = "enable_hashjoin" if keyed else "enable_nestloop"  # leaves the index probe, or the hash join
    found = " UNION ALL ".join(f"({sql})" for sql in rule.findings(ctx))
    # each finding as the note record_sql would have added to the staged row, for _issues_insert to read
    return [f"DROP TABLE IF EXISTS {late}", f"""
        CREATE UNLOGGED TABLE {late} AS
        SELECT s.src_file, s.src_row, {staged_key}, {finding(rule.name, kind, 'f.message')}::text AS notes
        FROM ({found}) f JOIN {staging.table} s ON s.sid = f.sid""",
            f"ANALYZE {late}",
            "SET LOCAL enable_mergejoin = off", f"SET LOCAL {other_join} = off", f"""
        UPDATE {layer.qualified_table} d SET qa_flags = {flags_with('d.qa_flags', kind, rule.name)}
        FROM (SELECT DISTINCT {key} FROM {late}) f
        WHERE {key_equal('d', 'f', layer.natural_key)} AND NOT coalesce(d.qa_flags, '{{}}') @> ARRAY['{flag}']""",
            "RESET enable_mergejoin", f"RESET {other_join}",
            _issues_insert(staging, layer, f"{late} c", rule.name)]


def retire_sql(staging: Staging, layer: Layer) -> str:
    """Full snapshot: retire live features whose key the source no longer has (rejected rows count as present).

    Only features no source row matched unchanged can be gone; the others were skipped as present."""
    key = layer.natural_key
    return f"""
        WITH gone AS (
            UPDATE {layer.qualified_table} d SET retired_at = now()
            FROM {staging.unmatched_table} u
            WHERE d.fid = u.fid AND d.retired_at IS NULL
              AND NOT EXISTS (SELECT 1 FROM {staging.table} s WHERE {key_equal('s', 'd', key)})
              AND NOT EXISTS (SELECT 1 FROM {staging.again_table} a WHERE a.natural_key = {key_text('d', key)})
            RETURNING 1)
        SELECT count(*) FROM gone"""


def _spatial_indexes(cursor, layer: Layer) -> list[tuple[str, str]]:
    """(name, definition) of the layer table's GiST indexes."""
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 "
        "AND indexdef LIKE '%USING gist%' ORDER BY indexname", (DATA_SCHEMA, layer.table))
    return [(name, definition) for name, definition in cursor.fetchall()]


def _key_constraints(cursor, layer: Layer) -> list[tuple[str, str]]:
    """(name, definition) of the layer table's primary key and unique constraints (the natural key), except
    those a foreign key depends on (they cannot be dropped, and are left to be maintained row by row)."""
    cursor.execute("SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
                   "WHERE c.conrelid = $1::regclass AND c.contype IN ('p', 'u') AND NOT EXISTS "
                   "(SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid) "
                   "ORDER BY c.conname", (layer.qualified_table,))
    return [(name, definition) for name, definition in cursor.fetchall()]


def _natural_key_indexed(cursor, layer: Layer) -> bool:
    """Whether a valid unique index of the layer's table has exactly the natural key's columns, in order."""
    cursor.execute("""
        SELECT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indisvalid
                         AND (SELECT array_agg(a.attname::text ORDER BY k.ord)
                              FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
                             = $2::text[])""", (layer.qualified_table, list(layer.natural_key)))
    return bool(cursor.fetchone()[0])


def _upsert(cursor, staging: Staging, layer: Layer, after_insert: Callable[[], None] | None = None,
            after_insert_ready: Callable[[], bool] = lambda: True) -> tuple[tuple, bool]:
    """Run the upsert, then ``after_insert`` (as soon as ``after_insert_ready()``: until then, the key constraints
    and indexes are rebuilt one by one, the rest after it); returns its counts and whether the table was empty
    before (a first load).

    Into an (almost) empty table, spatial indexes are dropped and rebuilt once afterwards: a GiST built in one
    pass is several times faster than maintained row by row. Only then, because dropping an index locks readers
    out until the run commits, which matters little while a layer is being created. Into a table with no rows
    at all, the key constraints' B-trees are rebuilt the same way (sorted once; re-adding the natural key's
    constraint checks it again, and a violation fails the run)."""
    # counted only as far as the decisions need: a full count of a million-feature layer costs a re-run 0.5-1 s
    bulk_limit = math.ceil(BULK_EMPTY_FRACTION * staging.rows)
    cursor.execute(f"SELECT (SELECT count(*) FROM (SELECT FROM {layer.qualified_table} WHERE retired_at IS NULL "
                   f"LIMIT {bulk_limit}) live), EXISTS (SELECT FROM {layer.qualified_table})")
    live, stored = cursor.fetchone()
    rebuild = _spatial_indexes(cursor, layer) if live < bulk_limit else []
    constraints = _key_constraints(cursor, layer) if not stored else []
    for name, _ in rebuild:
        cursor.execute(f"DROP INDEX {DATA_SCHEMA}.{quote(name)}")
    for name, _ in constraints:
        cursor.execute(f"ALTER TABLE {layer.qualified_table} DROP CONSTRAINT {quote(name)}")
    cursor.execute(upsert_sql(staging, layer) if stored else first_load_sql(staging, layer))
    result = cursor.fetchone()
    builds = [f"ALTER TABLE {layer.qualified_table} ADD CONSTRAINT {quote(name)} {definition}"
              for name, definition in constraints] + [definition for _, definition in rebuild]
    if after_insert is not None:
        # Waiting for it (a first load's pair search, still running), the backend would idle: it builds instead
        # (a million parcels: the search ended 2.8 s after the insert). Once built, an index has entries to add
        # for the row versions after_insert writes, so nothing is built ahead when it is ready at once.
        while builds and not after_insert_ready():
            cursor.execute(builds.pop(0))
        after_insert()
    for statement in builds:
        cursor.execute(statement)
    if rebuild:
        cursor.execute(f"ANALYZE {layer.qualified_table}")  # the next run's planner must know the table is full
    return result, not stored


def set_context(cursor, staging: Staging, layer: Layer, full_snapshot: bool) -> SetContext:
    cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {layer.qualified_table} WHERE retired_at IS NULL), "
                   f"NOT EXISTS (SELECT 1 FROM {layer.qualified_table})")
    others_loaded, empty = cursor.fetchone()
    return SetContext(staging=staging.table, unmatched=staging.unmatched_table, pairs=staging.pairs_table,
                      loaded_pairs=staging.loaded_pairs_table, again=staging.again_table,
                      data=layer.qualified_table, incremental=not full_snapshot, others_loaded=others_loaded,
                      empty=empty)


def warnings_can_follow_insert(ctx: SetContext, set_rules: list[SetRule]) -> bool:
    """Whether the pair rules' findings may be recorded after the insert: on a first load (nothing to compare
    flags with, no history) of rows they can only warn about (a rejection must be known before the insert)."""
    pair_rules = [r for r in set_rules if r.needs_pairs]
    return ctx.empty and bool(pair_rules) and all(r.failure_kind == "warning" for r in pair_rules)


def prepare(cursor, staging: Staging, ctx: SetContext, set_rules: list[SetRule]) -> None:
    """Index the staged rows and run the set rules that need nothing from Python (duplicate keys).

    On a first load nothing joins the staged rows by natural key once the duplicate check knows its candidate
    keys: the staging table gets no key index then."""
    ctx = replace(ctx, duplicate_candidates=staging.stage_duplicate_candidates())
    staging.index(by_key=not (ctx.empty and ctx.duplicate_candidates is not None))
    for rule in set_rules:
        if not rule.needs_pairs:
            for statement in rule.statements(ctx):
                cursor.execute(statement)


def _pair_rules(cursor, ctx: SetContext, set_rules: list[SetRule], loaded_pairs: Callable[[], object] | None,
                statements: Callable[[SetRule], list[str]] | None = None) -> None:
    """The set rules that need the overlapping pairs (in the pairs table by now): their ``statements`` (by
    default the rule's own, which record the findings on the staged rows)."""
    cursor.execute(f"ANALYZE {ctx.pairs}")
    for rule in set_rules:
        if rule.needs_pairs:
            if loaded_pairs is not None:
                rule.store_loaded_pairs(cursor, ctx, loaded_pairs())
            else:
                rule.search(cursor, ctx)
            for statement in statements(rule) if statements else rule.statements(ctx):
                cursor.execute(statement)


def complete(cursor, staging: Staging, layer: Layer, ctx: SetContext, set_rules: list[SetRule],
             loaded_pairs: Callable[[], object] | None = None,
             pairs_searching: Future | None = None) -> MergeCounts:
    """The remaining set rules, then quarantine, upsert with history, and (full snapshot) retirement.

    ``loaded_pairs``: the pairs with loaded features already searched on another connection (waits for them;
    see gisplatform.validate.sets.Overlaps.search_loaded); without it the rule searches them now.
    ``pairs_searching`` (a first load whose pair rules only warn, see :func:`warnings_can_follow_insert`): the
    pairs among the staged rows, still being searched while the keys are checked and the rows inserted; waited
    for and stored once the rows are inserted, and their warnings recorded then."""
    counts = MergeCounts(processed=staging.rows)

    def record_late_warnings() -> None:
        staging.append_pairs(*pairs_searching.result())
        keyed = _natural_key_indexed(cursor, layer)  # rebuilt already while the search ended (see _upsert)
        _pair_rules(cursor, ctx, set_rules, loaded_pairs,
                    lambda rule: warnings_after_insert_sql(staging, layer, rule, ctx, keyed))

    if pairs_searching is not None and pairs_searching.done():  # found while the keys were checked: as usual
        staging.append_pairs(*pairs_searching.result())
        pairs_searching = None
    if pairs_searching is None:
        _pair_rules(cursor, ctx, set_rules, loaded_pairs)
    cursor.execute(quarantine_sql(staging, layer))
    counts.rejected = cursor.fetchone()[0]
    (incoming, counts.inserted, counts.updated, counts.history, _, counts.revived), first_load = \
        _upsert(cursor, staging, layer, record_late_warnings if pairs_searching is not None else None,
                pairs_searching.done if pairs_searching is not None else lambda: True)
    counts.unchanged = incoming - counts.inserted - counts.updated
    if not ctx.incremental and not first_load:  # every row of a first load came from this source: none is gone
        cursor.execute(retire_sql(staging, layer))
        counts.retired = cursor.fetchone()[0]
    return counts
