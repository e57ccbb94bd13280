"""Where the database is, and connections to it.

With no URL configured the platform needs no configuration at all on a fresh machine: it uses the local
PostgreSQL server if one answers (database ``gisplatform``, created on first use), otherwise it starts its own
cluster under ``var/pgcluster`` from the installed PostgreSQL binaries (see :mod:`gisplatform.db.cluster`).
"""
from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import quote

import psycopg2
from psycopg2 import sql

from gisplatform.config import settings

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import URL

DEFAULT_DATABASE = "gisplatform"


class DatabaseUnavailable(RuntimeError):
    """No database could be reached; the message says what was tried and how to configure one."""


def _local_server_uri() -> str | None:
    host = os.environ.get("PGHOST", "127.0.0.1")
    port = int(os.environ.get("PGPORT", "5432"))
    user = os.environ.get("PGUSER", "postgres")
    try:
        psycopg2.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=3).close()
    except psycopg2.OperationalError:
        return None
    return f"postgresql://{quote(user, safe='')}@{quote(host, safe='')}:{port}/{DEFAULT_DATABASE}"


@cache
def database_uri() -> str:
    """The database as a libpq URI: the configured URL, else the local server, else the embedded cluster (started
    if needed). Plain text, no SQLAlchemy: an ETL run takes its lock and starts reading the layer with it while
    the heavier modules are still being imported (see gisplatform.etl.runner)."""
    configured = settings().database_url
    if configured:
        scheme, sep, rest = configured.partition("://")
        if not sep:  # not a URL (a keyword DSN): passed on as given
            return configured
        return f"{scheme.split('+', 1)[0]}{sep}{rest}"  # postgresql+psycopg2://… → postgresql://…
    uri = _local_server_uri()
    if uri is not None:
        return uri
    from gisplatform.db.cluster import EmbeddedCluster

    return EmbeddedCluster.default().ensure_running().uri(DEFAULT_DATABASE)


def database_url() -> URL:
    """The database (:func:`database_uri`) as SQLAlchemy's URL, with the psycopg2 driver."""
    from sqlalchemy.engine import make_url

    return make_url(database_uri()).set(drivername="postgresql+psycopg2")


def libpq_dsn(url: URL | None = None) -> str:
    """The URL as a libpq connection string (for psycopg2 and the ADBC driver)."""
    if url is None:
        return database_uri()
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def ensure_database(url: URL | None = None) -> bool:
    """Create the database if it does not exist yet. Returns True when it was created."""
    url = url or database_url()
    admin = url.set(database="postgres")
    try:
        con = psycopg2.connect(libpq_dsn(admin), connect_timeout=5)
    except psycopg2.OperationalError as exc:
        raise DatabaseUnavailable(
            f"cannot reach PostgreSQL at {url.render_as_string(hide_password=True)}: {exc}".strip()
            + "\nSet GISPLATFORM_DATABASE_URL (or [database] url in gisplatform.toml) to a reachable server."
        ) from exc
    con.autocommit = True
    try:
        with con.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,))
            if cur.fetchone():
                return False
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.database)))
            return True
    finally:
        con.close()


_ENGINES: dict[str, sa.Engine] = {}


def engine(url: str | URL | None = None) -> sa.Engine:
    """One pooled engine per URL, created on first use."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    target = make_url(url) if isinstance(url, str) else (url or database_url())
    key = target.render_as_string(hide_password=False)
    if key not in _ENGINES:
        _ENGINES[key] = sa.create_engine(target, pool_pre_ping=True)
    return _ENGINES[key]


def reset() -> None:
    """Forget the resolved URL and dispose of engines (tests switch databases)."""
    for eng in _ENGINES.values():
        eng.dispose()
    _ENGINES.clear()
    database_uri.cache_clear()
