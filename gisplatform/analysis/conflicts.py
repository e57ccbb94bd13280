"""The ``analysis.conflicts`` layer: every rule of :mod:`gisplatform.analysis.rules`, kept up to date.

A conflict is identified by (rule, check, feature a, feature b). A recompute runs some checks into a temporary
table and reconciles it with the open conflicts *in its scope*:

  found, not open yet   → a new conflict (first_seen = now)
  found, already open   → updated (geometry, area, detail, last_seen); first_seen is kept
  open, not found       → resolved (resolved_at = now); it stays in the table, so the history is kept

The scope of a full recompute is every open conflict of the checks run. After an ETL run only the features the
run changed are checked (incremental): the checks that name the run's layer read just those features on that
side, and the scope is the open conflicts naming one of them. Checks that merely *read* the layer (R10 reads
the communes) are recomputed in full. The changed features are found from the run id: rows it wrote
(``data.<layer>.run_id``), versions it ended (``history.<layer>.ended_by_run``) and features it retired.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from gisplatform.analysis import rules as R

LOGGER = logging.getLogger(__name__)

SCHEMA = "analysis"
TABLE = f"{SCHEMA}.conflicts"
# Above this share of a layer changed in one run, a full recompute of its checks is as cheap as the incremental one.
FULL_SHARE = 0.3
_KEY = ("rule_id", "check_name", "layer_a", "fid_a", "layer_b", "fid_b")


@dataclass
class Summary:
    mode: str
    layer: str | None = None
    etl_run_id: int | None = None
    checks: int = 0
    changed: int = 0
    found: int = 0
    opened: int = 0
    resolved: int = 0
    open_total: int = 0
    seconds: float = 0.0
    by_rule: dict[str, int] = field(default_factory=dict)


def sync_rule_table(connection: sa.Connection) -> None:
    """Copy the rule definitions (bilingual titles, severities, parameters) into analysis.conflict_rules."""
    rules, _ = R.load_rules()
    for rule in rules.values():
        connection.execute(sa.text(f"""
            INSERT INTO {SCHEMA}.conflict_rules (rule_id, title_vi, title_en, description_vi, description_en,
                                                 basis, severity, params)
            VALUES (:id, :tv, :te, :dv, :de, :basis, CAST(:sev AS jsonb), CAST(:params AS jsonb))
            ON CONFLICT (rule_id) DO UPDATE SET title_vi = EXCLUDED.title_vi, title_en = EXCLUDED.title_en,
                description_vi = EXCLUDED.description_vi, description_en = EXCLUDED.description_en,
                basis = EXCLUDED.basis, severity = EXCLUDED.severity, params = EXCLUDED.params"""),
            dict(id=rule.id, tv=rule.title.vi, te=rule.title.en, dv=rule.description.vi, de=rule.description.en,
                 basis=rule.basis, sev=json.dumps(rule.severity), params=json.dumps(rule.params, ensure_ascii=False)))


def _found_table(connection: sa.Connection) -> None:
    connection.execute(sa.text("""
        CREATE TEMP TABLE IF NOT EXISTS conflicts_found (
            rule_id text, check_name text, severity text, layer_a text, fid_a bigint, key_a text,
            layer_b text, fid_b bigint, key_b text, detail text, area_m2 float8, geom geometry
        ) ON COMMIT DROP"""))


def _same_key(a: str, b: str) -> str:
    """The open-conflict key as ``conflicts_open_key`` indexes it: plain equality (hash joins, index probes)
    where ``IS NOT DISTINCT FROM`` allowed only nested loops, ~100 s for the 20,000 findings of a first load."""
    side_b = [f"coalesce({a}.layer_b, '') = coalesce({b}.layer_b, '')",
              f"coalesce({a}.fid_b, -1) = coalesce({b}.fid_b, -1)"]
    return " AND ".join([f"{a}.{c} = {b}.{c}" for c in _KEY if c not in ("layer_b", "fid_b")] + side_b)


def _scope_sql(check: R.Check, layer: str | None, params: dict) -> str:
    """Open conflicts of this check that this recompute is responsible for."""
    sql = f"c.resolved_at IS NULL AND c.rule_id = '{check.rule}' AND c.check_name = '{check.name}'"
    if layer is None:
        return sql
    return (sql + f" AND ((c.layer_a = '{layer}' AND c.fid_a = ANY(:changed_{layer})) "
                  f"OR (c.layer_b = '{layer}' AND c.fid_b = ANY(:changed_{layer})))")


def _reconcile(connection: sa.Connection, check: R.Check, layer: str | None, params: dict,
               run_id: int) -> tuple[int, int]:
    """Open, refresh and resolve the conflicts of one check from conflicts_found; (opened, resolved)."""
    scope = _scope_sql(check, layer, params)
    this = f"f.rule_id = '{check.rule}' AND f.check_name = '{check.name}'"
    resolved = connection.execute(sa.text(f"""
        UPDATE {TABLE} c SET resolved_at = now()
        WHERE {scope} AND NOT EXISTS (SELECT 1 FROM conflicts_found f WHERE {_same_key('f', 'c')})"""),
        params).rowcount
    connection.execute(sa.text(f"""
        UPDATE {TABLE} c SET severity = f.severity, key_a = f.key_a, key_b = f.key_b, detail = f.detail,
               overlap_area_m2 = f.area_m2, geom = f.geom, last_seen = now(), run_id = :run_id
        FROM conflicts_found f
        WHERE {this} AND c.resolved_at IS NULL AND {_same_key('f', 'c')}
          AND (c.geom IS DISTINCT FROM f.geom OR c.detail IS DISTINCT FROM f.detail
               OR c.severity <> f.severity OR c.key_a IS DISTINCT FROM f.key_a OR c.key_b IS DISTINCT FROM f.key_b)"""),
        {"run_id": run_id})
    opened = connection.execute(sa.text(f"""
        INSERT INTO {TABLE} (rule_id, check_name, severity, layer_a, fid_a, key_a, layer_b, fid_b, key_b, detail,
                             overlap_area_m2, geom, run_id)
        SELECT f.rule_id, f.check_name, f.severity, f.layer_a, f.fid_a, f.key_a, f.layer_b, f.fid_b, f.key_b,
               f.detail, f.area_m2, f.geom, :run_id
        FROM conflicts_found f
        WHERE {this} AND NOT EXISTS (SELECT 1 FROM {TABLE} c WHERE c.resolved_at IS NULL AND {_same_key('f', 'c')})"""),
        {"run_id": run_id}).rowcount
    return opened, resolved


def _refresh_statistics(connection: sa.Connection) -> None:
    """ANALYZE the conflicts table when a tenth of it changed since the last ANALYZE, as autovacuum would: it
    may be off or behind, and a planner that believes the table empty reconciles 20,000 findings by nested loop
    (100 s instead of 1 s)."""
    stale = connection.execute(sa.text(
        "SELECT n_mod_since_analyze > 50 + 0.1 * n_live_tup FROM pg_stat_user_tables "
        "WHERE relid = CAST(:table AS regclass)"), {"table": TABLE}).scalar()
    if stale:
        connection.execute(sa.text(f"ANALYZE {TABLE}"))


def _start(connection: sa.Connection, summary: Summary, began: float) -> int:
    """The recompute's log row. It starts when the recompute began (``began``, a perf_counter reading), which
    includes finding the changed features: the server's clock minus the time since, so that a client whose
    clock is off cannot put the start after the end."""
    return connection.execute(sa.text(
        f"INSERT INTO {SCHEMA}.runs (mode, layer, etl_run_id, started_at) "
        "VALUES (:m, :l, :r, clock_timestamp() - make_interval(secs => :waited)) RETURNING run_id"),
        {"m": summary.mode, "l": summary.layer, "r": summary.etl_run_id,
         "waited": time.perf_counter() - began}).scalar_one()


def _finish(connection: sa.Connection, run_id: int, summary: Summary) -> None:
    summary.open_total = connection.execute(sa.text(
        f"SELECT count(*) FROM {TABLE} WHERE resolved_at IS NULL")).scalar_one()
    connection.execute(sa.text(f"""
        UPDATE {SCHEMA}.runs SET finished_at = clock_timestamp(), checks = :checks, changed = :changed,
               found = :found, opened = :opened, resolved = :resolved, open_total = :open_total
        WHERE run_id = :run_id"""), dict(run_id=run_id, checks=summary.checks, changed=summary.changed,
                                         found=summary.found, opened=summary.opened, resolved=summary.resolved,
                                         open_total=summary.open_total))


def _run_checks(connection: sa.Connection, plan: list[tuple[R.Check, str | None]], changed: dict[str, list[int]],
                summary: Summary, began: float) -> None:
    # One recompute at a time (runs of different layers may finish together): the open-conflict key is unique
    connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('gisplatform.analysis.conflicts'))"))
    run_id = _start(connection, summary, began)
    sync_rule_table(connection)
    _refresh_statistics(connection)
    _found_table(connection)
    for check, layer in plan:
        params: dict[str, Any] = {f"changed_{k}": v for k, v in changed.items()}
        sources = R.Sources(changed={layer: changed[layer]} if layer else {})
        sql = R.render(check, sources, params)
        found = connection.execute(sa.text(f"INSERT INTO conflicts_found ({', '.join(R.COLUMNS)}) {sql}"),
                                   params).rowcount
        connection.execute(sa.text("ANALYZE conflicts_found"))  # a temp table has no statistics until then
        opened, resolved = _reconcile(connection, check, layer, params, run_id)
        connection.execute(sa.text("TRUNCATE conflicts_found"))
        summary.checks += 1
        summary.found += found
        summary.opened += opened
        summary.resolved += resolved
        summary.by_rule[check.rule] = summary.by_rule.get(check.rule, 0) + found
    _finish(connection, run_id, summary)


def recompute_all(engine: sa.Engine, rule_ids: list[str] | None = None) -> Summary:
    """Check everything (a full recompute), in one transaction."""
    started = time.perf_counter()
    summary = Summary(mode="full")
    with engine.begin() as connection:
        _run_checks(connection, [(c, None) for c in R.checks(rule_ids)], {}, summary, started)
    summary.seconds = time.perf_counter() - started
    return summary


def changed_features(connection: sa.Connection, layer: str, etl_run_id: int) -> list[int]:
    """Ids of the features of ``layer`` an ETL run inserted, updated or retired."""
    # one scan of the layer for both (a million parcels: 0.4 s a scan)
    return connection.execute(sa.text(f"""
        SELECT fid FROM data."{layer}"
        WHERE run_id = :r OR retired_at >= (SELECT started_at FROM etl.runs WHERE run_id = :r)
        UNION SELECT fid FROM history."{layer}" WHERE ended_by_run = :r"""),
        {"r": etl_run_id}).scalars().all()


def _live_count(connection: sa.Connection, layer: str, etl_run_id: int | None = None) -> int:
    """Live features of the layer: as the ETL run recorded them when it has (no count of a million rows)."""
    if etl_run_id is not None:
        recorded = connection.execute(sa.text("SELECT features FROM etl.runs WHERE run_id = :r AND layer = :l"),
                                      {"r": etl_run_id, "l": layer}).scalar()
        if recorded is not None:
            return recorded
    return connection.execute(sa.text(f'SELECT count(*) FROM data."{layer}" WHERE retired_at IS NULL')).scalar_one()


def plan_for(layer: str, ids: list[int], live: int) -> list[tuple[R.Check, str | None]]:
    """Which checks to run after ``layer`` changed, each restricted to the changed features or in full."""
    plan: list[tuple[R.Check, str | None]] = []
    incremental = len(ids) <= FULL_SHARE * max(live, 1)
    for check in R.checks():
        if layer in check.layers:
            plan.append((check, layer if incremental else None))
        elif layer in check.context:
            plan.append((check, None))
    return plan


def recompute_after_run(engine: sa.Engine, layer: str, etl_run_id: int, changed_any: bool = True) -> Summary | None:
    """Incremental recompute for the features one ETL run changed (None when no rule reads the layer).

    ``changed_any=False`` (the run inserted, updated and retired nothing) spares the search for changed
    features, a scan of the layer and its history (about 1 s for a million parcels)."""
    if layer not in R.layers_read():
        return None
    started = time.perf_counter()
    summary = Summary(mode="incremental", layer=layer, etl_run_id=etl_run_id)
    with engine.begin() as connection:
        ids = changed_features(connection, layer, etl_run_id) if changed_any else []
        summary.changed = len(ids)
        if not ids:
            summary.mode = "nothing changed"
        plan = plan_for(layer, ids, _live_count(connection, layer, etl_run_id)) if ids else []
        if plan and all(scope is None for check, scope in plan if layer in check.layers):
            summary.mode = "full (large change)"
        _run_checks(connection, plan, {layer: ids}, summary, started)
    summary.seconds = time.perf_counter() - started
    return summary
