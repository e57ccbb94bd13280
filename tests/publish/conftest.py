"""The API tests talk HTTP to the real server: ``gisplatform serve`` (gunicorn) on the published sample database.

``api_server`` starts it once per session as a subprocess on a free port, exactly as an administrator would
(the command writes the configuration and the OpenAPI document, then becomes gunicorn), waits until the OGC
API answers, yields the base URL (``http://127.0.0.1:<port>``; the API is under ``/ogc``) and stops it with
SIGTERM at the end. Its output (gunicorn's access and error log) is in ``api_server_log``.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

PROJECT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 180  # seconds: config + OpenAPI generation + gunicorn workers booting


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def api_server_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("api-server") / "server.log"


@pytest.fixture(scope="session")
def api_server(published_database, api_server_log, tmp_path_factory):
    port = _free_port()
    var = tmp_path_factory.mktemp("api-var")
    env = {
        **os.environ,
        "GISPLATFORM_DATABASE_URL": published_database.render_as_string(hide_password=False),
        "GISPLATFORM_VAR": str(var),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("GISPLATFORM_API_DATABASE_URL", None)
    command = [str(Path(sys.executable).parent / "gisplatform"), "serve", "--host", "127.0.0.1",
               "--port", str(port), "--workers", "2", "--threads", "4"]
    log = api_server_log.open("wb")
    process = subprocess.Popen(command, env=env, cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"`gisplatform serve` exited with {process.returncode}:\n"
                            f"{api_server_log.read_text(errors='replace')[-5000:]}")
            try:
                if requests.get(f"{base}/ogc/", timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or slow on a busy machine
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer within {START_TIMEOUT} s:\n"
                            f"{api_server_log.read_text(errors='replace')[-5000:]}")
            time.sleep(0.3)
        yield base
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # gunicorn: graceful stop
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


@pytest.fixture(scope="session")
def api(api_server) -> str:
    """The OGC API landing page URL (no trailing slash)."""
    return f"{api_server}/ogc"


@pytest.fixture(scope="session")
def published_engine(published_database):
    """Read access to the database the server publishes (to compare what clients get with PostGIS)."""
    engine = sa.create_engine(published_database)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def http():
    with requests.Session() as session:
        yield session
