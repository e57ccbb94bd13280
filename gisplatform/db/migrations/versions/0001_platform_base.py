"""Platform base: PostGIS, schemas, and VN-2000 Lạng Sơn (EPSG:9215) in spatial_ref_sys.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMAS = ("data", "history", "codes", "etl", "staging")

# Debian's PostGIS 3.3 has no row for the provincial VN-2000 TM-3 CRSs. The proj4text MUST carry the EPSG:6960
# datum shift with position-vector rotation signs; a row without +towgs84 silently shifts data by ~200 m.
# srtext is PROJ's WKT1 for EPSG:9215 (auth_name/auth_srid let PostGIS ask PROJ for EPSG:6960 itself).
SRID_9215_WKT = (
    'PROJCS["VN-2000 / TM-3 107-15",GEOGCS["VN-2000",DATUM["Vietnam_2000",SPHEROID["WGS 84",6378137,298.257223563,'
    'AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6756"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],'
    'UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AUTHORITY["EPSG","4756"]],'
    'PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",107.25],'
    'PARAMETER["scale_factor",0.9999],PARAMETER["false_easting",500000],PARAMETER["false_northing",0],'
    'UNIT["metre",1,AUTHORITY["EPSG","9001"]],AXIS["Easting",EAST],AXIS["Northing",NORTH],AUTHORITY["EPSG","9215"]]'
)
SRID_9215_PROJ4 = (
    "+proj=tmerc +lat_0=0 +lon_0=107.25 +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 "
    "+towgs84=-191.90441429,-39.30318279,-111.45032835,0.00928836,-0.01975479,0.00427372,0.252906278 "
    "+units=m +no_defs"
)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    for schema in SCHEMAS:
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    op.execute(
        "INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text) "
        f"VALUES (9215, 'EPSG', 9215, $wkt${SRID_9215_WKT}$wkt$, '{SRID_9215_PROJ4}') "
        "ON CONFLICT (srid) DO UPDATE SET auth_name = EXCLUDED.auth_name, auth_srid = EXCLUDED.auth_srid, "
        "srtext = EXCLUDED.srtext, proj4text = EXCLUDED.proj4text"
    )


def downgrade() -> None:
    for schema in reversed(SCHEMAS):
        op.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    op.execute("DELETE FROM spatial_ref_sys WHERE srid = 9215")
