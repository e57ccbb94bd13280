"""The vector-tile cache: tiles are cut once per ETL run of their layer, and a new run is never hidden by it.

A scratch database gets three parcels through a real ETL run; tiles are read through the provider with the
cache on; a second real run changes one parcel's land use and drops another, and the tile must show it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa

from gisplatform.db import engine as db_engine
from gisplatform.publish import tilecache
from tests.publish.test_features import api_database
from tests.publish.test_tiles import WMQ, decode_mvt, lonlat_to_tile, provider

PROJECT = Path(__file__).resolve().parents[2]

RUN_SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from gisplatform.db.bootstrap import init_database
    from gisplatform.etl.jobs import one_off_job
    from gisplatform.etl.runner import run_job
    from tests.builders import parcel, parcels, write_parcels

    tmp, step = Path(sys.argv[1]), sys.argv[2]
    init_database()
    rows = parcels(3)
    if step == "second":
        rows = [rows[0], parcel(1, MDSD="CLN")]  # parcel 1 changes its land use, parcel 2 is gone
    report = run_job(one_off_job("cadastral_parcels", write_parcels(tmp / f"{step}.gpkg", rows), None, "auto",
                                 "full"))
    print(json.dumps([report.status, report.inserted, report.updated, report.retired]))
""")


@pytest.fixture(scope="module")
def scratch(database_url, tmp_path_factory):
    url = database_url.set(database=f"gisplatform_test_tilecache_{os.getpid()}")
    admin = psycopg2.connect(db_engine.libpq_dsn(url.set(database="postgres")))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{url.database}"')
    folder = tmp_path_factory.mktemp("tilecache-src")

    def run(step: str) -> list:
        env = {**os.environ, "GISPLATFORM_DATABASE_URL": url.render_as_string(hide_password=False)}
        result = subprocess.run([sys.executable, "-c", RUN_SCRIPT, str(folder), step], env=env, cwd=PROJECT,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    assert run("first")[:2] == ["succeeded", 3]
    try:
        yield url, run
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        admin.close()


def _tile_of_parcels(engine) -> tuple[int, int, int]:
    with engine.connect() as c:
        lon, lat = c.execute(sa.text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Centroid(ST_Collect(geom_wgs84)) p "
                                     "FROM api.cadastral_parcels) t")).one()
    x, y = lonlat_to_tile(lon, lat, 16)
    return 16, x, y


def _land_uses(data: bytes | None) -> dict[str, str]:
    layer = decode_mvt(data).get("cadastral_parcels", {"features": []})
    return {f["properties"]["parcel_no"]: f["properties"]["land_use_code"] for f in layer["features"]}


def test_tiles_are_cut_once_per_run_and_a_new_run_replaces_them(scratch, tmp_path, monkeypatch):
    url, run = scratch
    tilecache._CACHES.clear()
    cache_dir = tmp_path / "tiles"
    monkeypatch.setenv(tilecache.ENV, str(cache_dir))
    with api_database(url) as engine:
        z, x, y = _tile_of_parcels(engine)
        tiles = provider("cadastral_parcels")
        first = tiles.get_tiles(tileset=WMQ, z=z, y=y, x=x)
        assert _land_uses(first) == {"1": "ONT", "2": "ONT", "3": "ONT"}
        cached = list(cache_dir.rglob("*.mvt"))
        run_folder = cached[0].relative_to(cache_dir).parts[1]
        assert [p.relative_to(cache_dir).parts for p in cached] == [
            ("cadastral_parcels", run_folder, str(z), str(x), f"{y}.mvt")]
        assert run_folder.startswith("run-") and cached[0].read_bytes() == first

        # a second request is answered from the file: no statement reaches the database
        statements = []
        sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        assert tiles.get_tiles(tileset=WMQ, z=z, y=y, x=x) == first
        assert statements == []

        # an empty tile is cached too, and stays empty
        far_x, far_y = lonlat_to_tile(106.3, 22.4, 16)
        assert tiles.get_tiles(tileset=WMQ, z=16, y=far_y, x=far_x) is None
        assert (cache_dir / "cadastral_parcels" / run_folder / "16" / str(far_x) / f"{far_y}.mvt"
                ).read_bytes() == b""

        assert run("second") == ["succeeded", 0, 1, 1]
        monkeypatch.setattr(tilecache, "VERSION_TTL", 0.0)  # the 2 s a process trusts its run id, elapsed
        second = tiles.get_tiles(tileset=WMQ, z=z, y=y, x=x)
        assert _land_uses(second) == {"1": "ONT", "2": "CLN"}
        # the old run's tiles are gone; only the new run's folder is left
        folders = [p.name for p in (cache_dir / "cadastral_parcels").iterdir()]
        assert len(folders) == 1 and folders[0] != run_folder and folders[0].startswith("run-")
        assert not cached[0].exists()


def test_tiles_deeper_than_zoom_16_are_not_stored(scratch, tmp_path, monkeypatch):
    url, _ = scratch
    monkeypatch.setenv(tilecache.ENV, str(tmp_path / "tiles"))
    with api_database(url) as engine:
        with engine.connect() as c:
            lon, lat = c.execute(sa.text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom_wgs84) p "
                                         "FROM api.cadastral_parcels ORDER BY id LIMIT 1) t")).one()
        x, y = lonlat_to_tile(lon, lat, 18)
        assert decode_mvt(provider("cadastral_parcels").get_tiles(tileset=WMQ, z=18, y=y, x=x))["cadastral_parcels"]
    assert not list((tmp_path / "tiles").rglob("*.mvt"))


def test_clearing_the_cache(tmp_path):
    cache = tilecache.TileCache(tmp_path / "tiles")
    cache.put("water_sources", "run-7", 12, 3300, 1800, b"x")
    cache.put("water_sources", "run-7", 12, 3300, 1801, b"")
    assert cache.get("water_sources", "run-7", 12, 3300, 1801) == b""
    assert cache.get("water_sources", "run-7", 12, 3300, 1802) is None
    assert cache.clear() == 2
    assert not (tmp_path / "tiles").exists()
