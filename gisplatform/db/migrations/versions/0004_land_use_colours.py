"""land-use colours

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

layers/codes/land_use.csv gained a ``colour`` column (the land-use map colour of each code, used by the portal's
legend and parcel style). The rows themselves are reloaded from the CSV by ``gisplatform db init`` / ``db upgrade``
(sync_code_tables), as for every code table; the migration only adds the column.
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("land_use", sa.Column("colour", sa.Text(), nullable=True), schema="codes")


def downgrade() -> None:
    op.drop_column("land_use", "colour", schema="codes")
