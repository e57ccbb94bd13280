"""rejects remember the source hash of the row they reject

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

A re-run finds the rows it rejected last time, unchanged, by their source hash (like the rows it loaded), and
copies their reasons instead of reading, checking and staging them again (gisplatform.etl.runner). Rejects
written before this migration have no hash: their rows are checked again once.
"""
from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rejects", sa.Column("source_hash", sa.BigInteger(), nullable=True,
                                       comment="hash of the source row as read (same seed as the layer's rows)"),
                  schema="etl")


def downgrade() -> None:
    op.drop_column("rejects", "source_hash", schema="etl")
