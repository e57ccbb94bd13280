"""``gisplatform db``: create, migrate and inspect the database."""
from __future__ import annotations

import sys

import click
from rich.table import Table

from gisplatform.cli.render import console, error_panel


@click.group()
def db() -> None:
    """Create, migrate and inspect the database (PostgreSQL + PostGIS).

    The database is GISPLATFORM_DATABASE_URL, else [database] url in gisplatform.toml, else the local server
    (database 'gisplatform', created on first use), else an embedded cluster under var/.
    """


@db.command()
def init() -> None:
    """Create the database if needed, apply all migrations and load the code tables."""
    from gisplatform.db.bootstrap import init_database

    for line in init_database():
        console.print(f"[green]✓[/] {line}")


@db.command()
def upgrade() -> None:
    """Apply pending migrations and reload the code tables from layers/codes/*.csv."""
    from gisplatform.db import migrate
    from gisplatform.db.bootstrap import sync_code_tables

    migrate.upgrade()
    counts = sync_code_tables()
    console.print(f"[green]✓[/] schema at {migrate.head_revision()}; code tables: "
                  + ", ".join(f"{k} {v}" for k, v in counts.items()))


@db.command()
def status() -> None:
    """Show the schema revision, drift from layers/, the EPSG:9215 checkpoint and row counts. Exit 1 if not ready."""
    from gisplatform.db.bootstrap import status as db_status

    s = db_status()
    table = Table(show_header=False, box=None)
    table.add_row("database", s.url)
    table.add_row("reachable", "[green]yes" if s.reachable else f"[red]no[/] {s.error or ''}")
    table.add_row("PostGIS", s.postgis or "[red]not installed")
    table.add_row("schema revision", f"{s.revision or '(none)'} (head {s.head})")
    if s.drift is not None:
        table.add_row("drift from layers/", "[green]none" if not s.drift else f"[red]{len(s.drift)} difference(s): "
                      "run `gisplatform db revision -m ...` after changing a layer")
    if s.srid_9215_error_m is not None:
        ok = s.srid_9215_error_m < 0.03
        table.add_row("EPSG:9215 checkpoint", f"[{'green' if ok else 'red'}]{s.srid_9215_error_m * 100:.3f} cm "
                      "from the reference (Lạng Sơn city, via EPSG:6960)")
    console.print(table)
    if s.layer_counts:
        counts = Table("layer", "features", "retired", title="Layers", title_justify="left")
        for name, (live, retired) in s.layer_counts.items():
            counts.add_row(name, f"{live:,}", f"{retired:,}")
        console.print(counts)
    if not s.up_to_date:
        if s.reachable and s.revision is None:
            error_panel("Not initialised", "run `gisplatform db init`")
        sys.exit(1)


@db.command()
@click.option("-m", "--message", required=True, help="What changed, e.g. 'add field x to cadastral_parcels'.")
def revision(message: str) -> None:
    """Write a new migration for changes made in layers/*.yml (review it, then commit it)."""
    from gisplatform.db import migrate

    migrate.upgrade()
    migrate.autogenerate(message)
