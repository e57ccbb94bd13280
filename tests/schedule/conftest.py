"""Helpers for the scheduling tests: job folders written per test, local SMTP and HTTP receivers (real servers)."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from gisplatform.etl.jobs import load_jobs
from gisplatform.schedule.notify import Notifier, NotifySettings
from gisplatform.schedule.policy import Runner


def write_job(folder: Path, name: str, **definition) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    raw = {"job": name, "layer": "cadastral_parcels", "mode": "full", **definition}
    path = folder / f"{name}.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def runner_for(folder: Path, notify: NotifySettings | None = None) -> Runner:
    return Runner(load_jobs(folder), Notifier(notify or NotifySettings()))


def runs(db, job: str | None = None) -> list[dict]:
    with db.connect() as connection:
        query = ("SELECT run_id, job, trigger, attempt, status, error, inserted, updated, inbox_file, started_at, "
                 "finished_at FROM etl.runs")
        rows = connection.execute(sa.text(query + (" WHERE job = :j" if job else "") + " ORDER BY run_id"),
                                  {"j": job}).mappings().all()
    return [dict(r) for r in rows]


def live_parcels(db) -> int:
    with db.connect() as connection:
        return connection.execute(sa.text(
            "SELECT count(*) FROM data.cadastral_parcels WHERE retired_at IS NULL")).scalar()


def wait_for(condition, timeout: float = 120.0, what: str = "condition"):
    """Poll until condition() is truthy (returns it); fails the test after timeout (never a timing assert)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


class Receiver:
    """A local HTTP server that records what is POSTed to it (the webhook's other end)."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                 "json": json.loads(body)})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/etl"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def var_dir(tmp_path, monkeypatch):
    """Downloads and other machine-local state of a test stay in its own folder."""
    monkeypatch.setenv("GISPLATFORM_VAR", str(tmp_path / "var"))
    return tmp_path / "var"


@pytest.fixture
def webhook():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def smtp_server():
    """A real SMTP server on a local port (aiosmtpd) keeping the messages it receives."""
    from aiosmtpd.controller import Controller

    class Keep:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
            self.messages.append(envelope)
            return "250 OK"

    import socket

    with socket.socket() as probe:  # a free port (aiosmtpd checks readiness by connecting to the port it was given)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Keep()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    controller.messages = handler.messages
    yield controller
    controller.stop()


@pytest.fixture
def static_server(tmp_path):
    """A local HTTP server of a folder (a remote source for URL jobs)."""
    import functools
    from http.server import SimpleHTTPRequestHandler

    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.folder = folder
    server.base = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()
