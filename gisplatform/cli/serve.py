"""``gisplatform serve``: write the OGC API configuration and OpenAPI document, then run gunicorn.

The process becomes gunicorn (exec) once the files are written, so Ctrl+C / SIGTERM reach gunicorn's arbiter
directly and it stops its workers gracefully; nothing is left running behind.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import click

from gisplatform.cli.render import console

DEFAULT_HOST, DEFAULT_PORT, DEFAULT_THREADS = "127.0.0.1", 8000, 4


def _url_host(host: str) -> str:
    """The host name clients should use for a bind address (wildcards: this machine's LAN address)."""
    if host in ("0.0.0.0", "::", ""):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect(("10.255.255.255", 1))  # no packet is sent; picks the outgoing interface
                return probe.getsockname()[0]
        except OSError:
            return socket.gethostname()
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]"
    except ValueError:
        pass
    return host


def check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                                       "(another server running? choose another --port)") from None


def api_url_for(host: str, port: int, url: str | None) -> str:
    if url:
        url = url.rstrip("/")
        if not urlsplit(url).scheme.startswith("http") or not url.endswith("/ogc"):
            raise click.UsageError("--url must be the public http(s) URL of the API, ending in /ogc "
                                   "(e.g. https://gis.example.vn/ogc)")
        return url
    return f"http://{_url_host(host)}:{port}/ogc"


def prepare(host: str, port: int, url: str | None, out: Path | None) -> tuple[Path, Path, str]:
    """Write pygeoapi-config.yml and openapi.json for the server; return their paths and the API URL."""
    import sqlalchemy as sa

    from gisplatform.config import settings
    from gisplatform.db.engine import DatabaseUnavailable
    from gisplatform.publish.config import write_config
    from gisplatform.publish.openapi import OPENAPI_FILE, write_openapi

    api_url = api_url_for(host, port, url)
    out = Path(out) if out else settings().var_dir / "ogc"
    try:
        config_path = write_config(out, api_url, bind=(host, port))
        openapi_path = write_openapi(config_path, out / OPENAPI_FILE)
    except sa.exc.OperationalError as exc:
        raise DatabaseUnavailable(f"the API cannot read the database: {str(exc.orig).strip()}") from exc
    return config_path, openapi_path, api_url


def _release_connections() -> None:
    """Close the pools this process opened while generating (exec would drop them without a goodbye)."""
    from gisplatform.db import engine as db_engine
    from gisplatform.publish import connection

    connection.reset()
    db_engine.reset()


def _print_banner(api_url: str, config_path: Path, openapi_path: Path, workers: int, threads: int) -> None:
    root = api_url[: -len("/ogc")] + "/"
    console.rule("[bold]gisplatform — OGC API server")
    console.print(f"  portal / cổng dữ liệu     [link={root}]{root}[/]")
    console.print(f"  OGC API                  [bold]{api_url}[/]")
    console.print(f"  API docs / tài liệu       {api_url}/openapi?f=html")
    console.print(f"  collections / lớp dữ liệu {api_url}/collections?f=html")
    console.print(f"  generated                {config_path} · {openapi_path.name}")
    console.print(f"  gunicorn                 {workers} workers × {threads} threads (gthread)")
    console.print(f"\n[bold]QGIS[/]: Layer → Add Layer → Add WFS / OGC API - Features Layer → New → URL "
                  f"[bold]{api_url}[/] → Connect")
    console.print(f"[bold]GDAL[/]: ogrinfo OAPIF:{api_url}")
    console.print("Stop with Ctrl+C.\n")


def run_server(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, workers: int | None = None,
               threads: int = DEFAULT_THREADS, url: str | None = None, out: Path | None = None,
               tile_cache: str | None = None) -> NoReturn:
    """Generate the configuration, then replace this process by gunicorn serving it."""
    from gisplatform.publish import gunicorn_conf
    from gisplatform.publish.tilecache import ENV as TILE_CACHE_ENV, default_cache_dir

    check_port(host, port)
    config_path, openapi_path, api_url = prepare(host, port, url, out)
    workers = workers or gunicorn_conf.workers
    _print_banner(api_url, config_path, openapi_path, workers, threads)
    _release_connections()
    env = {
        **os.environ,
        "PYGEOAPI_CONFIG": str(config_path.resolve()),
        "PYGEOAPI_OPENAPI": str(openapi_path.resolve()),
        "GISPLATFORM_BIND": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "GISPLATFORM_WORKERS": str(workers),
        "GISPLATFORM_THREADS": str(threads),
        TILE_CACHE_ENV: tile_cache or os.environ.get(TILE_CACHE_ENV) or str(default_cache_dir()),
    }
    sys.stdout.flush()
    sys.stderr.flush()
    argv = [sys.executable, "-m", "gunicorn", "--config", "python:gisplatform.publish.gunicorn_conf",
            "gisplatform.publish.server:create_app()"]
    os.execve(sys.executable, argv, env)


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to listen on (0.0.0.0: every interface, for the office network).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="gunicorn worker processes [default: number of CPUs, at least 2].")
@click.option("--threads", type=click.IntRange(1, 64), default=DEFAULT_THREADS, show_default=True,
              help="Threads per worker (requests served at once = workers × threads).")
@click.option("--url", help="Public URL of the API when behind a reverse proxy, ending in /ogc "
                            "[default: http://HOST:PORT/ogc].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the generated pygeoapi-config.yml and openapi.json [default: var/ogc].")
@click.option("--tile-cache", metavar="FOLDER|off", default=None,
              help="Where vector tiles (zoom <= 16) are cached until the layer's next ETL run, or 'off' "
                   "[default: $GISPLATFORM_TILE_CACHE, else var/tile-cache].")
def serve(host: str, port: int, workers: int | None, threads: int, url: str | None, out: Path | None,
          tile_cache: str | None) -> None:
    """Serve the OGC API (features, vector tiles, metadata records) and the portal with gunicorn.

    \b
    Portal:  http://HOST:PORT/        OGC API:  http://HOST:PORT/ogc
    In QGIS: Layer → Add Layer → Add WFS / OGC API - Features Layer → URL http://HOST:PORT/ogc
    """
    run_server(host, port, workers, threads, url, out, tile_cache)
