"""The configured database URL as the connections get it (no SQLAlchemy needed to resolve it)."""
from __future__ import annotations

import pytest

from gisplatform import config
from gisplatform.db import engine as db_engine


@pytest.fixture
def configured(monkeypatch):
    """Resolve with GISPLATFORM_DATABASE_URL set to a value; the session's own URL is restored afterwards."""
    def resolve(url: str) -> str:
        monkeypatch.setenv("GISPLATFORM_DATABASE_URL", url)
        config.reset()
        db_engine.reset()
        return db_engine.database_uri()
    yield resolve
    monkeypatch.undo()
    config.reset()
    db_engine.reset()


def test_a_sqlalchemy_driver_name_is_dropped_for_libpq(configured):
    assert configured("postgresql+psycopg2://u:p%40ss@db.example:5433/gis") == "postgresql://u:p%40ss@db.example:5433/gis"
    assert db_engine.database_url().drivername == "postgresql+psycopg2"
    assert db_engine.libpq_dsn() == "postgresql://u:p%40ss@db.example:5433/gis"


def test_a_keyword_dsn_is_passed_on_as_given(configured):
    assert configured("host=db.example dbname=gis password=a+b") == "host=db.example dbname=gis password=a+b"
