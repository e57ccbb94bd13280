"""OGC API benchmark: our server against tipg 1.6.1 and stock pygeoapi 0.24, same database, same requests, one run.

    .venv/bin/python bench/api.py [--seconds 10] [--warmup 2] [--connections 8] [--threads 2]
                                  [--only items_bbox,tile_z14] [--no-append] [--keep-servers]

What it does (every step idempotent, so anyone can rerun it):
  1. tools: Debian's `wrk` (apt-get install -y wrk, if missing) and a separate virtualenv bench/.venv-tipg with
     tipg==1.6.1 and uvicorn[standard] (uvloop + httptools: tipg's best); nothing is installed into .venv;
  2. database gisplatform_bench: `gisplatform db init` (migrations), then (re)load the 1,000,000-parcel
     GeoPackage if api.cadastral_parcels has fewer than 900,000 rows; load the sample admin units (a layer
     our server tiles at zoom 12); backfill etl.runs.features where a run predates that column; ANALYZE;
  3. workload: request lists drawn from the data with a fixed seed (dense bboxes and polygons, random ids,
     pages spread over the table, the most common land-use codes, the densest tiles), saved to
     bench/out/api/workload.json;
  4. three servers on loopback, each 2 processes, as the same read-only role (gisplatform_api):
       ours   `gisplatform serve --workers 2 --threads 4` (gunicorn gthread)
       stock  pygeoapi.flask_app under gunicorn gthread 2x4 with bench/api/pygeoapi-stock.yml
              (stock PostgreSQL + MVT-postgresql providers)
       tipg   tipg.main:app under uvicorn --workers 2 (asyncpg pool per worker)
  5. checks every (server, request type) before timing: status, JSON, feature counts, values; a cell whose
     single request fails or takes longer than a timed cell is reported, not timed;
  6. for each request type, each server in turn (rotating who goes first): warm-up, then
     `wrk -t2 -c8 -d<seconds>s --latency -s bench/api/urls.lua` cycling through the type's URL list; the
     database is let go idle between cells (no query of the previous cell still running);
  7. latency of single sequential requests (landing page, 1 keep-alive connection, 200 requests) per server,
     which shows the Nagle / delayed-ACK 40 ms stall if a server has it;
  8. prints the tables and appends them to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
API_DIR = HERE / "api"
OUT = HERE / "out" / "api"
VENV_BIN = Path(sys.executable).parent
TIPG_VENV = HERE / ".venv-tipg"
TIPG_VERSION = "1.6.1"
TIPG_PYTHON = os.environ.get("TIPG_PYTHON", "/root/.pyenv/versions/3.12.1/bin/python3")
DATABASE = "gisplatform_bench"
SERVER = os.environ.get("GISPLATFORM_BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432")
DB_URL = f"{SERVER}/{DATABASE}"
API_ROLE = "gisplatform_api"
PARCELS_FILE = HERE / "data" / "base_1000000" / "cadastral" / "thua_dat.gpkg"
ADMIN_FILE = ROOT / "sample" / "admin_units" / "don_vi_hanh_chinh.gpkg"
MIN_PARCELS = 900_000
PUBLIC_FIELDS = ["parcel_id", "commune_code", "sheet_commune_code", "map_sheet_no", "parcel_no", "area_m2",
                 "legal_area_m2", "land_use_codes", "land_use_code", "use_term", "origin", "parcel_address",
                 "user_type", "organisation_name", "record_date"]
SEED = 20251127
WRK_TIMEOUT_S = 30

SERVERS = ("ours", "stock", "tipg")
LOGGED = "ours_logged"  # ours again, with gunicorn's access log on: only for the informative *_access_log rows
LABEL = {"ours": "ours (gisplatform)", "stock": "pygeoapi 0.24 stock", "tipg": "tipg 1.6.1"}
ACCESS_LOG_SUFFIX = "_access_log"

# request type -> (title, unit notes); order = order of the table
TYPES = {
    "items_bbox": "items, small bbox, limit 100",
    "items_1000": "items, limit 1000, no bbox (pages spread over the table)",
    "item_by_id": "one item by id",
    "attr_filter": "attribute filter land_use_code=<code>, limit 100",
    "cql2_spatial": "CQL2 S_INTERSECTS(geometry, POLYGON(...)), limit 100",
    "tile_z12": "tile, zoom 12",
    "tile_z14": "tile, zoom 14",
    "tile_z16": "tile, zoom 16",
    "landing": "landing page",
}
EXTRA_TYPES = {  # ours only, informative (not part of the targets)
    "items_1000_offset": "ours: items limit 1000 paged by offset only (no `after` cursor)",
    "tile_z12_admin": "ours: admin_units tile, zoom 12 (a layer served at 12)",
    # the three servers are timed without an access log; these show what ours pays for writing one
    "item_by_id_access_log": "ours with gunicorn's access log on (its default): one item by id",
    "landing_access_log": "ours with gunicorn's access log on (its default): landing page",
}


def log(message: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)


def run(cmd: list[str], env: dict | None = None, check: bool = True, timeout: float | None = None,
        quiet: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=quiet, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise SystemExit(f"command failed ({result.returncode}): {' '.join(map(str, cmd))}\n"
                         f"{result.stdout or ''}\n{result.stderr or ''}")
    return result


# ---------------------------------------------------------------------------------------------- 1. tools
def ensure_tools() -> None:
    if shutil.which("wrk") is None:
        log("installing wrk (apt-get install -y wrk) …")
        if os.geteuid() != 0:
            raise SystemExit("wrk is missing and this is not root: run `sudo apt-get install -y wrk` first")
        res = run(["apt-get", "install", "-y", "wrk"], check=False)
        if res.returncode != 0:
            run(["apt-get", "update"], check=False)
            run(["apt-get", "install", "-y", "wrk"])
    python = TIPG_VENV / "bin" / "python"
    ok = False
    if python.exists():
        probe = run([str(python), "-c", "import importlib.metadata as m, uvicorn, uvloop, httptools;"
                     "print(m.version('tipg'))"], check=False)
        ok = probe.returncode == 0 and probe.stdout.strip() == TIPG_VERSION
    if not ok:
        base = TIPG_PYTHON if Path(TIPG_PYTHON).exists() else getattr(sys, "_base_executable", sys.executable)
        log(f"creating {TIPG_VENV.relative_to(ROOT)} with tipg=={TIPG_VERSION} (python {base}) …")
        if not python.exists():
            run([base, "-m", "venv", str(TIPG_VENV)])
        run([str(python), "-m", "pip", "install", "-q", f"tipg=={TIPG_VERSION}", "uvicorn[standard]"])


# ---------------------------------------------------------------------------------------------- 2. database
def psql(sql: str, db: str = DB_URL) -> str:
    return run(["psql", db, "-X", "-v", "ON_ERROR_STOP=1", "-Atqc", sql]).stdout.strip()


def gisplatform(*args: str, timeout: float | None = None) -> None:
    run([str(VENV_BIN / "gisplatform"), *args], env={"GISPLATFORM_DATABASE_URL": DB_URL}, timeout=timeout)


def relation_count(relation: str) -> int:
    exists = psql(f"SELECT to_regclass('{relation}') IS NOT NULL")
    return int(psql(f"SELECT count(*) FROM {relation}")) if exists == "t" else 0


def ensure_database() -> dict:
    log(f"database {DATABASE}: migrations …")
    gisplatform("db", "init")
    parcels = relation_count("api.cadastral_parcels")
    if parcels < MIN_PARCELS:
        log(f"api.cadastral_parcels has {parcels:,} rows (< {MIN_PARCELS:,}): rebuilding the database …")
        run(["psql", f"{SERVER}/postgres", "-qc", f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"])
        gisplatform("db", "init")
        if not PARCELS_FILE.exists():
            log("generating the 1,000,000-parcel GeoPackage (once) …")
            gisplatform("sample", "generate", "--out", str(PARCELS_FILE.parents[1]), "--parcels", "1000000",
                        "--single-file", "gpkg", "--parcels-only")
        log("loading 1,000,000 parcels (gisplatform etl load, ~3 min) …")
        gisplatform("etl", "load", "cadastral_parcels", str(PARCELS_FILE), "--crs", "EPSG:9215", "--mode", "full",
                    "-q")
        parcels = relation_count("api.cadastral_parcels")
    if relation_count("api.admin_units") == 0:
        admin = ADMIN_FILE
        if not admin.exists():
            sample = OUT / "sample_admin"
            gisplatform("sample", "generate", "--out", str(sample), "--parcels", "10")
            admin = sample / "admin_units" / "don_vi_hanh_chinh.gpkg"
        log("loading the sample admin units (a layer served from zoom 6, for the zoom-12 check) …")
        gisplatform("etl", "load", "admin_units", str(admin), "--crs", "EPSG:9215", "--mode", "full", "-q")
    # Runs loaded before migration 0003 have no `features` (live count after the run); the ETL records it on
    # every run since. Backfill it exactly as the ETL computes it, so the server sees what a current run leaves.
    backfilled = psql(
        "WITH last AS (SELECT DISTINCT ON (layer) run_id, layer FROM etl.runs WHERE status = 'succeeded' "
        "ORDER BY layer, run_id DESC) "
        "UPDATE etl.runs r SET features = CASE l.layer "
        "WHEN 'cadastral_parcels' THEN (SELECT count(*) FROM data.cadastral_parcels WHERE retired_at IS NULL) "
        "WHEN 'admin_units' THEN (SELECT count(*) FROM data.admin_units WHERE retired_at IS NULL) END "
        "FROM last l WHERE r.run_id = l.run_id AND r.features IS NULL "
        "AND l.layer IN ('cadastral_parcels', 'admin_units') RETURNING r.layer")
    if backfilled:
        log(f"backfilled etl.runs.features for: {backfilled.replace(chr(10), ', ')}")
    log("ANALYZE …")
    psql("ANALYZE data.cadastral_parcels; ANALYZE data.admin_units; ANALYZE etl.runs")
    info = {
        "parcels": parcels,
        "postgres": psql("SHOW server_version"),
        "postgis": psql("SELECT extversion FROM pg_extension WHERE extname = 'postgis'"),
        "table_mb": int(psql("SELECT pg_total_relation_size('data.cadastral_parcels') / 1048576")),
        "shared_buffers": psql("SHOW shared_buffers"),
    }
    return info


# ---------------------------------------------------------------------------------------------- 3. workload
@dataclass
class Request:
    """One logical request, with each server's path and what a correct answer looks like."""

    paths: dict[str, str]              # server -> path?query
    expect: dict = field(default_factory=dict)


