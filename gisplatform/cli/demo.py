"""``gisplatform demo``: the main job — database ready, every ETL job run on the bundled sample, reports shown."""
from __future__ import annotations

import click

from gisplatform.cli.render import console


@click.command()
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("--serve/--no-serve", default=True, show_default=True,
              help="Start the OGC API server and portal afterwards (Ctrl+C stops it).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the server listens on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Server port.")
def demo(quiet: bool, serve: bool, host: str, port: int) -> None:
    """Set up the database, run every job in etl/ on the bundled sample, then serve the OGC API and portal."""
    from gisplatform.cli.etl import _run_and_report
    from gisplatform.db.bootstrap import init_database
    from gisplatform.db.engine import database_url
    from gisplatform.etl.jobs import load_jobs, run_order

    if serve:
        from gisplatform.cli.serve import check_port

        check_port(host, port)  # fail before loading, not after
    console.rule("[bold]gisplatform — Lạng Sơn land, mining and water data")
    console.print(f"database: {database_url().render_as_string(hide_password=True)}")
    for line in init_database():
        console.print(f"[green]✓[/] {line}")
    _run_and_report(run_order(load_jobs()), strict=False, quiet=quiet)
    console.print("\nNext: [bold]gisplatform etl status[/], [bold]gisplatform etl rejects RUN[/], "
                  "[bold]gisplatform db status[/]")
    if serve:
        from gisplatform.cli.serve import run_server

        console.print()
        run_server(host=host, port=port)
