"""A layer's table after a run: vacuumed when autovacuum would have, on a server where it is off or behind.

Every feature a run updates or retires leaves a dead row version in the layer's table (the history keeps the
version itself); only VACUUM makes the space reusable. With autovacuum off (as on this platform's test servers)
or lagging behind, dead versions pile up run after run, and every scan of the layer reads them: a re-run's read
of the live features, the API's counts and tiles. So after each run the layer is vacuumed (and analyzed) once the
versions that runs left dead since its last vacuum pass autovacuum's own default threshold, 50 rows plus a fifth
of the table. Inserts leave nothing dead: a first load is never followed by a vacuum.

The dead versions are counted from the run log (updated + retired of each succeeded run since the last vacuum),
not from ``pg_stat_user_tables.n_dead_tup``: the statistics a run's backend collects reach the shared counters
only when it is next idle, up to a second after the commit, too late to decide on.
"""
from __future__ import annotations

import logging

import sqlalchemy as sa

from gisplatform.layers import Layer

LOGGER = logging.getLogger(__name__)
VACUUM_BASE_ROWS = 50  # autovacuum_vacuum_threshold's default
VACUUM_SCALE = 0.2  # autovacuum_vacuum_scale_factor's default


def dead_versions_since_vacuum(connection: sa.Connection, layer: Layer) -> tuple[int, float]:
    """(row versions runs left dead since the table's last vacuum, rows the planner believes the table has)."""
    rows, last_vacuum = connection.execute(sa.text(
        "SELECT c.reltuples, greatest(s.last_vacuum, s.last_autovacuum) FROM pg_class c "
        "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = CAST(:table AS regclass)"),
        {"table": layer.qualified_table}).one()
    dead = connection.execute(sa.text(
        "SELECT coalesce(sum(updated + retired), 0) FROM etl.runs WHERE layer = :layer AND status = 'succeeded' "
        "AND finished_at > coalesce(CAST(:since AS timestamptz), '-infinity')"),
        {"layer": layer.name, "since": last_vacuum}).scalar_one()
    return int(dead), max(float(rows), 0.0)


def vacuum_if_due(engine: sa.Engine, layer: Layer) -> bool:
    """VACUUM (ANALYZE) the layer's table when runs left more dead versions than autovacuum would tolerate;
    whether it did. After the commit: a failure is logged and leaves the load as it is."""
    try:
        with engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")  # VACUUM cannot run in a block
            dead, rows = dead_versions_since_vacuum(connection, layer)
            if dead <= VACUUM_BASE_ROWS + VACUUM_SCALE * rows:
                return False
            connection.execute(sa.text(f"VACUUM (ANALYZE) {layer.qualified_table}"))
            LOGGER.info("vacuumed %s: %d row versions left dead by runs since its last vacuum", layer.name, dead)
            return True
    except sa.exc.SQLAlchemyError:
        LOGGER.exception("vacuum of %s after a run failed; the run's data stands", layer.name)
        return False
