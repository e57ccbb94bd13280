"""Zonal statistics benchmark: gisplatform.raster.zonal against a plain rasterio read-and-mask per polygon.

    .venv/bin/python bench/zonal.py [--communes 06187,06188] [--repeat 3] [--no-append]

Small on purpose (the machine is shared): the bundled sample's DEM and planning map, published into a temporary
raster store (no database), and every parcel of the sample's survey communes 06187 + 06188 (post-2025 commune
06187, ~1,400 parcels, EPSG:9215). Both methods run in the same process, one after the other, best of
``--repeat``; they use the same pixel rule (pixel centres inside the polygon, rasterio.mask's default), and the
script checks that they agree on every polygon that holds a pixel centre.

The loop is what one writes without gisplatform: open the COG once, then for each polygon
``rasterio.mask.mask(src, [polygon], crop=True)`` and numpy on the masked window (slope from the cropped window's
gradient, which is the same formula; its window edge uses one-sided differences, so only elevations and class
shares are compared exactly). Prints a table and appends it to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def parcels(communes: list[str]):
    import numpy as np
    import pyogrio

    geoms = []
    for code in communes:
        path = ROOT / "sample" / "cadastral" / f"thua_dat_{code}.shp"
        frame = pyogrio.read_dataframe(path, columns=[], encoding="latin1")
        geoms.extend(frame.geometry.values)
    return np.array([g for g in geoms if g is not None and g.geom_type in ("Polygon", "MultiPolygon")], dtype=object)


def loop_statistics(path: Path, geoms, categorical: bool) -> list[dict | None]:
    import numpy as np
    import rasterio
    import rasterio.mask

    out = []
    with rasterio.open(path) as src:
        for geom in geoms:
            try:
                data, transform = rasterio.mask.mask(src, [geom], crop=True, filled=False)
            except ValueError:  # outside the raster
                out.append(None)
                continue
            values = data[0]
            inside = ~np.ma.getmaskarray(values)
            if not inside.any():
                out.append(None)
                continue
            if categorical:
                found, counts = np.unique(values.compressed(), return_counts=True)
                out.append({int(v): int(c) for v, c in zip(found, counts)})
            else:
                z = values.filled(np.nan).astype("float64")
                slope = (np.degrees(np.arctan(np.hypot(*np.gradient(z, src.res[1], src.res[0]))))
                         if min(z.shape) > 1 else np.full(z.shape, np.nan))
                v = values.compressed().astype("float64")
                s = slope[inside & np.isfinite(slope)]
                out.append({"min": v.min(), "mean": v.mean(), "max": v.max(),
                            "slope_mean": s.mean() if len(s) else None})
    return out


def agree(ours: list[dict], loop: list[dict | None], categorical: bool) -> tuple[int, int]:
    """(polygons compared, polygons that agree) — those with at least one pixel centre inside."""
    compared = same = 0
    for a, b in zip(ours, loop):
        if a["method"] != "pixel_centres" or b is None:
            continue
        compared += 1
        if categorical:
            total = sum(b.values())
            same += {c["value"]: c["share"] for c in a["classes"]} == {v: round(n / total, 4) for v, n in b.items()}
        else:
            same += (a["elevation_min"], a["elevation_max"], a["elevation_mean"]) == (
                round(b["min"], 2), round(b["max"], 2), round(b["mean"], 2))
    return compared, same


def best_of(repeat: int, fn):
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--communes", default="06187,06188")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    os.environ["GISPLATFORM_RASTER_DIR"] = tempfile.mkdtemp(prefix="bench-zonal-")

    from gisplatform.raster import store
    from gisplatform.raster.ingest import ingest
    from gisplatform.raster.layers import get_raster_layer
    from gisplatform.raster.zonal import zonal_statistics
    from gisplatform.sample import rasters as sample_rasters

    communes = [c.strip() for c in args.communes.split(",") if c.strip()]
    geoms = parcels(communes)
    rows = []
    for name, source in (("elevation", sample_rasters.DEM_FILE), ("planning_map", sample_rasters.PLANNING_FILE)):
        layer = get_raster_layer(name)
        ingest(ROOT / "sample" / source, layer)
        ours_s, ours = best_of(args.repeat, lambda: zonal_statistics(name, geoms))
        loop_s, loop = best_of(args.repeat, lambda: loop_statistics(store.current_path(name), geoms,
                                                                      layer.categorical))
        compared, same = agree(ours, loop, layer.categorical)
        small = sum(r["method"] == "representative_point" for r in ours)
        with __import__("rasterio").open(store.current_path(name)) as src:
            res = src.res[0]
        rows.append((name, res, len(geoms), ours_s, loop_s, compared, same, small))
    text = report(rows, communes, args.repeat)
    print(text)
    if not args.no_append:
        with (HERE / "RESULTS.md").open("a", encoding="utf-8") as fh:
            fh.write("\n" + text)
    return 0 if all(r[5] == r[6] for r in rows) else 1


def report(rows, communes, repeat) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    lines = [
        f"## Zonal statistics benchmark, {now} UTC (sample parcels of survey communes {', '.join(communes)})",
        "",
        f"`bench/zonal.py`: machine {platform.node() or 'vm'}, {os.cpu_count()} cores (shared), Python "
        f"{platform.python_version()}; the bundled sample DEM and planning map as published COGs; best of {repeat}. "
        "Ours: `gisplatform.raster.zonal.zonal_statistics` (one window read, one rasterization, grouped numpy; "
        "elevation also computes slope min/mean/max). Loop: `rasterio.mask.mask(crop=True)` + numpy per polygon.",
        "",
        "| raster | pixel (m) | polygons | ours (s) | loop (s) | speed-up | polygons compared | agree | "
        "below one pixel (ours: representative point; loop: no answer) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, res, n, ours_s, loop_s, compared, same, small in rows:
        lines.append(f"| {name} | {res:g} | {n:,} | {ours_s:.3f} | {loop_s:.3f} | {loop_s / ours_s:.1f}× | "
                     f"{compared:,} | {same:,} | {small:,} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
