"""scheduling: attempts, inbox files and skipped runs in the run log; run-status views for the status page

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

* ``etl.runs`` gains ``attempt`` (1 for the first try, 2.. for retries), ``inbox_file`` and ``inbox_checksum``
  (a file taken from the inbox, and the SHA-256 of it with its side-car files: a file already loaded is not
  loaded twice) and the status ``skipped`` (a scheduled run that found the layer busy: the log shows it was due).
* ``api.etl_runs`` and ``api.etl_rejects``: what the read-only status page beside the portal may show. No raw
  records, and no message of a reject on a personal field (the message might quote the value).
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Frozen here (a migration must not change when layers/*.yml does): the personal fields of the layers at 0005.
PERSONAL_FIELDS = ("certificate_serial", "holder_name", "user_address", "user_birth_date", "user_id_number",
                   "user_name")

RUNS_VIEW = """
CREATE VIEW api.etl_runs AS
SELECT run_id, job, layer, mode, trigger, attempt, status, started_at, finished_at,
       extract(epoch FROM finished_at - started_at)::double precision AS seconds,
       read, inserted, updated, unchanged, rejected, retired, repaired, warnings, features, inbox_file, error
FROM etl.runs
"""

REJECTS_VIEW = f"""
CREATE VIEW api.etl_rejects AS
SELECT id, run_id, layer, file, row_number, natural_key, rule, field,
       CASE WHEN field IN ({", ".join(f"'{f}'" for f in PERSONAL_FIELDS)}) THEN NULL ELSE message END AS message
FROM etl.rejects
"""


def upgrade() -> None:
    op.add_column("runs", sa.Column("attempt", sa.Integer(), nullable=False, server_default="1",
                                    comment="1 for the first try, 2.. for retries"), schema="etl")
    op.add_column("runs", sa.Column("inbox_file", sa.Text(), comment="file taken from the inbox"), schema="etl")
    op.add_column("runs", sa.Column("inbox_checksum", sa.Text(),
                                    comment="SHA-256 of the inbox file with its side-cars"), schema="etl")
    op.create_index("runs_inbox_checksum_idx", "runs", ["inbox_checksum"], schema="etl")
    op.create_index("runs_job_idx", "runs", ["job", "run_id"], schema="etl")
    op.drop_constraint("runs_status", "runs", schema="etl")
    op.create_check_constraint("runs_status", "runs", "status in ('running', 'succeeded', 'failed', 'skipped')",
                               schema="etl")
    op.execute(RUNS_VIEW)
    op.execute(REJECTS_VIEW)
    op.execute("GRANT SELECT ON api.etl_runs, api.etl_rejects TO gisplatform_api")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS api.etl_rejects")
    op.execute("DROP VIEW IF EXISTS api.etl_runs")
    op.execute("DELETE FROM etl.runs WHERE status = 'skipped'")
    op.drop_constraint("runs_status", "runs", schema="etl")
    op.create_check_constraint("runs_status", "runs", "status in ('running', 'succeeded', 'failed')", schema="etl")
    op.drop_index("runs_job_idx", "runs", schema="etl")
    op.drop_index("runs_inbox_checksum_idx", "runs", schema="etl")
    for column in ("inbox_checksum", "inbox_file", "attempt"):
        op.drop_column("runs", column, schema="etl")
