"""Remote sources: a file downloaded over HTTP(S), or features read from an OGC API - Features / WFS service.

Either way the run reads a local copy (``var/downloads/<job>/``), so the run log's checksum covers exactly
what was loaded, and an unchanged service answer is recognised as unchanged.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

from gisplatform.sources.base import SourceError

SERVICE_PREFIXES = ("OAPIF:", "WFS:")
TIMEOUT_S = 300


def check_url(url: str, where: str) -> None:
    from gisplatform.etl.jobs import JobDefinitionError

    target = url.split(":", 1)[1] if url.upper().startswith(SERVICE_PREFIXES) else url
    if urllib.parse.urlsplit(target).scheme not in ("http", "https"):
        raise JobDefinitionError(f"{where}: source url {url!r} must be http(s)://..., OAPIF:https://... "
                                 "or WFS:https://...")


def fetch(url: str, folder: Path, name: str) -> Path:
    """The local copy of the source at ``url`` (fetched now). Raises SourceError saying what failed."""
    folder.mkdir(parents=True, exist_ok=True)
    if url.upper().startswith(SERVICE_PREFIXES):
        return _read_service(url, folder, name)
    return _download(url, folder)


def _download(url: str, folder: Path) -> Path:
    filename = Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name or "download"
    target = folder / filename
    request = urllib.request.Request(url, headers={"User-Agent": "gisplatform-etl"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, \
                tempfile.NamedTemporaryFile(dir=folder, delete=False) as tmp:
            shutil.copyfileobj(response, tmp)
    except OSError as exc:  # URLError, HTTPError and time-outs are all OSErrors
        raise SourceError(f"{url}: download failed ({exc}); check the address and that the server is up, "
                          "then run the job again") from exc
    os.replace(tmp.name, target)  # whole file or nothing: a half download never stands as the source
    return target


def _read_service(url: str, folder: Path, name: str) -> Path:
    """GDAL's OAPIF / WFS drivers page through the service; the features land in one GeoPackage."""
    import pyogrio

    target = folder / f"{name}.gpkg"
    tmp = folder / f".{name}.partial.gpkg"
    tmp.unlink(missing_ok=True)
    try:
        frame = pyogrio.read_dataframe(url)
        frame.to_file(tmp, layer=name, engine="pyogrio")
    except Exception as exc:  # noqa: BLE001 - GDAL raises its own error classes
        tmp.unlink(missing_ok=True)
        raise SourceError(f"{url}: reading the service failed ({exc}); check the address and the collection "
                          "name, then run the job again") from exc
    os.replace(tmp, target)
    return target
