"""After a run, the layer's table is vacuumed when runs have left as many dead row versions as autovacuum would
tolerate (50 + a fifth of the table), whatever the server's autovacuum does; never after a first load."""
from __future__ import annotations

import sqlalchemy as sa

from gisplatform.etl.jobs import one_off_job
from gisplatform.etl.runner import run_job
from gisplatform.layers import get_layer
from gisplatform.load.upkeep import dead_versions_since_vacuum
from tests.builders import parcel, parcels, write_parcels


def load(path):
    return run_job(one_off_job("cadastral_parcels", path, 9215, "auto", "full"))


def vacuum_count(db) -> int:
    with db.connect() as connection:
        return connection.execute(sa.text(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'data.cadastral_parcels'::regclass")).scalar()


def test_runs_that_left_many_dead_versions_are_followed_by_a_vacuum(db, tmp_path):
    before = vacuum_count(db) or 0  # (the table outlives the other tests' runs: counted from here)
    source = parcels(100)
    first = load(write_parcels(tmp_path / "v1.gpkg", source))
    assert first.inserted == 100 and "vacuum (after commit)" not in first.phases and vacuum_count(db) == before

    source[0] = parcel(0, DTPHAPLY=610.0)  # one feature changed: one dead version, far below 50 + 20
    small = load(write_parcels(tmp_path / "v2.gpkg", source))
    assert small.updated == 1 and "vacuum (after commit)" not in small.phases and vacuum_count(db) == before

    changed = [parcel(i, DTPHAPLY=620.0 + i) for i in range(75)] + source[75:]
    large = load(write_parcels(tmp_path / "v3.gpkg", changed))  # 1 + 75 dead since the table was made > 70
    assert large.updated == 75 and "vacuum (after commit)" in large.phases and vacuum_count(db) == before + 1
    with db.connect() as connection:
        assert dead_versions_since_vacuum(connection, get_layer("cadastral_parcels")) == (0, 100.0)
