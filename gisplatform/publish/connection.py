"""The API server's database connection: as the read-only ``gisplatform_api`` role, onto the ``api`` views.

``GISPLATFORM_API_DATABASE_URL`` sets it explicitly; otherwise it is the platform's database URL with the user
replaced by the API role (local trust authentication on a development machine; set a password for the role
and the variable in production).
"""
from __future__ import annotations

import os
from functools import cache

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from gisplatform.db.engine import database_url
from gisplatform.publish.views import API_ROLE


def api_database_url() -> URL:
    explicit = os.environ.get("GISPLATFORM_API_DATABASE_URL")
    if explicit:
        url = make_url(explicit)
        return url.set(drivername="postgresql+psycopg2") if url.drivername in ("postgresql", "postgres") else url
    return database_url().set(username=API_ROLE, password=None)


@cache
def api_engine() -> sa.Engine:
    """One small pool per server process (pygeoapi creates a provider object per request)."""
    # No pre-ping (it costs a round trip per request); a dropped connection is recycled after one error.
    # JIT off: compiling plans costs more than running the API's small, indexed queries.
    return sa.create_engine(api_database_url(), pool_size=4, max_overflow=4, pool_pre_ping=False,
                            pool_recycle=3600,
                            connect_args={"application_name": "gisplatform-api",
                                          "options": "-c statement_timeout=30000 -c jit=off"})


def reset() -> None:
    if api_engine.cache_info().currsize:
        api_engine().dispose()
    api_engine.cache_clear()
