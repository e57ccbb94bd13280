"""Load benchmark: our validated ETL against Debian's ogr2ogr on the same 1,000,000-parcel file, in one run.

    .venv/bin/python bench/load.py [--parcels 1000000] [--rounds 1]

Steps (each timed with wall clock; peak memory of our process from getrusage; the whole machine's CPU-seconds
from /proc/stat, the database's backends included):
  1. generate (once, cached in bench/data/) a single GeoPackage of N parcels and a copy with 1 % changed;
  2. ogr2ogr loads the file into PostGIS (reprojection to EPSG:4326 and a GiST index, as a plain load does);
  3. `gisplatform etl load` loads it with every validation rule, history and quarantine (fresh tables);
  4. `gisplatform etl load` re-runs with the 1 %-changed file (incremental work only);
each step starting on a settled server (CHECKPOINT and sync before it, not timed),
then prints the figures and appends them to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_BIN = Path(sys.executable).parent
DATA = HERE / "data"
DATABASE = "gisplatform_bench"
SERVER = os.environ.get("GISPLATFORM_BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432")


class MachineCpu:
    """The whole machine's busy CPU time (every core: user, system, interrupts; not idle or I/O wait), read from
    /proc/stat every 50 ms by a daemon thread, so that the CPU-seconds between any two moments can be looked up
    afterwards, up to the commit time a run reports. A step's CPU-seconds count its PostgreSQL backends too,
    which its own rusage does not, and they bound it: on N cores no schedule finishes C CPU-seconds in less than
    C / N seconds. Not on Linux: no figures (None)."""

    def __init__(self, interval: float = 0.05):
        self.samples: list[tuple[float, float]] = []  # (Unix time, busy CPU-seconds since boot)
        self.available = Path("/proc/stat").exists()
        self._tick = os.sysconf("SC_CLK_TCK") if self.available else 100
        if self.available:
            threading.Thread(target=self._sample, args=(interval,), name="machine-cpu", daemon=True).start()

    def _busy(self) -> float:
        with open("/proc/stat", encoding="ascii") as fh:
            user, nice, system, idle, iowait, irq, softirq, steal = map(int, fh.readline().split()[1:9])
        return (user + nice + system + irq + softirq + steal) / self._tick

    def _sample(self, interval: float) -> None:
        while True:
            self.samples.append((time.time(), self._busy()))
            time.sleep(interval)

    def at(self, moment: float) -> float | None:
        """Busy CPU-seconds at a moment, interpolated between the samples around it."""
        samples = self.samples[:]
        later = next((i for i, (t, _) in enumerate(samples) if t >= moment), None)
        if not samples or later is None or later == 0:
            return None
        (t0, b0), (t1, b1) = samples[later - 1], samples[later]
        return b0 + (b1 - b0) * (moment - t0) / (t1 - t0) if t1 > t0 else b1

    def between(self, start: float, end: float) -> float | None:
        time.sleep(0.1)  # a sample after ``end``
        first, last = self.at(start), self.at(end)
        return None if first is None or last is None else last - first


CPU = MachineCpu()


def sh(cmd: list[str], env: dict | None = None, quiet: bool = True) -> float:
    """Run a command, return its wall time; fail loudly with its output."""
    started = time.perf_counter()
    result = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=quiet, text=True)
    if result.returncode != 0:
        raise SystemExit(f"command failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - started


def measured(cmd: list[str], env: dict) -> tuple[float, float, float]:
    """Run a command in a child that reports its own peak RSS: (seconds, peak MiB, Unix time it was launched)."""
    probe = ("import resource, subprocess, sys, time, json;"
             "launched = time.time(); t = time.perf_counter();"
             "r = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
             "s = time.perf_counter() - t;"
             "print(json.dumps({'rc': r.returncode, 's': s, 'launched': launched,"
             "'kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,"
             "'out': r.stdout[-4000:], 'err': r.stderr[-4000:]}))")
    result = subprocess.run([sys.executable, "-c", probe, *cmd], env={**os.environ, **env}, capture_output=True,
                            text=True)
    data = json.loads(result.stdout)
    if data["rc"] != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{data['out']}\n{data['err']}")
    return data["s"], data["kb"] / 1024, data["launched"]


def generate(parcels: int) -> tuple[Path, Path]:
    base, changed = DATA / f"base_{parcels}", DATA / f"changed_{parcels}"
    for folder, fraction in ((base, "0"), (changed, "0.01")):
        target = folder / "cadastral" / "thua_dat.gpkg"
        if not target.exists():
            print(f"generating {folder.name} …", flush=True)
            sh([str(VENV_BIN / "gisplatform"), "sample", "generate", "--out", str(folder), "--parcels", str(parcels),
                "--single-file", "gpkg", "--parcels-only", "--change-fraction", fraction])
    return base / "cadastral" / "thua_dat.gpkg", changed / "cadastral" / "thua_dat.gpkg"


def reset_database(env: dict) -> None:
    sh(["psql", f"{SERVER}/postgres", "-qc", f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"])
    sh([str(VENV_BIN / "gisplatform"), "db", "init"], env)


def settle() -> float:
    """Start each measured step on a settled server: the previous step's dirty pages written out (CHECKPOINT,
    then the OS's sync). A million-row load leaves gigabytes of WAL and dirty buffers; without this the next
    step pays for the previous one's writes (seen here: a re-run's first commit waiting seconds behind a
    checkpoint). Every step, ogr2ogr's included, gets the same treatment. Returns the seconds it took."""
    started = time.perf_counter()
    sh(["psql", f"{SERVER}/{DATABASE}", "-qc", "CHECKPOINT"])
    sh(["sync"])
    return time.perf_counter() - started


