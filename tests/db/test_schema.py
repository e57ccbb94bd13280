"""The migrations give exactly the schema the layer definitions describe, and VN-2000 transforms right in PostGIS."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from gisplatform.db import bootstrap, migrate
from gisplatform.layers import load_layers

# shared/domain §1.6: EPSG:9215 → EPSG:4326 through EPSG:6960 (PROJ 9.5.1)
LANG_SON_POINTS = [
    (450_000.000, 2_420_000.000, 21.875849983, 106.768059047),
    (400_000.000, 2_380_000.000, 21.512486741, 106.286673196),
    (480_000.000, 2_460_000.000, 22.237714529, 107.057867808),
    (430_000.000, 2_410_000.000, 21.784855715, 106.574959540),
]


def test_migrations_match_the_layer_definitions(db):
    with db.connect() as connection:
        assert migrate.current_revision(connection) == migrate.head_revision()
        assert migrate.drift(connection) == []


def test_every_layer_has_current_and_history_tables_with_a_wgs84_copy(db):
    with db.connect() as connection:
        for layer in load_layers().values():
            columns = {r[0]: r[1] for r in connection.execute(sa.text(
                "SELECT f_geometry_column, srid FROM geometry_columns WHERE f_table_schema = 'data' "
                "AND f_table_name = :t"), {"t": layer.name})}
            assert columns == {"geom": 9215, "geom_wgs84": 4326}, layer.name
            assert connection.execute(sa.text("SELECT to_regclass(:t)"), {"t": layer.history_table}).scalar()


def test_the_wgs84_copy_is_computed_for_writers_that_do_not_give_it(db):
    """The merge writes geom_wgs84 itself (migration 0010); any other writer gets it computed by the triggers,
    as the generated column did: on insert, and when an update moves the geometry without giving a new copy."""
    copy_is_right = ("SELECT ST_AsBinary(geom_wgs84) = ST_AsBinary(ST_Transform(geom, 4326)) "
                     "FROM data.water_licences WHERE licence_no = 'T-1'")
    with db.connect() as connection, connection.begin() as transaction:
        connection.execute(sa.text(
            "INSERT INTO data.water_licences (licence_no, point_no, geom, row_hash, version, version_start, run_id) "
            "VALUES ('T-1', '1', ST_SetSRID(ST_MakePoint(450000, 2420000), 9215), 0, 1, now(), 0)"))
        assert connection.execute(sa.text(copy_is_right)).scalar() is True
        connection.execute(sa.text("UPDATE data.water_licences SET geom = ST_Translate(geom, 100, 0) "
                                   "WHERE licence_no = 'T-1'"))
        assert connection.execute(sa.text(copy_is_right)).scalar() is True
        connection.execute(sa.text("UPDATE data.water_licences SET geom = ST_Translate(geom, 100, 0), "
                                   "geom_wgs84 = ST_Transform(ST_Translate(geom, 100, 0), 4326) "
                                   "WHERE licence_no = 'T-1'"))  # as the merge writes: both given
        assert connection.execute(sa.text(copy_is_right)).scalar() is True
        transaction.rollback()


@pytest.mark.parametrize("e, n, lat, lon", LANG_SON_POINTS)
def test_postgis_transforms_lang_son_points_within_3_cm(db, e, n, lat, lon):
    with db.connect() as connection:
        error = connection.scalar(sa.text(
            "SELECT ST_Distance(ST_Transform(ST_SetSRID(ST_MakePoint(:e, :n), 9215), 4326)::geography, "
            "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography)"), dict(e=e, n=n, lat=lat, lon=lon))
    assert error < 0.03


def test_status_reports_a_ready_database(db):
    status = bootstrap.status()
    assert status.up_to_date and status.postgis.startswith("3.")
    assert status.srid_9215_error_m < 0.03


def test_code_tables_are_loaded_and_versioned(db):
    with db.connect() as connection:
        assert connection.scalar(sa.text(
            "SELECT count(*) FROM codes.admin_units WHERE valid_from = '2025-07-01'")) == 65
        assert connection.execute(sa.text(
            "SELECT code, valid_to FROM codes.land_use WHERE code IN ('BHK', 'HNK') ORDER BY code")).all() == [
            ("BHK", __import__("datetime").date(2024, 8, 1)), ("HNK", None)]


def test_api_views_carry_exactly_the_public_fields(db):
    """Personal fields are not in the API views at all; a changed layer needs a new migration."""
    from gisplatform.publish.views import public_columns

    with db.connect() as connection:
        for layer in load_layers().values():
            for view in (layer.name, f"{layer.name}_versions"):
                columns = connection.execute(sa.text(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'api' "
                    "AND table_name = :v ORDER BY ordinal_position"), {"v": view}).scalars().all()
                fields = [c for c in columns if c not in ("id", "version", "updated", "version_start", "version_end",
                                                          "geom", "geom_wgs84")]
                assert fields == public_columns(layer), (view, "run `python -m gisplatform.publish.views` and "
                                                                "freeze the DDL into a new migration")
                assert not {f.name for f in layer.personal_fields} & set(columns)


def test_the_api_role_cannot_read_the_base_tables(db):
    with db.connect() as connection:
        connection.execute(sa.text("SET ROLE gisplatform_api"))
        assert connection.execute(sa.text("SELECT count(*) FROM api.cadastral_parcels")).scalar() == 0
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            connection.execute(sa.text("SELECT user_name FROM data.cadastral_parcels"))
