"""``gisplatform ogc``: the OGC API configuration as files, to read, check or use with other tools."""
from __future__ import annotations

from pathlib import Path

import click

from gisplatform.cli.render import console


@click.group()
def ogc() -> None:
    """OGC API configuration: the pygeoapi configuration and the OpenAPI document, generated from layers/."""


def _default_dir() -> Path:
    from gisplatform.config import settings

    return settings().project_dir / "ogc_config"


def _validate(config_path: Path) -> None:
    from pygeoapi.config import validate_config
    from pygeoapi.util import yaml_load

    with config_path.open(encoding="utf-8") as fh:
        instance = yaml_load(fh)
    try:
        validate_config(instance)
    except Exception as exc:  # jsonschema.ValidationError; pygeoapi's schema lags its own providers
        message = getattr(exc, "message", str(exc)).splitlines()[0]
        console.print(f"[yellow]![/] pygeoapi's configuration schema reports: {message}")
    else:
        console.print("[green]✓[/] valid against pygeoapi's configuration schema")


@ogc.command("config")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to write pygeoapi-config.yml into [default: ogc_config].")
@click.option("--url", default="http://127.0.0.1:8000/ogc", show_default=True,
              help="URL clients use for the API (links in every response are built from it).")
@click.option("--openapi/--no-openapi", "with_openapi", default=False, show_default=True,
              help="Also write the (offline) OpenAPI document, openapi.json, next to it.")
def config_cmd(out: Path | None, url: str, with_openapi: bool) -> None:
    """Write the pygeoapi configuration: ogc_config/base.yml + one collection per layer + the catalogue."""
    from gisplatform.cli.serve import api_url_for
    from gisplatform.publish.config import write_config
    from gisplatform.publish.openapi import OPENAPI_FILE, write_openapi

    out = out or _default_dir()
    path = write_config(out, api_url_for("", 0, url))
    console.print(f"[green]✓[/] wrote {path}")
    _validate(path)
    if with_openapi:
        doc = write_openapi(path, out / OPENAPI_FILE)
        console.print(f"[green]✓[/] wrote {doc} (self-contained: no remote references)")


@ogc.command("openapi")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="pygeoapi configuration [default: ogc_config/pygeoapi-config.yml].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output file [default: openapi.json next to the configuration].")
@click.option("--strict", is_flag=True, help="Fail when a remote reference has no local definition.")
def openapi_cmd(config_path: Path | None, out: Path | None, strict: bool) -> None:
    """Write the OpenAPI document of a configuration, with every reference resolved locally."""
    from gisplatform.publish.config import CONFIG_FILE
    from gisplatform.publish.openapi import OPENAPI_FILE, write_openapi

    config_path = config_path or _default_dir() / CONFIG_FILE
    if not config_path.is_file():
        raise click.UsageError(f"{config_path} does not exist: run `gisplatform ogc config` first")
    path = write_openapi(config_path, out or config_path.parent / OPENAPI_FILE, strict=strict)
    console.print(f"[green]✓[/] wrote {path} (self-contained: no remote references)")


@ogc.command("tiles-clear")
@click.option("--cache", "folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The tile cache folder [default: $GISPLATFORM_TILE_CACHE, else var/tile-cache].")
def tiles_clear_cmd(folder: Path | None) -> None:
    """Empty the vector-tile cache (it refreshes itself after each ETL run; this is for style or SQL changes)."""
    import os

    from gisplatform.publish.tilecache import ENV, TileCache, default_cache_dir

    folder = folder or Path(os.environ.get(ENV) or default_cache_dir())
    removed = TileCache(folder).clear()
    console.print(f"[green]✓[/] removed {removed:,} cached tiles from {folder} · đã xoá bộ đệm tile")
