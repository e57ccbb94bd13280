"""Conflict benchmark: full recompute of every rule on the 1,000,000-parcel database, then the incremental one
the ETL runs after a 1 %-changed parcel file; both times and their ratio (target: incremental ≥ 20× faster).

    .venv/bin/python bench/conflicts.py [--parcels 1000000]

Steps:
  1. generate (once, cached in bench/data/, shared with bench/load.py) the N-parcel GeoPackage and its 1 %-changed
     copy;
  2. recreate the database ``gisplatform_bench_conflicts`` (not bench/load.py's), run the sample's jobs for
     admin units, mining and water licences, water sources and corridors, then load the N parcels
     (that run already triggers a full recompute, a first load being a "large change");
  3. time ``gisplatform conflicts recompute`` (every rule, all data): the full recompute;
  4. load the 1 %-changed file: the runner re-checks only the changed parcels (incremental);
  5. read both durations from ``analysis.runs`` (database side, no process start-up in either) and append the
     figures to bench/RESULTS.md.

Not run in the test suite (it takes tens of minutes on 2 cores); run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from load import ROOT, SERVER, VENV_BIN, generate, measured, sh  # noqa: E402  (bench/load.py)

DATABASE = "gisplatform_bench_conflicts"
CONTEXT_JOBS = ("admin_units", "mining_licences", "water_sources", "water_protection_corridors", "water_licences")


def psql(sql: str) -> str:
    return subprocess.run(["psql", f"{SERVER}/{DATABASE}", "-Atc", sql], capture_output=True, text=True,
                          check=True).stdout.strip()


def last_analysis_run() -> dict:
    row = psql("SELECT mode, changed, checks, found, opened, resolved, open_total, "
               "extract(epoch FROM finished_at - started_at) FROM analysis.runs ORDER BY run_id DESC LIMIT 1")
    mode, changed, checks, found, opened, resolved, open_total, seconds = row.split("|")
    return dict(mode=mode, changed=int(changed or 0), checks=int(checks), found=int(found), opened=int(opened),
                resolved=int(resolved), open_total=int(open_total), seconds=float(seconds))


def prepare(env: dict, base: Path) -> None:
    sh(["psql", f"{SERVER}/postgres", "-qc", f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"])
    sh([str(VENV_BIN / "gisplatform"), "db", "init"], env)
    for job in CONTEXT_JOBS:
        sh([str(VENV_BIN / "gisplatform"), "etl", "run", job, "-q"], env)
    print(f"loading {base.name} …", flush=True)
    load(base, env)


def load(path: Path, env: dict) -> float:
    seconds, _, _ = measured([str(VENV_BIN / "gisplatform"), "etl", "load", "cadastral_parcels", str(path),
                              "--crs", "EPSG:9215", "--mode", "full", "-q"], env)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parcels", type=int, default=1_000_000)
    parser.add_argument("--no-append", action="store_true", help="print the report only")
    args = parser.parse_args()
    env = {"GISPLATFORM_DATABASE_URL": f"{SERVER}/{DATABASE}"}
    base, changed = generate(args.parcels)
    prepare(env, base)

    print("full recompute …", flush=True)
    wall, _, _ = measured([str(VENV_BIN / "gisplatform"), "conflicts", "recompute"], env)
    full = last_analysis_run()
    print("1 %-changed parcels: ETL run with incremental recompute …", flush=True)
    load_seconds = load(changed, env)
    incremental = last_analysis_run()
    ratio = full["seconds"] / incremental["seconds"] if incremental["seconds"] else float("inf")

    table = ["| recompute | mode | changed features | checks | found | new | resolved | open after | seconds |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in (("full (`gisplatform conflicts recompute`)", full),
                    ("after the 1 %-change ETL run", incremental)):
        table.append(f"| {name} | {r['mode']} | {r['changed']:,} | {r['checks']} | {r['found']:,} | {r['opened']:,} "
                     f"| {r['resolved']:,} | {r['open_total']:,} | {r['seconds']:.2f} |")
    report = (f"\n## Conflict benchmark, {dt.datetime.now():%Y-%m-%d %H:%M} ({args.parcels:,} parcels)\n\n"
              f"Machine: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
              f"data: `{base.relative_to(ROOT)}` and its 1 %-changed copy; the sample's licences, water data and "
              f"communes.\n\n" + "\n".join(table) + "\n\n"
              f"- full / incremental: **{ratio:.1f}×** (target ≥ 20)\n"
              f"- wall time of `conflicts recompute` incl. start-up: {wall:.1f} s; "
              f"the 1 % ETL run incl. its recompute: {load_seconds:.1f} s\n")
    print(report)
    if not args.no_append:
        with (HERE / "RESULTS.md").open("a", encoding="utf-8") as fh:
            fh.write(report)


if __name__ == "__main__":
    main()
