"""Quarantine retention: the rejects and issues of old runs are pruned; the run log keeps their counts.

Every run writes its rejects (with the raw records) and its issues; a first load of a million parcels writes some
47,000 rejects. A job loaded every night would grow the quarantine without end, so a run's rejects and issues
are deleted once it is older than the last N succeeded runs of its job (``[retention] quarantine_runs`` in
gisplatform.toml, 20 by default, 0 = keep everything). Its row in ``etl.runs`` stays, with the counts and the
report's per-rule examples, and ``quarantine_pruned_at`` says when.

Three things are never pruned:
* the warnings and repairs of feature versions still live: a run records them once, when it writes the version
  (an unchanged row is not checked again), so they stay until a later version replaces it;
* the last succeeded run of each job: the next run rejects its unchanged rows again from their reasons
  (gisplatform.etl.execute), so N is at least 1;
* every reject a kept run refers to (``etl.rejects_again.originals``, ``copied_from``): it holds the raw record.
  Such a row stays where it is; the views no longer list it under its pruned run (migration 0011), and it goes
  once nothing refers to it any more.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa

from gisplatform.config import settings
from gisplatform.layers import LayerDefinitionError, get_layer
from gisplatform.validate.sets import key_text

LOGGER = logging.getLogger(__name__)
DEFAULT_KEEP_RUNS = 20


@dataclass(frozen=True)
class PrunedRun:
    run_id: int
    job: str
    layer: str
    reasons: int  # reasons removed from the quarantine (rejects, and rejects-again entries)
    issues: int  # warnings and repairs removed
    kept: int  # rejects kept because a later run refers to them


def keep_runs_setting() -> int:
    """``[retention] quarantine_runs``: how many succeeded runs of each job keep their quarantine (0 = all)."""
    section = settings().section("retention")
    value = section.get("quarantine_runs", DEFAULT_KEEP_RUNS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{settings().config_file}: [retention] quarantine_runs = {value!r}: give a whole number "
                         "of runs to keep per job (0 keeps every run's rejects and issues)")
    return value


def prune_quarantine(connection: sa.Connection, keep_runs: int, job: str | None = None) -> list[PrunedRun]:
    """Prune the rejects and issues of succeeded runs older than the last ``keep_runs`` of their job (of ``job``
    only, if given), in the caller's transaction. ``keep_runs`` 0 prunes nothing."""
    if keep_runs < 0:
        raise ValueError("keep_runs must be 0 (keep everything) or more")
    if keep_runs == 0:
        return []
    runs = connection.execute(sa.text("""
        SELECT run_id, job, layer FROM (
            SELECT run_id, job, layer, quarantine_pruned_at,
                   row_number() OVER (PARTITION BY job, layer ORDER BY run_id DESC) AS newer
            FROM etl.runs WHERE status = 'succeeded' AND (CAST(:job AS text) IS NULL OR job = :job)) r
        WHERE newer > :keep AND quarantine_pruned_at IS NULL ORDER BY run_id"""),
                              {"keep": keep_runs, "job": job}).all()
    if not runs:  # the usual case after a run: one cheap query
        return []
    connection.execute(sa.text("CREATE TEMP TABLE pruning (run_id bigint, job text, layer text) ON COMMIT DROP"))
    connection.execute(sa.text("INSERT INTO pruning VALUES (:run_id, :job, :layer)"),
                       [{"run_id": r, "job": j, "layer": name} for r, j, name in runs])
    # what kept runs still point at; a pruned run's leftovers from an earlier pruning are looked at again too
    connection.execute(sa.text("""
        CREATE TEMP TABLE still_referenced ON COMMIT DROP AS
        SELECT DISTINCT u.id FROM etl.rejects_again a CROSS JOIN LATERAL unnest(a.originals) AS u(id)
        WHERE NOT EXISTS (SELECT 1 FROM pruning p WHERE p.run_id = a.run_id)
        UNION
        SELECT r.copied_from FROM etl.rejects r
        WHERE r.copied_from IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pruning p WHERE p.run_id = r.run_id)"""))
    # the runs whose leftovers are looked at: those pruned now, and those pruned before
    connection.execute(sa.text("""
        CREATE TEMP TABLE pruned ON COMMIT DROP AS
        SELECT run_id, layer FROM pruning
        UNION SELECT run_id, layer FROM etl.runs WHERE quarantine_pruned_at IS NOT NULL"""))
    removed = _per_run(connection, """
        WITH gone AS (
            DELETE FROM etl.rejects r USING pruned p
            WHERE r.run_id = p.run_id AND NOT EXISTS (SELECT 1 FROM still_referenced s WHERE s.id = r.id)
            RETURNING r.run_id)
        SELECT run_id, count(*) FROM gone GROUP BY run_id""")
    again = _per_run(connection, """
        WITH gone AS (DELETE FROM etl.rejects_again a USING pruning p WHERE a.run_id = p.run_id
                      RETURNING a.run_id, cardinality(a.rules) AS reasons)
        SELECT run_id, sum(reasons) FROM gone GROUP BY run_id""")
    issues: dict[int, int] = {}
    for (layer_name,) in connection.execute(sa.text("SELECT DISTINCT layer FROM pruned")).all():
        for run_id, n in _prune_issues(connection, layer_name).items():
            issues[run_id] = issues.get(run_id, 0) + n
    kept = _per_run(connection, "SELECT r.run_id, count(*) FROM etl.rejects r JOIN pruning p USING (run_id) "
                                "GROUP BY r.run_id")
    connection.execute(sa.text("UPDATE etl.runs r SET quarantine_pruned_at = now() FROM pruning p "
                               "WHERE r.run_id = p.run_id"))
    connection.execute(sa.text("DROP TABLE pruning, still_referenced, pruned"))
    return [PrunedRun(run_id, name, layer, removed.get(run_id, 0) + again.get(run_id, 0), issues.get(run_id, 0),
                      kept.get(run_id, 0)) for run_id, name, layer in runs]