def count(table: str) -> int:
    out = subprocess.run(["psql", f"{SERVER}/{DATABASE}", "-Atc", f"SELECT count(*) FROM {table}"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip())


def ogr2ogr(path: Path) -> tuple[float, float | None]:
    """(seconds, machine CPU-seconds) of ogr2ogr loading the file."""
    started = time.time()
    seconds = sh(["ogr2ogr", "-f", "PostgreSQL", f"PG:host=127.0.0.1 user=postgres dbname={DATABASE}", str(path),
               "-nln", "public.bench_ogr2ogr", "-lco", "GEOMETRY_NAME=geom", "-nlt", "PROMOTE_TO_MULTI",
               "-t_srs", "EPSG:4326", "-gt", "65536", "-overwrite"])
    return seconds, CPU.between(started, time.time())


def our_load(path: Path, env: dict, mode: str = "full") -> tuple[float, float, float, dict, float, float | None]:
    """(seconds to commit, seconds of the conflict recompute after it, peak MiB, counts, whole command's
    seconds, machine CPU-seconds to commit) of one `etl load`.

    Seconds to commit: from the command's launch to the commit of its transaction (the run's report says when,
    ``--json-report``). What follows the commit is not the load: the conflict recompute (issue 6's analysis of
    the changed features, benchmarked on its own in bench/conflicts.py; its time comes from analysis.runs), the
    vacuum and retention checks, printing the report and the interpreter's exit."""
    report_file = DATA / "last_report.json"
    report_file.unlink(missing_ok=True)
    seconds, peak, launched = measured([str(VENV_BIN / "gisplatform"), "etl", "load", "cadastral_parcels",
                                        str(path), "--crs", "EPSG:9215", "--mode", mode, "-q",
                                        "--json-report", str(report_file)], env)
    (report,) = json.loads(report_file.read_text(encoding="utf-8"))
    to_commit = report["committed_at"] - launched
    cpu = CPU.between(launched, report["committed_at"])
    out = subprocess.run(["psql", f"{SERVER}/{DATABASE}", "-Atc",
                          "SELECT extract(epoch FROM finished_at - started_at) FROM analysis.runs "
                          f"WHERE etl_run_id = {int(report['run_id'])}"], capture_output=True, text=True, check=True)
    conflicts = float(out.stdout.strip() or 0.0)
    counts = {k: report[k] for k in ("read", "inserted", "updated", "unchanged", "rejected", "retired")}
    print(f"  {to_commit:.1f} s to commit ({seconds:.1f} s in all, of which the conflict recompute {conflicts:.1f} s); "
          "phases " + ", ".join(f"{k} {v:.1f} s" for k, v in report["phases"].items()), flush=True)
    return to_commit, conflicts, peak, counts, seconds, cpu


def one_round(base: Path, changed: Path, env: dict) -> dict:
    """ogr2ogr, our full load and our re-run on a fresh database, each on a settled server."""
    reset_database(env)
    settled = [settle()]
    print("ogr2ogr …", flush=True)
    ogr_seconds, ogr_cpu = ogr2ogr(base)
    ogr_rows = count("public.bench_ogr2ogr")
    settled.append(settle())
    print("gisplatform full load …", flush=True)
    full_seconds, full_conflicts, full_peak, full_counts, full_wall, full_cpu = our_load(base, env)
    settled.append(settle())
    print("gisplatform re-run with 1 % changed …", flush=True)
    rerun_seconds, rerun_conflicts, rerun_peak, rerun_counts, rerun_wall, rerun_cpu = our_load(changed, env)
    return {"ogr": (ogr_rows, ogr_seconds), "full": (full_seconds, full_conflicts, full_peak, full_counts, full_wall),
            "rerun": (rerun_seconds, rerun_conflicts, rerun_peak, rerun_counts, rerun_wall), "settled": settled,
            "cpu": (ogr_cpu, full_cpu, rerun_cpu)}


def table_rows(result: dict, label: str) -> list[str]:
    ogr_rows, ogr_seconds = result["ogr"]
    full_seconds, full_conflicts, full_peak, full_counts, full_wall = result["full"]
    rerun_seconds, rerun_conflicts, rerun_peak, rerun_counts, rerun_wall = result["rerun"]
    ogr_cpu, full_cpu, rerun_cpu = result["cpu"]
    rows = [
        (f"{label}ogr2ogr 3.6 (GPKG → PostGIS, reprojection to 4326, GiST index, no validation)", ogr_rows,
         ogr_seconds, ogr_cpu, ogr_rows / ogr_seconds, None, ogr_seconds, None, "—"),
        (f"{label}gisplatform full load (all rules, history, quarantine, WGS84 copy, 2 GiST indexes)",
         full_counts["read"], full_seconds, full_cpu, full_counts["read"] / full_seconds, full_conflicts, full_wall,
         full_peak, json.dumps(full_counts)),
        (f"{label}gisplatform re-run, 1 % of parcels changed", rerun_counts["read"], rerun_seconds, rerun_cpu,
         rerun_counts["read"] / rerun_seconds, rerun_conflicts, rerun_wall, rerun_peak, json.dumps(rerun_counts)),
    ]
    return [f"| {name} | {n:,} | {s:.1f} | {_figure(cpu)} | {rate:,.0f} | {_figure(conflicts)} "
            f"| {wall:.1f} | {'' if peak is None else f'{peak:,.0f}'} | {counts} |"
            for name, n, s, cpu, rate, conflicts, wall, peak, counts in rows]


def _figure(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def ratios(result: dict) -> tuple[float, float, float]:
    """(full-load rate / ogr2ogr rate, full / re-run, the same with each command's conflict recompute)."""
    ogr_rows, ogr_seconds = result["ogr"]
    full_seconds, full_conflicts, _, full_counts, _ = result["full"]
    rerun_seconds, rerun_conflicts, _, _, _ = result["rerun"]
    return ((full_counts["read"] / full_seconds) / (ogr_rows / ogr_seconds), full_seconds / rerun_seconds,
            (full_seconds + full_conflicts) / (rerun_seconds + rerun_conflicts))


def cpu_budget(results: list[dict]) -> str:
    """The summary line of the machine's CPU-seconds to commit (medians over the rounds), with the floor they set:
    on this machine's cores no schedule finishes the full load in less than its CPU-seconds over the cores."""
    figures = [r["cpu"] for r in results]
    if any(f is None for row in figures for f in row):
        return ""
    ogr, full, rerun = (statistics.median(row[i] for row in figures) for i in range(3))
    cores = os.cpu_count() or 1
    return (f"- machine CPU-seconds to commit (medians; every process, PostgreSQL's backends included): ogr2ogr "
            f"{ogr:.1f}, full load {full:.1f} ({full / ogr:.2f}× ogr2ogr's), re-run {rerun:.1f}; on {cores} cores "
            f"no schedule finishes the full load in less than {full / cores:.1f} s, nor the re-run in less than "
            f"{rerun / cores:.1f} s\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parcels", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the three steps this many times, alternating (a shared VM's speed drifts by "
                             "a third within minutes: each round's ratios compare commands that ran side by side)")
    args = parser.parse_args()
    env = {"GISPLATFORM_DATABASE_URL": f"{SERVER}/{DATABASE}"}
    base, changed = generate(args.parcels)
    results = []
    for number in range(1, args.rounds + 1):
        if args.rounds > 1:
            print(f"round {number} of {args.rounds}", flush=True)
        results.append(one_round(base, changed, env))

    table = ["| step | rows | seconds to commit | machine CPU-s to commit | rows/s | then conflict recompute (s) "
             "| whole command (s) | peak RSS (MiB) | counts |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for number, result in enumerate(results, 1):
        table += table_rows(result, f"round {number}: " if len(results) > 1 else "")
    per_round = [ratios(r) for r in results]
    full_ratio, rerun_ratio, with_conflicts = (statistics.median(r[i] for r in per_round) for i in range(3))
    each = (lambda i: " (rounds: " + ", ".join(f"{r[i]:.2f}" for r in per_round) + ")") if len(results) > 1 \
        else (lambda i: "")
    median = "median " if len(results) > 1 else ""
    peak = max(r["full"][2] for r in results)
    lines = (f"- full load rate / ogr2ogr rate: {median}**{full_ratio:.2f}**{each(0)} (target ≥ 1.0)\n"
             f"- full load time / 1 %-change re-run time: {median}**{rerun_ratio:.1f}×**{each(1)} (target ≥ 10); "
             f"with the conflict recompute after each commit: {with_conflicts:.1f}×\n"
             f"- peak memory of the full load: **{peak:,.0f} MiB** (target < 2048)\n"
             + cpu_budget(results) +
             "- seconds to commit = from the command's launch to its transaction's commit (start-up, read, checks, "
             "merge, commit; the time of the commit from the run's `--json-report`); the whole command adds what "
             "follows the commit: the conflict recompute (issue 6's analysis of the changed features, benchmarked "
             "in bench/conflicts.py; its time from analysis.runs), the vacuum and retention checks, the printed "
             "report and the exit\n"
             "- before each step the server was settled (CHECKPOINT and sync, not timed: "
             + "; ".join(", ".join(f"{x:.1f}" for x in r["settled"]) for r in results)
             + " s before ogr2ogr, the full load and the re-run)")
    report = (f"\n## Load benchmark, {dt.datetime.now():%Y-%m-%d %H:%M} ({args.parcels:,} parcels"
              f"{f', {len(results)} rounds' if len(results) > 1 else ''})\n\n"
              f"Machine: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
              f"data: `{base.relative_to(ROOT)}` ({base.stat().st_size / 2**20:,.0f} MiB GeoPackage, EPSG:9215).\n\n"
              + "\n".join(table) + "\n\n" + lines + "\n")
    print(report)
    with (HERE / "RESULTS.md").open("a", encoding="utf-8") as fh:
        fh.write(report)


if __name__ == "__main__":
    main()
