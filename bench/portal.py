"""Portal budget: first meaningful map render on loopback with the 1,000,000-parcel database.

    .venv/bin/python bench/portal.py [--loads 5] [--no-append]

Starts `gisplatform serve` (2 workers, as shipped, tile cache in a fresh folder) on `gisplatform_bench` (made by
bench/load.py and bench/api.py), then opens the portal in Debian's headless Chromium, each load with a new
browser profile (nothing in the browser cache), at two places:

- the province overview (communes, water, licences; parcels start at zoom 14), the page as a visitor first sees it;
- zoom 15 in the densest part of the parcel layer (``#map=15/lat/lon``), the view after a parcel lookup.

Timings are the page's own (``window.portal.timings``, ms from navigation start): ``firstRender`` is the first
frame drawn after the first vector tile arrived (the "first meaningful render" of the issue), ``idle`` is when
every tile of the view is drawn. The first load of each view meets an empty tile cache (every tile is cut by
PostGIS); the later loads find the tiles cached, as the department's visitors mostly will. Budget: 2 s.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATABASE = "gisplatform_bench"
SERVER = os.environ.get("GISPLATFORM_BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432")
PORT = 18790
BUDGET_MS = 2000


def dense_spot() -> tuple[float, float]:
    """A parcel's interior point in the middle of the densest part of the layer (lon, lat)."""
    sql = ("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom_wgs84) p FROM api.cadastral_parcels "
           "WHERE id = (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY id) FROM api.cadastral_parcels)) t")
    lon, lat = (float(v) for v in psql(sql).split(","))
    return lon, lat


OTHER_JOBS = ("admin_units", "water_sources", "water_protection_corridors", "mining_licences", "water_licences")


def psql(sql: str) -> str:
    return subprocess.run(["psql", f"{SERVER}/{DATABASE}", "-AtF,", "-c", sql], capture_output=True, text=True,
                          check=True).stdout.strip()


def load_other_layers() -> None:
    """The sample's communes, water and licences beside the million parcels, so the map shows every layer."""
    env = {**os.environ, "GISPLATFORM_DATABASE_URL": f"{SERVER}/{DATABASE}"}
    for job in OTHER_JOBS:
        if int(psql(f"SELECT count(*) FROM api.{job}")) == 0:
            print(f"loading the sample's {job} into {DATABASE} …", flush=True)
            subprocess.run([str(Path(sys.executable).parent / "gisplatform"), "etl", "run", job, "-q"], env=env,
                           check=True, capture_output=True)


def start_server(cache: Path) -> subprocess.Popen:
    env = {**os.environ, "GISPLATFORM_DATABASE_URL": f"{SERVER}/{DATABASE}", "GISPLATFORM_TILE_CACHE": str(cache),
           "GISPLATFORM_VAR": str(cache.parent)}
    process = subprocess.Popen([str(Path(sys.executable).parent / "gisplatform"), "serve", "--port", str(PORT),
                                "--workers", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{PORT}/ogc/", timeout=5).ok:
                return process
        except requests.ConnectionError:
            time.sleep(0.5)
    os.killpg(process.pid, signal.SIGTERM)
    raise SystemExit("the server did not start within 180 s")


def load_once(url: str) -> dict:
    """One page load in a new headless Chromium profile: the page's timings."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="portal-bench-")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--enable-unsafe-swiftshader", "--use-angle=swiftshader", f"--user-data-dir={profile}",
                 "--window-size=1366,850"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))
    try:
        driver.get(url)
        deadline = time.monotonic() + 60
        while not driver.execute_script("return !!(window.portal && window.portal.ready)"):
            if time.monotonic() > deadline:
                raise SystemExit(f"{url}: the map never became idle")
            time.sleep(0.05)
        return driver.execute_script("return window.portal.timings")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loads", type=int, default=5, help="page loads per view (the first meets a cold cache)")
    parser.add_argument("--no-append", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()

    parcels = int(psql("SELECT count(*) FROM api.cadastral_parcels"))
    load_other_layers()
    lon, lat = dense_spot()
    work = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    server = start_server(work / "tile-cache")
    base = f"http://127.0.0.1:{PORT}/"
    views = {"province overview": base, f"zoom 15 at {lat:.5f}, {lon:.5f} (parcels)": f"{base}#map=15/{lat}/{lon}"}
    rows = []
    try:
        for name, url in views.items():
            timings = [load_once(url) for _ in range(args.loads)]
            for t in timings:
                print(name, json.dumps(t), flush=True)
            cold, warm = timings[0], timings[1:]
            rows.append((name, cold, warm))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        shutil.rmtree(work, ignore_errors=True)

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):,.0f}" if values else "—"

    lines = [f"\n## Portal first render, {dt.datetime.now():%Y-%m-%d %H:%M} ({parcels:,} parcels)\n",
             f"`bench/portal.py --loads {args.loads}`: headless Chromium (Debian, software WebGL), a new profile per "
             "load, 1366×850, loopback, `gisplatform serve` with 2 workers. ms from navigation start; warm = median "
             f"of the {args.loads - 1} later loads (tiles cached by the server, not by the browser).\n",
             "| view | cold: first render | cold: all drawn | warm: first render | warm: all drawn | budget 2 s |",
             "|---|---:|---:|---:|---:|---|"]
    for name, cold, warm in rows:
        worst = max([cold.get("firstRender", 1e9)] + [t.get("firstRender", 1e9) for t in warm])
        lines.append(f"| {name} | {cold.get('firstRender', float('nan')):,.0f} | {cold['idle']:,.0f} | "
                     f"{cell([t['firstRender'] for t in warm if 'firstRender' in t])} | "
                     f"{cell([t['idle'] for t in warm])} | {'holds' if worst < BUDGET_MS else '**misses**'} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_append:
        with (HERE / "RESULTS.md").open("a", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
