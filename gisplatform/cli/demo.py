"""``gisplatform demo``: the main job — database ready, every ETL job run on the bundled sample, reports shown."""
from __future__ import annotations

import click

from gisplatform.cli.render import console


@click.command()
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("--serve/--no-serve", default=False, show_default=True,
              help="Start the OGC API server and portal afterwards.")
def demo(quiet: bool, serve: bool) -> None:
    """Set up the database (create, migrate, code tables) and run every job in etl/ on the bundled sample."""
    from gisplatform.cli.etl import _run_and_report
    from gisplatform.db.bootstrap import init_database
    from gisplatform.db.engine import database_url
    from gisplatform.etl.jobs import load_jobs, run_order

    console.rule("[bold]gisplatform — Lạng Sơn land, mining and water data")
    console.print(f"database: {database_url().render_as_string(hide_password=True)}")
    for line in init_database():
        console.print(f"[green]✓[/] {line}")
    _run_and_report(run_order(load_jobs()), strict=False, quiet=quiet)
    console.print("\nNext: [bold]gisplatform etl status[/], [bold]gisplatform etl rejects RUN[/], "
                  "[bold]gisplatform db status[/]")
