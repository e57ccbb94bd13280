"""Tests drive the real thing: a PostgreSQL + PostGIS database of their own, created for the session.

The server is the one the platform would use (GISPLATFORM_TEST_SERVER_URL, else the local server, else the
embedded cluster); the database ``gisplatform_test_<pid>`` is created, migrated, and dropped at the end.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa

from gisplatform import config
from gisplatform.db import engine as db_engine

PROJECT = Path(__file__).resolve().parents[1]
SAMPLE = PROJECT / "sample"


def _server_url() -> sa.engine.URL:
    explicit = os.environ.get("GISPLATFORM_TEST_SERVER_URL")
    if explicit:
        return sa.engine.make_url(explicit)
    os.environ.pop("GISPLATFORM_DATABASE_URL", None)
    config.reset()
    db_engine.reset()
    return db_engine.database_url()


@pytest.fixture(scope="session", autouse=True)
def raster_store(tmp_path_factory) -> Path:
    """The managed raster folder of this session (inherited by `gisplatform demo` / `serve` subprocesses): raster
    runs never see, or change, the checkout's var/rasters or another session's."""
    folder = tmp_path_factory.mktemp("raster-store")
    os.environ["GISPLATFORM_RASTER_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def database_url():
    server = _server_url()
    url = server.set(database=f"gisplatform_test_{os.getpid()}")
    admin = psycopg2.connect(db_engine.libpq_dsn(server.set(database="postgres")))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{url.database}"')
    os.environ["GISPLATFORM_DATABASE_URL"] = url.render_as_string(hide_password=False)
    config.reset()
    db_engine.reset()
    from gisplatform.db.bootstrap import init_database

    init_database()
    yield url
    db_engine.reset()
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="session")
def published_database(database_url):
    """A second database with the whole bundled sample loaded by the main job (in a subprocess), for API tests.

    Separate from ``database_url``, whose tables tests empty freely. Read-only for tests.
    """
    import subprocess
    import sys

    url = database_url.set(database=f"gisplatform_published_{os.getpid()}")
    admin = psycopg2.connect(db_engine.libpq_dsn(url.set(database="postgres")))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{url.database}"')
    env = {**os.environ, "GISPLATFORM_DATABASE_URL": url.render_as_string(hide_password=False)}
    result = subprocess.run([str(Path(sys.executable).parent / "gisplatform"), "demo", "--no-serve", "-q"],
                            env=env, capture_output=True, text=True, cwd=PROJECT)
    if result.returncode != 0:
        pytest.fail(f"loading the sample failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    yield url
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def db(database_url):
    """A connection-providing engine on a database whose layer, history and run tables are empty."""
    eng = db_engine.engine()
    with eng.begin() as connection:
        tables = connection.execute(sa.text(
            "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables "
            "WHERE table_schema IN ('data', 'history', 'etl') AND table_type = 'BASE TABLE' "
            "AND table_name <> 'alembic_version'")).scalars().all()
        connection.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        for name in connection.execute(sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'staging'")).scalars():
            connection.execute(sa.text(f'DROP TABLE staging."{name}"'))
    return eng


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    if not (SAMPLE / "manifest.json").exists():
        pytest.fail("the bundled sample is missing: run `gisplatform sample generate --out sample`")
    return SAMPLE


@pytest.fixture
def workdir(tmp_path) -> Path:
    return tmp_path


def copy_sample(target: Path, *parts: str) -> Path:
    """Copy part of the bundled sample (e.g. 'cadastral') into target, so a test can change files freely."""
    for part in parts:
        shutil.copytree(SAMPLE / part, target / part)
    return target