def _db():
    import psycopg2

    connection = psycopg2.connect(DB_URL)
    connection.autocommit = True
    return connection


def _pentagon(x: float, y: float, r: float) -> str:
    points = [(x + r * math.cos(math.radians(90 + 72 * k)), y + r * math.sin(math.radians(90 + 72 * k)))
              for k in range(5)]
    points.append(points[0])
    return "POLYGON((" + ",".join(f"{px:.6f} {py:.6f}" for px, py in points) + "))"


def _q(params: dict) -> str:
    return urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe=",")


def build_workload(sizes: dict[str, int]) -> dict[str, list[Request]]:
    rng = random.Random(SEED)
    cur = _db().cursor()
    base = {"ours": "/ogc/collections/cadastral_parcels", "stock": "/collections/cadastral_parcels",
            "tipg": "/collections/api.cadastral_parcels"}
    work: dict[str, list[Request]] = {}

    # parcel "centres" from a repeatable sample, used for bboxes and polygons
    cur.execute("SELECT (ST_XMin(b) + ST_XMax(b)) / 2, (ST_YMin(b) + ST_YMax(b)) / 2 FROM "
                "(SELECT Box2D(geom_wgs84) b FROM data.cadastral_parcels TABLESAMPLE BERNOULLI (0.1) REPEATABLE (7) "
                "WHERE retired_at IS NULL) s")  # the rows of the view api.cadastral_parcels (no TABLESAMPLE on views)
    centres = cur.fetchall()
    rng.shuffle(centres)

    # 1. small bboxes (about 620 m x 670 m) holding at least 150 parcels, so every server returns a full page
    half = 0.003
    bboxes = []
    for x, y in centres:
        if len(bboxes) >= sizes["items_bbox"]:
            break
        cur.execute("SELECT count(*) FROM api.cadastral_parcels WHERE geom_wgs84 && ST_MakeEnvelope(%s,%s,%s,%s,4326)"
                    " AND ST_Intersects(geom_wgs84, ST_MakeEnvelope(%s,%s,%s,%s,4326))",
                    (x - half, y - half, x + half, y + half) * 2)
        n = cur.fetchone()[0]
        if n >= 150:
            bboxes.append(([round(v, 6) for v in (x - half, y - half, x + half, y + half)], n))
    work["items_bbox"] = [
        Request({s: f"{base[s]}/items?" + _q({"bbox": ",".join(map(str, b)), "limit": 100}) for s in SERVERS},
                {"features": 100, "bbox": b, "matched": n}) for b, n in bboxes]

    # 2. pages of 1000 spread over the table: page k starts at row k*1000 (ordered by id). Each server is asked
    #    the way its own `next` link asks: ours with offset + the keyset cursor `after` (the id ending the
    #    previous page), pygeoapi stock and tipg with offset.
    cur.execute("SELECT count(*) FROM api.cadastral_parcels")
    total = cur.fetchone()[0]
    pages = rng.sample(range(0, total // 1000 - 1), sizes["items_1000"])
    rows = sorted({p * 1000 for p in pages} | {p * 1000 - 1 for p in pages if p})
    cur.execute("SELECT rn - 1, id FROM (SELECT id, row_number() OVER (ORDER BY id) rn "
                "FROM api.cadastral_parcels) s WHERE rn - 1 = ANY(%s)", (rows,))
    id_at = dict(cur.fetchall())
    reqs, offset_only = [], []
    for p in pages:
        offset = p * 1000
        ours = {"offset": offset, "limit": 1000}
        if p:
            ours["after"] = id_at[offset - 1]
        plain = _q({"offset": offset, "limit": 1000})
        reqs.append(Request({"ours": f"{base['ours']}/items?{_q(ours)}", "stock": f"{base['stock']}/items?{plain}",
                             "tipg": f"{base['tipg']}/items?{plain}"},
                            {"features": 1000, "first_id": id_at[offset]}))
        offset_only.append(Request({"ours": f"{base['ours']}/items?{plain}"},
                                   {"features": 1000, "first_id": id_at[offset]}))
    work["items_1000"] = reqs
    work["items_1000_offset"] = offset_only

    # 3. random ids
    cur.execute("SELECT fid FROM data.cadastral_parcels TABLESAMPLE BERNOULLI (0.1) REPEATABLE (11) "
                "WHERE retired_at IS NULL")  # = api.cadastral_parcels.id
    ids = [r[0] for r in cur.fetchall()]
    rng.shuffle(ids)
    work["item_by_id"] = [Request({s: f"{base[s]}/items/{i}" for s in SERVERS}, {"id": i})
                          for i in ids[:sizes["item_by_id"]]]

    # 4. attribute filter: the most common land-use codes (each has far more than 100 parcels)
    cur.execute("SELECT land_use_code, count(*) FROM api.cadastral_parcels GROUP BY 1 HAVING count(*) >= 1000 "
                "ORDER BY 2 DESC LIMIT %s", (sizes["attr_filter"],))
    codes = cur.fetchall()
    work["attr_filter"] = [Request({s: f"{base[s]}/items?" + _q({"land_use_code": c, "limit": 100})
                                    for s in SERVERS}, {"features": 100, "land_use_code": c, "matched": n})
                           for c, n in codes]

    # 5. CQL2 spatial filter: a small pentagon (radius ~330 m) meeting at least 150 parcels
    polygons = []
    for x, y in centres[len(centres) // 2:]:
        if len(polygons) >= sizes["cql2_spatial"]:
            break
        wkt = _pentagon(x, y, 0.003)
        cur.execute("SELECT count(*) FROM api.cadastral_parcels WHERE ST_Intersects(geom_wgs84, "
                    "ST_GeomFromText(%s, 4326))", (wkt,))
        n = cur.fetchone()[0]
        if n >= 150:
            polygons.append((wkt, n))
    cql = []
    for wkt, n in polygons:
        paths = {}
        for s in SERVERS:
            prop = "geom_wgs84" if s == "tipg" else "geometry"  # tipg filters on column names
            paths[s] = f"{base[s]}/items?" + _q({"filter": f"S_INTERSECTS({prop},{wkt})",
                                                 "filter-lang": "cql2-text", "limit": 100})
        cql.append(Request(paths, {"features": 100, "matched": n}))
    work["cql2_spatial"] = cql

    # 6. the densest tiles per zoom (parcel counts from bounding-box centres)
    for z in (12, 14, 16):
        n = 2 ** z
        cur.execute(
            "SELECT tx, ty, count(*) FROM (SELECT floor((x + 180) / 360 * %(n)s)::int tx, "
            "floor((1 - ln(tan(radians(y)) + 1 / cos(radians(y))) / pi()) / 2 * %(n)s)::int ty FROM "
            "(SELECT (ST_XMin(b) + ST_XMax(b)) / 2 x, (ST_YMin(b) + ST_YMax(b)) / 2 y FROM "
            "(SELECT Box2D(geom_wgs84) b FROM api.cadastral_parcels) s) c) t "
            "GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT %(k)s", {"n": n, "k": sizes[f"tile_z{z}"]})
        tiles = cur.fetchall()
        work[f"tile_z{z}"] = [Request({
            "ours": f"{base['ours']}/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt",     # pygeoapi: z/y/x
            "stock": f"{base['stock']}/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt",
            "tipg": f"{base['tipg']}/tiles/WebMercatorQuad/{z}/{x}/{y}",           # tipg: z/x/y
        }, {"tile": [z, x, y], "parcels": c}) for x, y, c in tiles]
        if z == 12:
            work["tile_z12_admin"] = [Request(
                {"ours": f"/ogc/collections/admin_units/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt"},
                {"tile": [z, x, y]}) for x, y, _ in tiles]

    # 7. landing page
    work["landing"] = [Request({"ours": "/ogc", "stock": "/", "tipg": "/"}, {"landing": True})]
    for kind in ("item_by_id", "landing"):  # the same URLs for ours with its access log on
        work[kind + ACCESS_LOG_SUFFIX] = [Request({LOGGED: r.paths["ours"]}, r.expect) for r in work[kind]]
    cur.connection.close()
    return work


# ---------------------------------------------------------------------------------------------- 4. servers
def free_port(start: int) -> int:
    for port in range(start, start + 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise SystemExit("no free port")


@dataclass
class Server:
    name: str
    port: int
    cmd: list[str]
    env: dict
    ready_path: str
    log_path: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.log_path.open("w")
        self.proc = subprocess.Popen(self.cmd, env={**os.environ, **self.env}, stdout=fh, stderr=subprocess.STDOUT,
                                     cwd=str(OUT), start_new_session=True)

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited ({self.proc.returncode}); see {self.log_path}")
            try:
                status, _, _ = get(self.port, self.ready_path, timeout=5)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"{self.name} not ready after {timeout} s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def make_servers(workers: int, threads: int, tile_cache: bool = True, logged: bool = False) -> dict[str, Server]:
    ports = {}
    start = 18701
    for name in (*SERVERS, LOGGED):
        ports[name] = free_port(start)
        start = ports[name] + 1
    api_db = f"postgresql://{API_ROLE}@127.0.0.1:5432/{DATABASE}"
    servers = {}
    for name in ("ours", LOGGED) if logged else ("ours",):
        # like the peers, ours runs without an access log (GISPLATFORM_ACCESS_LOG=""); LOGGED keeps gunicorn's
        # default (every request to stdout, here its log file) for the informative *_access_log rows
        servers[name] = Server(
            name, ports[name],
            [str(VENV_BIN / "gisplatform"), "serve", "--host", "127.0.0.1", "--port", str(ports[name]),
             "--workers", str(workers), "--threads", str(threads), "--out", str(OUT / name),
             "--tile-cache", str(OUT / "tile-cache") if tile_cache else "off"],
            {"GISPLATFORM_DATABASE_URL": DB_URL, "GISPLATFORM_ACCESS_LOG": "-" if name == LOGGED else ""},
            "/ogc", OUT / f"{name}.log")
    stock_env = {"PYGEOAPI_CONFIG": str(API_DIR / "pygeoapi-stock.yml"),
                 "PYGEOAPI_OPENAPI": str(OUT / "stock-openapi.yml"),
                 "PYGEOAPI_SERVER_URL": f"http://127.0.0.1:{ports['stock']}", "BENCH_DB_NAME": DATABASE}
    servers["stock"] = Server(
        "stock", ports["stock"],
        [str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{ports['stock']}", "--workers", str(workers),
         "--worker-class", "gthread", "--threads", str(threads), "--timeout", "120", "--keep-alive", "5",
         "--error-logfile", "-", "pygeoapi.flask_app:APP"],
        stock_env, "/", OUT / "stock.log")
    fields = json.dumps(PUBLIC_FIELDS)
    tipg_env = {
        # jit off and a 30 s statement timeout, as the two pygeoapi servers have (asyncpg passes unknown DSN
        # parameters to the server as session settings)
        "DATABASE_URL": f"{api_db}?jit=off&statement_timeout=30000&application_name=tipg",
        "TIPG_DB_SCHEMAS": '["api"]',
        "TIPG_DB_TABLES": '["api.cadastral_parcels"]',
        "TIPG_DB_EXCLUDE_FUNCTION_SCHEMAS": '["api"]',       # no function collections
        "TIPG_TABLE_CONFIG__api_cadastral_parcels__geomcol": "geom_wgs84",  # WGS84 copy: no ST_Transform per row
        "TIPG_TABLE_CONFIG__api_cadastral_parcels__pk": "id",
        "TIPG_TABLE_CONFIG__api_cadastral_parcels__properties": fields,   # the same 15 public fields
        "TIPG_DEBUG": "false",
        # No periodic catalogue refresh (ours and stock pygeoapi also read their configuration once, at start).
        # With tipg's default (300 s) the first request after the TTL starts a refresh (collections, spatial and
        # temporal extents over the whole view, ~1 s) after its response, and every request arriving before it
        # finishes starts another: under load this piles up hundreds of refreshes and stalled whichever cell was
        # running 5 min after start (database busy ~27 s after the cell) in earlier runs.
        "TIPG_CATALOG_TTL": "0",
    }
    servers["tipg"] = Server(
        "tipg", ports["tipg"],
        [str(TIPG_VENV / "bin" / "uvicorn"), "tipg.main:app", "--host", "127.0.0.1", "--port", str(ports["tipg"]),
         "--workers", str(workers), "--no-access-log", "--loop", "uvloop", "--http", "httptools"],
        tipg_env, "/", OUT / "tipg.log")
    return servers


def start_servers(servers: dict[str, Server]) -> None:
    stock = servers["stock"]
    log("pygeoapi stock: generating its OpenAPI document …")
    run([str(VENV_BIN / "pygeoapi"), "openapi", "generate", stock.env["PYGEOAPI_CONFIG"], "--output-file",
         stock.env["PYGEOAPI_OPENAPI"]], env=stock.env)
    for server in servers.values():
        log(f"starting {server.name} on 127.0.0.1:{server.port} …")
        server.start()
    for server in servers.values():
        server.wait_ready()
    log("all servers answer")


# ---------------------------------------------------------------------------------------------- HTTP helpers
def get(port: int, path: str, timeout: float = 60) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def wait_db_idle(limit: float = 120) -> float:
    """Wait until no API query is running (a previous cell's slow requests may still be in the database)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        active = psql(f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{API_ROLE}' AND state = 'active' "
                      "AND datname = current_database()")
        if active == "0":
            return time.monotonic() - started
        time.sleep(0.5)
    return time.monotonic() - started


def _proc_times() -> dict[int, tuple[str, int, int, int]]:
    """pid -> (comm, process group, utime + stime in clock ticks, start time) for every process."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        out[int(entry.name)] = (comm, int(fields[2]), int(fields[11]) + int(fields[12]), int(fields[19]))
    return out


class ForeignCPU:
    """CPU seconds used during a cell by processes that are not part of the benchmark (other people's work on
    the same machine: tests, builds). Counts the servers' process groups, wrk, this script and the PostgreSQL
    processes of the benchmark database as ours; everything else as foreign (processes that start and end
    within the cell are missed, so this is a lower bound)."""

    def __init__(self, own_groups: set[int]):
        self.own_groups = own_groups
        self.before = _proc_times()

    def _ours(self, pid: int, comm: str, pgid: int, bench_backends: set[int]) -> bool:
        if pgid in self.own_groups or comm == "wrk" or pid == os.getpid():
            return True
        return comm == "postgres" and (pid in bench_backends or pid not in self.other_backends)

    def seconds(self) -> float:
        after = _proc_times()
        rows = psql("SELECT pid, datname = current_database() FROM pg_stat_activity WHERE datname IS NOT NULL")
        bench, other = set(), set()
        for line in rows.splitlines():
            pid, same = line.split("|")
            (bench if same == "t" else other).add(int(pid))
        self.other_backends = other
        ticks = 0
        for pid, (comm, pgid, t, start) in after.items():
            if self._ours(pid, comm, pgid, bench):
                continue
            previous = self.before.get(pid)
            ticks += t - previous[2] if previous and previous[3] == start else t  # same process, or a new one
        return ticks / os.sysconf("SC_CLK_TCK")


def wait_quiet(own_groups: set[int], limit: float) -> None:
    """Wait (up to `limit` s) until other processes leave the 2 cores alone for 5 s, so they don't skew cells."""
    started = time.monotonic()
    while True:
        probe = ForeignCPU(own_groups)
        time.sleep(5)
        used = probe.seconds()
        if used < 0.5 or time.monotonic() - started > limit:
            if used >= 0.5:
                log(f"other processes still busy ({used:.1f} CPU s in 5 s); timing anyway (see the report)")
            return
        log(f"other processes use the CPU ({used:.1f} CPU s in 5 s): waiting …")


# ---------------------------------------------------------------------------------------------- 5. checks
def check_answer(kind: str, server: str, req: Request, status: int, headers: dict, body: bytes) -> str | None:
    """None if the answer is right, else what is wrong."""
    kind = kind.removesuffix(ACCESS_LOG_SUFFIX)
    ctype = headers.get("content-type", "")
    if kind.startswith("tile"):
        if status == 204:
            return None if (server == "ours" and kind == "tile_z12") else "204 (empty) for a dense tile"
        if status != 200:
            return f"HTTP {status}: {body[:160]!r}"
        if not body:
            return "empty body"
        if "vector-tile" not in ctype and "mvt" not in ctype and "protobuf" not in ctype:
            return f"content-type {ctype}"
        return None
    if status != 200:
        return f"HTTP {status}: {body[:200]!r}"
    try:
        doc = json.loads(body)
    except ValueError:
        return f"not JSON ({ctype})"
    e = req.expect
    if kind == "landing":
        return None if isinstance(doc.get("links"), list) and doc["links"] else "no links"
    if kind == "item_by_id":
        if doc.get("type") != "Feature" or str(doc.get("id")) != str(e["id"]):
            return f"wrong feature id {doc.get('id')!r}"
        return None if doc.get("geometry") else "no geometry"
    features = doc.get("features")
    if doc.get("type") != "FeatureCollection" or not isinstance(features, list):
        return "not a FeatureCollection"
    if len(features) != e["features"]:
        return f"{len(features)} features, expected {e['features']}"
    if "first_id" in e and str(features[0].get("id")) != str(e["first_id"]):
        return f"page starts at id {features[0].get('id')}, expected {e['first_id']}"
    if "land_use_code" in e:
        wrong = [f for f in features if f["properties"].get("land_use_code") != e["land_use_code"]]
        if wrong:
            return f"{len(wrong)} features without land_use_code={e['land_use_code']}"
    if "bbox" in e:
        x1, y1, x2, y2 = e["bbox"]
        pad = 0.01
        for f in features[:5]:
            pts = re.findall(r"\[(-?\d+\.?\d*),\s*(-?\d+\.?\d*)\]", json.dumps(f["geometry"]))
            if not any(x1 - pad <= float(a) <= x2 + pad and y1 - pad <= float(b) <= y2 + pad for a, b in pts):
                return f"feature {f.get('id')} lies outside the bbox"
    return None


def _plain(text: str) -> str:
    """An error message without HTML markup and byte-string quoting, shortened."""
    text = re.sub(r"<[^>]+>", " ", text.replace("\\n", " "))
    text = re.sub(r"\s+", " ", text.replace("b'", "").replace('b"', "")).strip(" '\"")
    return text if len(text) <= 140 else text[:137] + "..."


def _log_near(log_path: Path, path: str) -> str:
    """The server log from the last line naming `path` on (where its error, if any, was logged)."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return ""
    at = text.rfind(path)
    return text[at:at + 6000] if at >= 0 else ""


@dataclass
class Cell:
    kind: str
    server: str
    status: str = "ok"          # ok | unsupported | failed | too_slow | not_comparable
    note: str = ""
    single_s: float | None = None
    result: dict | None = None
    bytes_per_response: float | None = None


def validate(servers: dict[str, Server], work: dict[str, list[Request]], kinds: list[str],
             slow_limit: float) -> dict[tuple[str, str], Cell]:
    cells: dict[tuple[str, str], Cell] = {}
    for kind in kinds:
        for name, server in servers.items():
            reqs = [r for r in work[kind] if name in r.paths]
            if not reqs:
                continue
            cell = Cell(kind, name)
            cells[(kind, name)] = cell
            problems, times, sizes, statuses, intermittent = [], [], [], set(), []
            for req in reqs[:10]:
                if len(times) >= 2 and max(times) > 2:  # slow cells (stock tiles): two requests are enough
                    break
                for attempt in range(3):
                    started = time.perf_counter()
                    try:
                        status, headers, body = get(server.port, req.paths[name], timeout=WRK_TIMEOUT_S + 35)
                    except (OSError, http.client.HTTPException) as exc:
                        status, headers, body = 0, {}, repr(exc).encode()
                    elapsed = time.perf_counter() - started
                    problem = check_answer(kind, name, req, status, headers, body)
                    # a server error that goes away when the same request is repeated is reported, not fatal
                    if problem and (status >= 500 or status == 0) and elapsed < 5 and attempt < 2:
                        intermittent.append(_plain(problem))
                        continue
                    break
                times.append(elapsed)
                statuses.add(status)
                sizes.append(len(body))
                if problem:
                    problems.append(problem)
                    break
            cell.single_s = statistics.median(times) if times else None
            cell.bytes_per_response = statistics.mean(sizes) if sizes else None
            if problems:
                cell.status = "failed"
                cell.bytes_per_response = None
                cell.note = f"{_plain(problems[0])} after {max(times):.1f} s"
                if "statement timeout" in _log_near(server.log_path, req.paths[name].split("?")[0]):
                    cell.note += " (the database cancelled the query at the 30 s statement_timeout)"
            elif kind == "tile_z12" and name == "ours" and statuses == {204}:
                cell.status = "ok"
                cell.note = "204 No Content: the parcels layer starts at zoom 14 (layers/cadastral_parcels.yml)"
            elif cell.single_s is not None and cell.single_s > slow_limit:
                cell.bytes_per_response = statistics.mean(sizes) if sizes else None
                cell.status = "too_slow"
                cell.note = f"one request takes {cell.single_s:.1f} s (sequential, idle server)"
            if intermittent and cell.status != "failed":
                cell.note = (f"intermittent: {len(intermittent)} of {len(times) + len(intermittent)} checked requests "
                             f"failed and succeeded when repeated: {intermittent[0]}")
            log(f"check {kind:18s} {name:5s}: {cell.status} "
                f"{'' if cell.single_s is None else f'{cell.single_s * 1000:.0f} ms'} {cell.note}")
            wait_db_idle()
    return cells


# ---------------------------------------------------------------------------------------------- 6. load
def wrk(port: int, paths_file: Path, seconds: float, threads: int, connections: int) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
           "--timeout", f"{WRK_TIMEOUT_S}s", "-s", str(API_DIR / "urls.lua"), f"http://127.0.0.1:{port}", "--",
           str(paths_file)]
    out = run(cmd, timeout=seconds + WRK_TIMEOUT_S + 60).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result:\n{out}")
    data = json.loads(line[len("BENCHJSON "):])
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    data["raw"] = out
    return data


def load_phase(servers: dict[str, Server], work: dict[str, list[Request]], cells: dict, kinds: list[str],
               args) -> None:
    lists = OUT / "paths"
    lists.mkdir(parents=True, exist_ok=True)
    for round_no, kind in enumerate(kinds):
        names = [n for n in (*SERVERS, LOGGED) if (kind, n) in cells]
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:  # who goes first rotates
            cell = cells[(kind, name)]
            if cell.status not in ("ok",):
                continue
            paths_file = lists / f"{kind}.{name}.txt"
            paths_file.write_text("\n".join(r.paths[name] for r in work[kind] if name in r.paths) + "\n")
            port = servers[name].port
            if args.warmup > 0:
                wrk(port, paths_file, args.warmup, args.threads, args.connections)
                wait_db_idle()
            foreign = ForeignCPU({server.proc.pid for server in servers.values()})
            result = wrk(port, paths_file, args.seconds, args.threads, args.connections)
            result["foreign_cpu_s"] = foreign.seconds()
            idle = wait_db_idle()
            cell.result = result
            if result["requests"]:
                cell.bytes_per_response = result["bytes"] / result["requests"]
            errors = {k: v for k, v in result["errors"].items() if v}
            notes = ""
            if errors:
                notes += f"  errors {json.dumps(errors)}"
            if idle > 1:
                notes += f"  (db busy {idle:.0f} s after)"
            if result["foreign_cpu_s"] > 0.5:
                notes += f"  OTHER PROCESSES used {result['foreign_cpu_s']:.1f} CPU s"
            log(f"{kind:18s} {name:5s} {result['rps']:8.1f} req/s  p95 {result['latency_us']['p95'] / 1000:8.1f} ms"
                f"  p50 {result['latency_us']['p50'] / 1000:7.1f} ms  n={result['requests']}{notes}")


# ---------------------------------------------------------------------------------------------- 7. latency
def sequential_latency(port: int, path: str, n: int = 200) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    try:
        for _ in range(n + 10):
            started = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            times.append(time.perf_counter() - started)
    finally:
        conn.close()
    times = sorted(times[10:])  # first 10: warm-up
    return {"n": len(times), "median_ms": statistics.median(times) * 1000,
            "p95_ms": times[int(0.95 * (len(times) - 1))] * 1000, "max_ms": times[-1] * 1000,
            "over_40ms": sum(t > 0.040 for t in times)}


# ---------------------------------------------------------------------------------------------- 8. report
def versions() -> dict:
    def first_line(cmd: list[str]) -> str:
        res = run(cmd, check=False)
        return (res.stdout or res.stderr).strip().splitlines()[0] if (res.stdout or res.stderr).strip() else "?"

    main_py = str(VENV_BIN / "python")
    tipg_py = str(TIPG_VENV / "bin" / "python")
    meta = "import importlib.metadata as m, sys; print(' '.join(f'{p}=' + m.version(p) for p in sys.argv[1:]))"
    return {
        "main": first_line([main_py, "-c", meta, "pygeoapi", "gunicorn", "Flask", "SQLAlchemy", "psycopg2-binary"]),
        "tipg": first_line([tipg_py, "-c", meta, "tipg", "uvicorn", "uvloop", "httptools", "fastapi", "asyncpg",
                            "orjson"]),
        "wrk": first_line(["wrk", "-v"]).split(" Copyright")[0],
        "python": platform.python_version(),
    }


def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem = f"{int(Path('/proc/meminfo').read_text().split()[1]) / 2**20:.0f} GiB"
    return f"{platform.node()}, {os.cpu_count()} cores ({cpu}), {mem} RAM, Linux {platform.release()}"


def fmt_rps(cell: Cell | None) -> str:
    if cell is None:
        return "—"
    if cell.result is None:
        return {"failed": "fails", "too_slow": "too slow", "unsupported": "n/a"}.get(cell.status, "—")
    if not cell.result["requests"]:
        return "0 completed"
    return f"{cell.result['rps']:,.1f}" if cell.result["rps"] < 100 else f"{cell.result['rps']:,.0f}"


def fmt_p95(cell: Cell | None) -> str:
    if cell is None or cell.result is None:
        if cell is not None and cell.single_s is not None and cell.status == "too_slow":
            return f"({cell.single_s * 1000:,.0f} single)"
        return "—"
    if not cell.result["requests"]:
        return f"> {cell.result['duration_us'] / 1e6:.0f} s"
    return f"{cell.result['latency_us']['p95'] / 1000:,.1f}"


def errors_of(cell: Cell | None) -> int:
    if cell is None or cell.result is None:
        return 0
    e = cell.result["errors"]
    return e["status"] + e["timeout"] + e["connect"] + e["read"] + e["write"]


def report(cells: dict, kinds: list[str], extra: list[str], db: dict, latency: dict, args, started: float,
           work: dict) -> str:
    lines = []
    now = dt.datetime.now()
    lines.append(f"\n## OGC API benchmark, {now:%Y-%m-%d %H:%M} (1,000,000 parcels)\n")
    cache = ("our tile cache ON (emptied at start: the first pass over each tile URL is cut by PostGIS, later "
             "passes read the file)" if args.tile_cache == "on" else "our tile cache OFF (every tile cut by PostGIS)")
    lines.append(f"`bench/api.py --seconds {args.seconds:g} --tile-cache {args.tile_cache}"
                 f"{' --only ' + args.only if args.only else ''}`; {cache}. {db['parcels']:,} live parcels in `api.cadastral_parcels` "
                 f"(the 1,000,000-parcel file after validation), database `{DATABASE}` (PostgreSQL {db['postgres']}, "
                 f"PostGIS {db['postgis']}, table {db['table_mb']:,} MiB, shared_buffers {db['shared_buffers']}). "
                 f"wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s on loopback after a {args.warmup:g} s "
                 f"warm-up per cell; request types interleaved, servers in rotating order; each server 2 processes. "
                 f"req/s = completed requests / s; p95 in ms (wrk, all connections). Run took "
                 f"{(time.monotonic() - started) / 60:.0f} min.\n")
    lines.append("| request | ours req/s | ours p95 | stock pygeoapi req/s | stock p95 | tipg req/s | tipg p95 | "
                 "ours / faster peer | target ≥ 1.25× |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    verdicts = {}
    for kind in kinds:
        o, s, t = (cells.get((kind, n)) for n in SERVERS)
        peers = [c for c in (s, t) if c is not None and c.result is not None and c.result["requests"]]
        ratio_txt, verdict = "—", "n/a"
        if kind == "tile_z12":
            ratio_txt, verdict = "—", "not comparable: ours answers 204 by design (minzoom 14)"
        elif o is not None and o.result is not None and peers:
            best = max(peers, key=lambda c: c.result["rps"])
            ratio = o.result["rps"] / best.result["rps"]
            ratio_txt = f"{ratio:.2f}× ({best.server})"
            verdict = "**holds**" if ratio >= 1.25 else "**misses**"
            if errors_of(o):
                verdict += f" (ours had {errors_of(o)} errors)"
        elif o is not None and o.result is not None:
            verdict = "holds (no peer can serve it)"
        verdicts[kind] = verdict
        lines.append(f"| {TYPES[kind]} | {fmt_rps(o)} | {fmt_p95(o)} | {fmt_rps(s)} | {fmt_p95(s)} | {fmt_rps(t)} | "
                     f"{fmt_p95(t)} | {ratio_txt} | {verdict} |")
    for kind in extra:
        o = cells.get((kind, "ours")) or cells.get((kind, LOGGED))
        lines.append(f"| {EXTRA_TYPES[kind]} | {fmt_rps(o)} | {fmt_p95(o)} | | | | | | (informative) |")
    z14 = cells.get(("tile_z14", "ours"))
    z14_p95 = z14.result["latency_us"]["p95"] / 1000 if z14 is not None and z14.result else None
    lines.append("")
    held = [k for k in kinds if verdicts.get(k, "").startswith("**holds")]
    missed = [k for k in kinds if verdicts.get(k, "").startswith("**misses")]
    lines.append(f"- throughput target (≥ 1.25× the faster peer): holds for {len(held)} "
                 f"({', '.join(held) or 'none'}), misses for {len(missed)} ({', '.join(missed) or 'none'}); "
                 "zoom 12 is not comparable (see notes).")
    if z14_p95 is not None:
        lines.append(f"- p95 of a zoom-14 tile (ours): **{z14_p95:.1f} ms** → target < 100 ms "
                     f"**{'holds' if z14_p95 < 100 else 'misses'}**.")
    # errors and problems
    problems = []
    for (kind, name), cell in sorted(cells.items()):
        if cell.status != "ok" or errors_of(cell):
            what = cell.note if cell.status != "ok" else ""
            if errors_of(cell):
                errs = {k: v for k, v in cell.result["errors"].items() if v}
                what = (what + "; " if what else "") + f"wrk errors {errs} of {cell.result['requests']} requests"
            problems.append(f"  - {name} / {kind}: {cell.status}: {what}")
        elif cell.note:
            problems.append(f"  - {name} / {kind}: {cell.note}")
    foreign = [(k, n, c.result["foreign_cpu_s"]) for (k, n), c in cells.items()
               if c.result is not None and c.result.get("foreign_cpu_s", 0) > 0.5]
    total_foreign = sum(c.result.get("foreign_cpu_s", 0) for c in cells.values() if c.result is not None)
    lines.append(f"- other processes on the machine used {total_foreign:.1f} CPU s during the timed cells"
                 + (": " + ", ".join(f"{n}/{k} {s:.1f} s" for k, n, s in foreign) if foreign else
                    " (quiet machine)") + ".")
    if db.get("ours_restarts"):
        lines.append(f"- our gunicorn recycled a worker {db['ours_restarts']} times during the run (max_requests 5000 "
                     "± 500 in gisplatform/publish/gunicorn_conf.py): each restart re-imports pygeoapi and empties "
                     "the per-process caches (count cache, connection pool), visible as p95 outliers.")
    if problems:
        lines.append("- cells not timed or with errors/notes:")
        lines += problems
    # payloads
    lines.append("\nMean response size in bytes (wrk: body + headers, ~250 B of headers; a check's body where a cell "
                 "was not timed):\n")
    lines.append("| request | ours | stock pygeoapi | tipg |")
    lines.append("|---|---:|---:|---:|")
    for kind in kinds + extra:
        row = []
        for n in SERVERS:
            c = cells.get((kind, n))
            row.append(f"{c.bytes_per_response:,.0f}" if c is not None and c.bytes_per_response else "—")
        lines.append(f"| {kind} | {' | '.join(row)} |")
    lines.append("\nSingle small request, one keep-alive connection, 200 sequential GETs of the landing page "
                 "(Nagle / delayed-ACK check: a stall shows as ~40 ms):\n")
    lines.append("| server | median ms | p95 ms | max ms | requests over 40 ms |")
    lines.append("|---|---:|---:|---:|---:|")
    for name in SERVERS:
        lat = latency.get(name)
        if lat:
            lines.append(f"| {LABEL[name]} | {lat['median_ms']:.2f} | {lat['p95_ms']:.2f} | {lat['max_ms']:.2f} | "
                         f"{lat['over_40ms']} |")
    v = versions()
    lines.append(f"\nMachine: {machine()}. Python {v['python']}. Versions: {v['main']} (ours and stock); "
                 f"{v['tipg']} (tipg venv); {v['wrk']}.\n")
    counts = {k: len(work[k]) for k in kinds + extra}
    lines.append("Workload (seed " + str(SEED) + ", bench/out/api/workload.json): "
                 + ", ".join(f"{k} {n}" for k, n in counts.items()) + " distinct URLs per server.\n")
    lines.append(NOTES)
    return "\n".join(lines) + "\n"


NOTES = """Notes (what differs between the servers; see bench/README.md):
- Same logical requests, each server's URL pattern: ours `/ogc/collections/cadastral_parcels/...`, stock
  pygeoapi `/collections/cadastral_parcels/...`, tipg `/collections/api.cadastral_parcels/...`; tiles z/y/x
  for both pygeoapi servers, z/x/y for tipg; tipg's CQL2 names the column (`geom_wgs84`), pygeoapi `geometry`.
- items limit 1000: page k of a walk through the table, asked as each server's own `next` link asks: ours with
  `offset` + keyset cursor `after` (WHERE id > last id), stock and tipg with `offset` (rows skipped). The row
  "ours: … offset only" times ours without the cursor.
- numberMatched: ours gives it free without a filter (the ETL run's count) and with a filter from a per-process
  cache or a count under a 300 ms budget; stock runs with `count: false` (none); tipg runs COUNT(*) on every
  items request (no switch).
- Output: ours 7 decimals (CRS84 copy, `ST_AsGeoJSON` in SQL); stock full double precision built per feature in
  Python (WKB → shapely → dict → json); tipg 9 decimals via `ST_AsGeoJSON` + orjson, plus per-feature links.
- Tiles: ours keeps the 5 000 largest parcels per tile, simplifies below maxzoom, 6 properties, starts at z14;
  tipg up to 10 000 features per tile, all 15 properties, no simplification; stock MVT-postgresql transforms
  with CRS strings (ST_Transform(geom, 'EPSG:3857'), ~10 ms per row on PostGIS 3.3) and puts every column of
  the view (incl. the EPSG:9215 `geom` as text) into the tile.
- All three connect as `gisplatform_api` with jit=off and statement_timeout=30 s, and none writes an access log
  (ours: `GISPLATFORM_ACCESS_LOG=""`; in production ours logs every request): the rows "ours with gunicorn's
  access log on" time a second instance of ours with it, to keep its cost visible. tipg runs with
  `TIPG_CATALOG_TTL=0` (no periodic catalogue refresh, like the pygeoapi servers): with its default 300 s,
  requests arriving during a refresh each start another one and the pile-up stalled one cell per 5 minutes in
  earlier runs.
"""


# ---------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10, help="timed seconds per (request type, server)")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds per cell (0: none)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="server processes (each server)")
    parser.add_argument("--server-threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--only", help="comma-separated request types (default: all)")
    parser.add_argument("--no-append", action="store_true", help="do not append to bench/RESULTS.md")
    parser.add_argument("--keep-servers", action="store_true", help="leave the servers running (debugging)")
    parser.add_argument("--tile-cache", choices=("on", "off"), default="on",
                        help="our server's tile cache (emptied at start; 'off': every tile cut by PostGIS)")
    parser.add_argument("--wait-quiet", type=float, default=600,
                        help="seconds to wait for other processes to go quiet before timing")
    args = parser.parse_args()
    started = time.monotonic()
    kinds = list(TYPES)
    extra = list(EXTRA_TYPES)
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - set(TYPES) - set(EXTRA_TYPES)
        if unknown:
            raise SystemExit(f"unknown request types {sorted(unknown)}; choose from {list(TYPES) + list(EXTRA_TYPES)}")
        kinds = [k for k in kinds if k in wanted]
        extra = [k for k in extra if k in wanted]
    OUT.mkdir(parents=True, exist_ok=True)

    ensure_tools()
    db = ensure_database()
    log("drawing the workload from the data …")
    sizes = {"items_bbox": 40, "items_1000": 40, "item_by_id": 300, "attr_filter": 8, "cql2_spatial": 40,
             "tile_z12": 6, "tile_z14": 24, "tile_z16": 60}
    work = build_workload(sizes)
    (OUT / "workload.json").write_text(json.dumps(
        {k: [{"paths": r.paths, "expect": r.expect} for r in v] for k, v in work.items()}, indent=1, default=str))

    shutil.rmtree(OUT / "tile-cache", ignore_errors=True)  # every run starts with our tile cache empty
    servers = make_servers(args.workers, args.server_threads, tile_cache=args.tile_cache == "on",
                           logged=any(k.endswith(ACCESS_LOG_SUFFIX) for k in extra))

    def _stop(signum, frame):  # SIGTERM/SIGHUP: stop the servers on the way out, as Ctrl+C does
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    try:
        start_servers(servers)
        log("checking every request type on every server …")
        cells = validate(servers, work, kinds + extra, slow_limit=args.seconds)
        wait_quiet({server.proc.pid for server in servers.values()}, args.wait_quiet)
        log("timing …")
        load_phase(servers, work, cells, kinds + extra, args)
        log("single-request latency (Nagle check) …")
        latency = {}
        for name in SERVERS:
            latency[name] = sequential_latency(servers[name].port, work["landing"][0].paths[name])
            log(f"{name}: {json.dumps({k: round(v, 2) for k, v in latency[name].items()})}")
        restarts = servers["ours"].log_path.read_text(errors="replace").count("Autorestarting worker")
        db["ours_restarts"] = restarts
        text = report(cells, kinds, extra, db, latency, args, started, work)
        (OUT / "cells.json").write_text(json.dumps(
            {f"{k}|{n}": {"status": c.status, "note": c.note, "single_s": c.single_s,
                          "result": {kk: vv for kk, vv in (c.result or {}).items() if kk != "raw"}}
             for (k, n), c in cells.items()}, indent=1))
        print(text)
        if not args.no_append:
            with (HERE / "RESULTS.md").open("a", encoding="utf-8") as fh:
                fh.write(text)
            log("appended to bench/RESULTS.md")
    finally:
        if not args.keep_servers:
            for server in servers.values():
                server.stop()


if __name__ == "__main__":
    main()
