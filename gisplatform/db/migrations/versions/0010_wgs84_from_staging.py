"""the WGS84 copy of a geometry is written by the merge, computed while the rows are staged

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

Until now ``geom_wgs84`` of every layer and history table was a stored generated column
(``ST_Transform(geom, 4326)``), so PostgreSQL computed it in the merge's INSERT, on the run's one backend, after
every row had been read: 6-7 s of a first load of a million parcels, the largest single part of its merge.
The run's staging table now computes it instead (gisplatform.load.staging) as each batch is copied in, while
Python reads and checks the next batch, and the merge copies it along with ``geom``.

A generated column cannot be given a value, so the copy becomes a plain column. Triggers keep it right for any
other writer: an INSERT without it gets it computed, and an UPDATE that changes ``geom`` without giving a new
copy gets it recomputed. The merge always gives both, so the triggers' conditions (evaluated without calling
the function) are all it costs.

Downgrade: PostgreSQL 15 cannot give an existing column a generation expression again (re-creating the column
would mean dropping the API views and indexes built on it), so the column stays plain and the triggers stay;
code of revision 0009 writes ``geom`` only, and the triggers compute the copy as the expression did.
"""
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

WGS84_SRID = 4326  # frozen here (gisplatform.layers.WGS84_SRID)

FILL_FUNCTION = f"""
CREATE OR REPLACE FUNCTION etl.fill_geom_wgs84() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.geom_wgs84 := ST_Transform(NEW.geom, {WGS84_SRID});
    RETURN NEW;
END $$"""


def _tables_with_generated_copy() -> list[tuple[str, str]]:
    """(schema, table) of every layer and history table whose ``geom_wgs84`` is still generated."""
    rows = op.get_bind().exec_driver_sql(
        "SELECT n.nspname, c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('data', 'history') "
        "AND c.relkind = 'r' AND a.attname = 'geom_wgs84' AND a.attgenerated = 's' ORDER BY 1, 2")
    return [(schema, table) for schema, table in rows]


def create_triggers(schema: str, table: str) -> None:
    """The triggers that keep ``geom_wgs84`` of one table right for writers that do not give it."""
    qualified = f'{schema}."{table}"'
    op.execute(f"CREATE TRIGGER fill_geom_wgs84_on_insert BEFORE INSERT ON {qualified} FOR EACH ROW "
               "WHEN (NEW.geom_wgs84 IS NULL) EXECUTE FUNCTION etl.fill_geom_wgs84()")
    op.execute(f"CREATE TRIGGER fill_geom_wgs84_on_update BEFORE UPDATE OF geom ON {qualified} FOR EACH ROW "
               "WHEN (NEW.geom_wgs84 IS NULL OR (NEW.geom IS DISTINCT FROM OLD.geom "
               "AND NEW.geom_wgs84 IS NOT DISTINCT FROM OLD.geom_wgs84)) EXECUTE FUNCTION etl.fill_geom_wgs84()")


def upgrade() -> None:
    op.execute(FILL_FUNCTION)
    for schema, table in _tables_with_generated_copy():
        op.execute(f'ALTER TABLE {schema}."{table}" ALTER COLUMN geom_wgs84 DROP EXPRESSION')
        create_triggers(schema, table)


def downgrade() -> None:
    pass  # see the module's docstring: the column stays plain, kept right by the triggers
