"""Alembic, driven from Python: upgrade, current/head revisions, autogenerate, drift check."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from geoalchemy2 import alembic_helpers

from gisplatform.db.engine import engine
from gisplatform.db.schema import SCHEMAS, STAGING_SCHEMA, metadata

MANAGED_SCHEMAS = set(SCHEMAS) - {STAGING_SCHEMA}

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(target: str = "head") -> None:
    with engine().begin() as connection:
        command.upgrade(alembic_config(connection), target)


def autogenerate(message: str) -> None:
    """Write a new migration for the difference between the database and the layer definitions."""
    with engine().begin() as connection:
        command.revision(alembic_config(connection), message=message, autogenerate=True)


def _include_object(obj, name, type_, reflected, compare_to):
    """Only our own schemas; never PostGIS' tables (spatial_ref_sys) or per-run staging tables."""
    if type_ == "table" and obj.schema not in MANAGED_SCHEMAS:
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def _include_name(name, type_, parent_names):
    return name in MANAGED_SCHEMAS if type_ == "schema" else True


def context_options() -> dict:
    """How Alembic compares the database with the metadata; shared by env.py and :func:`drift`."""
    return dict(
        target_metadata=metadata(),
        include_schemas=True,
        include_object=_include_object,
        include_name=_include_name,
        render_item=alembic_helpers.render_item,
        compare_type=True,
    )


def drift(connection: sa.Connection) -> list:
    """Differences between the database and the metadata derived from layers/ (empty when in step)."""
    options = context_options()
    context = MigrationContext.configure(connection, opts=options)
    return compare_metadata(context, options["target_metadata"])
