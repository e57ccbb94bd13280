"""quarantine retention: old runs' rejects and issues are pruned, their counts stay in the run log

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

Every run adds its rejects (with the raw records) and its issues; a first load of the million-parcel bench file
adds some 47,000 rejects and 36 MB. A schedule that loads every night would grow the quarantine without end. A
run's rejects and issues are now pruned once it is older than the last N succeeded runs of its job
(gisplatform.load.retention); ``etl.runs.quarantine_pruned_at`` says when. Rejects that a kept run's
``etl.rejects_again`` (or ``copied_from``) still refers to keep their rows, for the raw records, but the views no
longer show them as their own run's: a pruned run shows no rejects at all.
"""
from alembic import op
import sqlalchemy as sa

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# etl.all_rejects as in 0009, with the rejects of pruned runs (kept only for later runs' references) left out
ALL_REJECTS_VIEW = """
CREATE OR REPLACE VIEW etl.all_rejects AS
SELECT r.id, r.run_id, r.layer, r.file, r.row_number, r.natural_key, r.rule, r.field, r.message,
       coalesce(r.raw_record, o.raw_record) AS raw_record, r.source_hash, coalesce(r.copied_from, r.id) AS original
FROM etl.rejects r LEFT JOIN etl.rejects o ON o.id = r.copied_from
WHERE NOT EXISTS (SELECT 1 FROM etl.runs p WHERE p.run_id = r.run_id AND p.quarantine_pruned_at IS NOT NULL)
UNION ALL
SELECT o.id, a.run_id, a.layer, u.file, u.row_number, u.natural_key, u.rule, o.field,
       coalesce(u.message, o.message), o.raw_record, u.source_hash, o.id
FROM etl.rejects_again a
     CROSS JOIN LATERAL unnest(a.files, a.row_numbers, a.originals, a.rules, a.source_hashes, a.natural_keys,
                               a.messages) AS u(file, row_number, original, rule, source_hash, natural_key, message)
     JOIN etl.rejects o ON o.id = u.original
"""
OLD_ALL_REJECTS_VIEW = ALL_REJECTS_VIEW.replace(
    "WHERE NOT EXISTS (SELECT 1 FROM etl.runs p WHERE p.run_id = r.run_id AND p.quarantine_pruned_at IS NOT NULL)\n",
    "")

# api.etl_runs as in 0005, with when the run's quarantine was pruned (the status page says so)
RUNS_VIEW = """
CREATE OR REPLACE VIEW api.etl_runs AS
SELECT run_id, job, layer, mode, trigger, attempt, status, started_at, finished_at,
       extract(epoch FROM finished_at - started_at)::double precision AS seconds,
       read, inserted, updated, unchanged, rejected, retired, repaired, warnings, features, inbox_file, error,
       quarantine_pruned_at
FROM etl.runs
"""
OLD_RUNS_VIEW = RUNS_VIEW.replace(",\n       quarantine_pruned_at", "").replace("CREATE OR REPLACE", "CREATE")


def upgrade() -> None:
    op.add_column("runs", sa.Column("quarantine_pruned_at", sa.DateTime(timezone=True), nullable=True,
                                    comment="when the run's rejects and issues were pruned (retention); its counts "
                                            "and report stay"), schema="etl")
    op.execute(ALL_REJECTS_VIEW)
    op.execute(RUNS_VIEW)


def downgrade() -> None:
    op.execute(OLD_ALL_REJECTS_VIEW)
    op.execute("DROP VIEW api.etl_runs")  # a column cannot be dropped from a view by replacing it
    op.execute(OLD_RUNS_VIEW)
    op.execute("GRANT SELECT ON api.etl_runs TO gisplatform_api")
    op.drop_column("runs", "quarantine_pruned_at", schema="etl")
