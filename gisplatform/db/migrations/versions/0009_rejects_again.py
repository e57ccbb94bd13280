"""rows rejected again unchanged: one row per run that refers to the rejects holding their reasons

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

A re-run rejects again, for the same reasons, the rows the last run rejected that come again unchanged
(gisplatform.load.merge). Until now each of their reasons was copied into ``etl.rejects``: 47,000 rows and
18 MB for every re-run of the million-parcel bench file. Now a run records them in ``etl.rejects_again``: one row
of parallel arrays, one element per reason (file, row, the reject holding the reason and the raw record, its
rule, source hash and natural key, and the message where it is not that reject's own: copies of a duplicate key
name the other copies where they are now). The text arrays are compressed with LZ4 where the server has it.

``etl.all_rejects`` shows both kinds as one quarantine, one row per reason, with the raw record resolved: every
reader of a run's rejects (the CLI, the status page's ``api.etl_rejects``, the next run) reads it, or the arrays.
Rejects copied row by row before this revision stay as they are and show through the same view.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Frozen here, as in 0005 (a migration must not change when layers/*.yml does).
PERSONAL_FIELDS = ("certificate_serial", "holder_name", "user_address", "user_birth_date", "user_id_number",
                   "user_name")

ALL_REJECTS_VIEW = """
CREATE VIEW etl.all_rejects AS
SELECT r.id, r.run_id, r.layer, r.file, r.row_number, r.natural_key, r.rule, r.field, r.message,
       coalesce(r.raw_record, o.raw_record) AS raw_record, r.source_hash, coalesce(r.copied_from, r.id) AS original
FROM etl.rejects r LEFT JOIN etl.rejects o ON o.id = r.copied_from
UNION ALL
SELECT o.id, a.run_id, a.layer, u.file, u.row_number, u.natural_key, u.rule, o.field,
       coalesce(u.message, o.message), o.raw_record, u.source_hash, o.id
FROM etl.rejects_again a
     CROSS JOIN LATERAL unnest(a.files, a.row_numbers, a.originals, a.rules, a.source_hashes, a.natural_keys,
                               a.messages) AS u(file, row_number, original, rule, source_hash, natural_key, message)
     JOIN etl.rejects o ON o.id = u.original
"""

API_REJECTS_VIEW = f"""
CREATE VIEW api.etl_rejects AS
SELECT id, run_id, layer, file, row_number, natural_key, rule, field,
       CASE WHEN field IN ({", ".join(f"'{f}'" for f in PERSONAL_FIELDS)}) THEN NULL ELSE message END AS message
FROM etl.all_rejects
"""

OLD_API_REJECTS_VIEW = API_REJECTS_VIEW.replace("FROM etl.all_rejects", "FROM etl.rejects")

LZ4 = """
DO $$ BEGIN
    ALTER TABLE etl.rejects_again ALTER COLUMN files SET COMPRESSION lz4, ALTER COLUMN rules SET COMPRESSION lz4,
        ALTER COLUMN natural_keys SET COMPRESSION lz4, ALTER COLUMN messages SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    NULL;  -- a server built without LZ4 keeps the default (pglz)
END $$"""


def upgrade() -> None:
    op.create_table(
        "rejects_again",
        sa.Column("run_id", sa.BigInteger(), sa.ForeignKey("etl.runs.run_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("files", ARRAY(sa.Text()), nullable=False),
        sa.Column("row_numbers", ARRAY(sa.Integer()), nullable=False),
        sa.Column("originals", ARRAY(sa.BigInteger()), nullable=False,
                  comment="per reason: the reject (of an earlier run) holding it and the raw record"),
        sa.Column("rules", ARRAY(sa.Text()), nullable=False),
        sa.Column("source_hashes", ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("natural_keys", ARRAY(sa.Text()), nullable=False),
        sa.Column("messages", ARRAY(sa.Text()), nullable=False,
                  comment="per reason: this run's message where it is not the original's, else null"),
        schema="etl",
        comment="Rows a run rejected again unchanged, for the same reasons as before (see etl.all_rejects)",
    )
    op.execute(LZ4)
    op.execute(ALL_REJECTS_VIEW)
    op.execute("DROP VIEW api.etl_rejects")
    op.execute(API_REJECTS_VIEW)
    op.execute("GRANT SELECT ON api.etl_rejects TO gisplatform_api")


def downgrade() -> None:
    # back to one copied reject per reason: by file and row, each row's reasons in their originals' order
    op.execute("""
        INSERT INTO etl.rejects (run_id, layer, file, row_number, natural_key, rule, field, message, source_hash,
                                 copied_from)
        SELECT a.run_id, a.layer, u.file, u.row_number, u.natural_key, u.rule, o.field,
               coalesce(u.message, o.message), u.source_hash, o.id
        FROM etl.rejects_again a
             CROSS JOIN LATERAL unnest(a.files, a.row_numbers, a.originals, a.rules, a.source_hashes, a.natural_keys,
                                       a.messages)
                 AS u(file, row_number, original, rule, source_hash, natural_key, message)
             JOIN etl.rejects o ON o.id = u.original
        ORDER BY a.run_id, u.file, u.row_number, u.original""")
    op.execute("DROP VIEW api.etl_rejects")
    op.execute(OLD_API_REJECTS_VIEW)
    op.execute("GRANT SELECT ON api.etl_rejects TO gisplatform_api")
    op.execute("DROP VIEW etl.all_rejects")
    op.drop_table("rejects_again", schema="etl")
