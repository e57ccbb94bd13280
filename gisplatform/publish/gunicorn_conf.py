"""gunicorn settings for the API server (``gunicorn -c python:gisplatform.publish.gunicorn_conf``).

``gisplatform serve`` sets the environment this file reads and then becomes gunicorn (exec), so Ctrl+C and
SIGTERM go straight to gunicorn's arbiter, which stops the workers gracefully.

  GISPLATFORM_BIND      host:port                     default 127.0.0.1:8000
  GISPLATFORM_WORKERS   worker processes              default: number of CPUs, at least 2
  GISPLATFORM_THREADS   threads per worker (gthread)  default 4
  GISPLATFORM_ACCESS_LOG  access log file, "-" = stdout (default), empty = none

Why these choices:
- gthread workers: pygeoapi and the providers are synchronous (psycopg2); threads let a worker wait on the
  database for one request while serving another, and the thread pool bounds the connections per process.
  The gevent worker of pygeoapi's Docker image would block the whole worker on every psycopg2 call.
- Nagle/delayed ACK: gunicorn writes the headers and the body of a response in two send() calls. With
  Nagle's algorithm on, the second small write waits for the client's delayed ACK (~40 ms on Linux) on a
  keep-alive connection. gunicorn sets TCP_NODELAY on its listening socket and Linux copies it to every
  accepted socket, so nothing more is needed; ``when_ready`` logs the setting. Measured on this machine
  (keep-alive, /ogc/conformance, 2.3 kB): median 0.9 ms with TCP_NODELAY, 44 ms without
  (``GISPLATFORM_TCP_NODELAY=0`` switches it off, for such measurements only).
- keepalive 5 s: QGIS and GDAL reuse the connection for the pages of a layer.
- limit_request_line 8190 (the maximum): CQL2 filters and bbox parameters make long URLs.
- timeout 120 s: a 10 000-feature page or a low-zoom tile can take seconds; the database statement timeout
  (30 s, gisplatform.publish.connection) fires first on runaway queries.
"""
from __future__ import annotations

import multiprocessing
import os
import socket

bind = [os.environ.get("GISPLATFORM_BIND", "127.0.0.1:8000")]
workers = int(os.environ.get("GISPLATFORM_WORKERS") or max(2, multiprocessing.cpu_count()))
threads = int(os.environ.get("GISPLATFORM_THREADS") or 4)
worker_class = "gthread"
wsgi_app = "gisplatform.publish.server:create_app()"
proc_name = "gisplatform-api"

timeout = 120
graceful_timeout = 15
keepalive = 5
limit_request_line = 8190
limit_request_field_size = 8190
# No periodic worker recycling (max_requests): a restart re-imports pygeoapi and empties the per-process
# caches (connection pool, counts, tile-cache run ids), which showed as p95 outliers in bench/api.py; memory of
# a worker stays bounded by the largest page (limit maximum). GISPLATFORM_MAX_REQUESTS turns it back on.
max_requests = int(os.environ.get("GISPLATFORM_MAX_REQUESTS") or 0)
max_requests_jitter = max_requests // 10

control_socket_disable = True  # no gunicornc socket: it lives at a fixed path in $HOME, two servers would clash

accesslog = os.environ.get("GISPLATFORM_ACCESS_LOG", "-") or None  # a file, "-" (stdout), or "" for none
errorlog = "-"
loglevel = os.environ.get("GISPLATFORM_LOG_LEVEL", "info")
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'

# Behind a reverse proxy on the same machine, trust its X-Forwarded-* headers.
forwarded_allow_ips = os.environ.get("GISPLATFORM_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def _check_nodelay(server) -> None:
    """Log whether accepted sockets inherit TCP_NODELAY from the listener (they do on Linux)."""
    for listener in getattr(server, "LISTENERS", []):
        sock = getattr(listener, "sock", None)
        if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
            continue
        try:
            value = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        except OSError:
            continue
        server.log.info("listening socket %s: TCP_NODELAY=%s (accepted sockets inherit it)", listener, value)


def when_ready(server) -> None:
    if os.environ.get("GISPLATFORM_TCP_NODELAY") == "0":  # only to measure what Nagle costs
        for listener in getattr(server, "LISTENERS", []):
            if getattr(listener, "sock", None) is not None and listener.sock.family != socket.AF_UNIX:
                listener.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        server.log.warning("TCP_NODELAY switched OFF (GISPLATFORM_TCP_NODELAY=0): for measurements only")
    _check_nodelay(server)
    server.log.info("gisplatform API ready: %s workers x %s threads", workers, threads)
