"""Public API views (public fields only), the catalogue view, the read-only API role; live feature counts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

The view DDL is frozen from `python -m gisplatform.publish.views` (layers/*.yml at this revision); a test checks
the views in the database still carry exactly each layer's public fields.
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATEMENTS = [
    'CREATE SCHEMA IF NOT EXISTS api',
    'CREATE OR REPLACE VIEW api.admin_units AS\n  SELECT fid AS id, "code", "name", "level", "district_code", "valid_from", "valid_to", version, version_start AS updated, geom, geom_wgs84\n  FROM data.admin_units WHERE retired_at IS NULL',
    'CREATE OR REPLACE VIEW api.admin_units_versions AS\n  SELECT fid AS id, "code", "name", "level", "district_code", "valid_from", "valid_to", version, version_start, retired_at AS version_end, geom, geom_wgs84\n  FROM data.admin_units\n  UNION ALL\n  SELECT fid AS id, "code", "name", "level", "district_code", "valid_from", "valid_to", version, version_start, version_end, geom, geom_wgs84\n  FROM history.admin_units',
    'CREATE OR REPLACE VIEW api.cadastral_parcels AS\n  SELECT fid AS id, "parcel_id", "commune_code", "sheet_commune_code", "map_sheet_no", "parcel_no", "area_m2", "legal_area_m2", "land_use_codes", "land_use_code", "use_term", "origin", "parcel_address", "user_type", "organisation_name", "record_date", version, version_start AS updated, geom, geom_wgs84\n  FROM data.cadastral_parcels WHERE retired_at IS NULL',
    'CREATE OR REPLACE VIEW api.cadastral_parcels_versions AS\n  SELECT fid AS id, "parcel_id", "commune_code", "sheet_commune_code", "map_sheet_no", "parcel_no", "area_m2", "legal_area_m2", "land_use_codes", "land_use_code", "use_term", "origin", "parcel_address", "user_type", "organisation_name", "record_date", version, version_start, retired_at AS version_end, geom, geom_wgs84\n  FROM data.cadastral_parcels\n  UNION ALL\n  SELECT fid AS id, "parcel_id", "commune_code", "sheet_commune_code", "map_sheet_no", "parcel_no", "area_m2", "legal_area_m2", "land_use_codes", "land_use_code", "use_term", "origin", "parcel_address", "user_type", "organisation_name", "record_date", version, version_start, version_end, geom, geom_wgs84\n  FROM history.cadastral_parcels',
    'CREATE OR REPLACE VIEW api.mining_licences AS\n  SELECT fid AS id, "licence_no", "issue_date", "authority", "holder_type", "holder_public", "holder_tax_code", "mineral", "mineral_group", "mine_name", "commune_code", "area_ha", "reserves_geological", "reserves_mineable", "reserves_unit", "capacity", "capacity_unit", "method", "lowest_level_m", "term_years", "expiry_date", "status", "corner_crs", version, version_start AS updated, geom, geom_wgs84\n  FROM data.mining_licences WHERE retired_at IS NULL',
    'CREATE OR REPLACE VIEW api.mining_licences_versions AS\n  SELECT fid AS id, "licence_no", "issue_date", "authority", "holder_type", "holder_public", "holder_tax_code", "mineral", "mineral_group", "mine_name", "commune_code", "area_ha", "reserves_geological", "reserves_mineable", "reserves_unit", "capacity", "capacity_unit", "method", "lowest_level_m", "term_years", "expiry_date", "status", "corner_crs", version, version_start, retired_at AS version_end, geom, geom_wgs84\n  FROM data.mining_licences\n  UNION ALL\n  SELECT fid AS id, "licence_no", "issue_date", "authority", "holder_type", "holder_public", "holder_tax_code", "mineral", "mineral_group", "mine_name", "commune_code", "area_ha", "reserves_geological", "reserves_mineable", "reserves_unit", "capacity", "capacity_unit", "method", "lowest_level_m", "term_years", "expiry_date", "status", "corner_crs", version, version_start, version_end, geom, geom_wgs84\n  FROM history.mining_licences',
    'CREATE OR REPLACE VIEW api.water_licences AS\n  SELECT fid AS id, "licence_no", "point_no", "issue_date", "authority", "holder_type", "holder_public", "work_name", "commune_code", "water_type", "source_name", "purpose", "max_rate_m3_day", "well_depth_m", "aquifer", "term_years", "expiry_date", "status", "point_crs", version, version_start AS updated, geom, geom_wgs84\n  FROM data.water_licences WHERE retired_at IS NULL',
    'CREATE OR REPLACE VIEW api.water_licences_versions AS\n  SELECT fid AS id, "licence_no", "point_no", "issue_date", "authority", "holder_type", "holder_public", "work_name", "commune_code", "water_type", "source_name", "purpose", "max_rate_m3_day", "well_depth_m", "aquifer", "term_years", "expiry_date", "status", "point_crs", version, version_start, retired_at AS version_end, geom, geom_wgs84\n  FROM data.water_licences\n  UNION ALL\n  SELECT fid AS id, "licence_no", "point_no", "issue_date", "authority", "holder_type", "holder_public", "work_name", "commune_code", "water_type", "source_name", "purpose", "max_rate_m3_day", "well_depth_m", "aquifer", "term_years", "expiry_date", "status", "point_crs", version, version_start, version_end, geom, geom_wgs84\n  FROM history.water_licences',
    'CREATE OR REPLACE VIEW api.water_protection_corridors AS\n  SELECT fid AS id, "source_code", "source_name", "water_class", "width_m", "basis", "derived", version, version_start AS updated, geom, geom_wgs84\n  FROM data.water_protection_corridors WHERE retired_at IS NULL',
    'CREATE OR REPLACE VIEW api.water_protection_corridors_versions AS\n  SELECT fid AS id, "source_code", "source_name", "water_class", "width_m", "basis", "derived", version, version_start, retired_at AS version_end, geom, geom_wgs84\n  FROM data.water_protection_corridors\n  UNION ALL\n  SELECT fid AS id, "source_code", "source_name", "water_class", "width_m", "basis", "derived", version, version_start, version_end, geom, geom_wgs84\n  FROM history.water_protection_corridors',
    'CREATE OR REPLACE VIEW api.water_sources AS\n  SELECT fid AS id, "source_code", "name", "water_class", "basin", "management_level", "urban", "needs_corridor", "water_supply", version, version_start AS updated, geom, geom_wgs84\n  FROM data.water_sources WHERE retired_at IS NULL',
    'CREATE OR REPLACE VIEW api.water_sources_versions AS\n  SELECT fid AS id, "source_code", "name", "water_class", "basin", "management_level", "urban", "needs_corridor", "water_supply", version, version_start, retired_at AS version_end, geom, geom_wgs84\n  FROM data.water_sources\n  UNION ALL\n  SELECT fid AS id, "source_code", "name", "water_class", "basin", "management_level", "urban", "needs_corridor", "water_supply", version, version_start, version_end, geom, geom_wgs84\n  FROM history.water_sources',
    "CREATE OR REPLACE VIEW api.catalogue AS\n  SELECT DISTINCT ON (layer) layer, run_id, job, finished_at, read, inserted, updated, unchanged, rejected,\n         retired, features, source_checksum\n  FROM etl.runs WHERE status = 'succeeded'\n  ORDER BY layer, run_id DESC",
    "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gisplatform_api') THEN CREATE ROLE gisplatform_api LOGIN; END IF; END $$",
    'GRANT USAGE ON SCHEMA api TO gisplatform_api',
    'GRANT SELECT ON ALL TABLES IN SCHEMA api TO gisplatform_api',
    'ALTER DEFAULT PRIVILEGES IN SCHEMA api GRANT SELECT ON TABLES TO gisplatform_api',
    'GRANT USAGE ON SCHEMA public TO gisplatform_api',
]


def upgrade() -> None:
    op.add_column("runs", sa.Column("features", sa.BigInteger(), nullable=True,
                                    comment="live features of the layer after the run"), schema="etl")
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS api CASCADE")
    op.drop_column("runs", "features", schema="etl")