def _prune_issues(connection: sa.Connection, layer_name: str) -> dict[int, int]:
    """Delete the issues of the layer's pruned runs, except those of feature versions still live: a run records a
    feature's warnings once, when it writes that version, and they hold until another version replaces it."""
    try:
        layer = get_layer(layer_name)
    except LayerDefinitionError:  # no longer defined (or a raster layer): no live features to keep warnings for
        still_live = ""
    else:
        # an anti-join, hashed or merged as its size needs (NOT IN over a big subquery is not hashed once it
        # outgrows work_mem: it then scans the subquery once per issue)
        still_live = (f" AND NOT EXISTS (SELECT 1 FROM {layer.qualified_table} d WHERE d.run_id = i.run_id "
                      f"AND d.retired_at IS NULL AND {key_text('d', layer.natural_key)} = i.natural_key)")
    return _per_run(connection, f"""
        WITH gone AS (
            DELETE FROM etl.issues i USING pruned p
            WHERE i.run_id = p.run_id AND p.layer = :layer{still_live}
            RETURNING i.run_id)
        SELECT run_id, count(*) FROM gone GROUP BY run_id""", layer=layer_name)


def _per_run(connection: sa.Connection, sql: str, **params) -> dict[int, int]:
    return {run_id: int(n) for run_id, n in connection.execute(sa.text(sql), params)}


def prune_after_run(engine: sa.Engine, job: str) -> list[PrunedRun]:
    """After a job's run committed (the layer's lock still held): prune the job's runs that fell out of the
    retention. A failure is logged and leaves the run, and the quarantine, as they are."""
    try:
        keep = keep_runs_setting()
        with engine.begin() as connection:
            pruned = prune_quarantine(connection, keep, job)
    except (sa.exc.SQLAlchemyError, ValueError):
        LOGGER.exception("pruning the quarantine of job %s after its run failed; nothing was pruned", job)
        return []
    for run in pruned:
        LOGGER.info("quarantine of run %s (%s) pruned: %d reasons, %d issues; %d rejects kept for later runs",
                    run.run_id, run.job, run.reasons, run.issues, run.kept)
    return pruned
