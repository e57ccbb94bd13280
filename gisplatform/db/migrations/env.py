"""Alembic environment: compares the database with gisplatform.db.schema.metadata()."""
from alembic import context

from gisplatform.db.engine import engine
from gisplatform.db.migrate import context_options


def _run(connection) -> None:
    context.configure(connection=connection, transaction_per_migration=False, **context_options())
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    with engine().begin() as connection:
        _run(connection)
else:
    _run(connection)
