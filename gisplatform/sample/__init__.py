"""Deterministic generator of realistic synthetic Lạng Sơn data: admin units, cadastral parcels, mining licences,
water sources and water licences, with recorded defects; a karst DEM and a land-use planning map (rasters).

    from gisplatform.sample import SampleConfig, generate_sample
    manifest = generate_sample(Path("out"), SampleConfig(parcels=5000))

Same config -> byte-identical files (all randomness comes from ``config.seed``, see :mod:`gisplatform.sample.rand`).
The geography is made up; only its rough layout (former districts, towns, main rivers) follows the real province.
"""
from __future__ import annotations

import json
import shutil
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyogrio
import shapely

from gisplatform import crs, geohash
from gisplatform.sample import cadastral, mining, rasters, water
from gisplatform.sample.geography import Geography, build_geography

__all__ = ["SampleConfig", "generate_sample", "DEFECT_CLASSES"]

ADMIN_FILE = "admin_units/don_vi_hanh_chinh.gpkg"
DEFECT_CLASSES = {
    "cadastral_parcels": cadastral.ROW_DEFECTS + cadastral.FILE_DEFECTS,
    "mining_licences": mining.DEFECTS,
    "water_licences": water.DEFECTS,
    "cadastral_crs_defects": ("swapped_xy", "utm48_coordinates", "hn72_coordinates", "missing_datum_shift",
                              "rotation_sign"),
}
INFO_CLASSES = {"mining_licences": ("personal_holder",), "water_licences": ("utm48_valid",)}
Progress = Callable[[str, int, int], None]


@dataclass
class SampleConfig:
    seed: int = 20251127
    communes: tuple[str, ...] = ("06187", "06385", "06040")  # post-2025 communes whose parcels to generate
    parcels: int = 5000  # total over those communes (approximate; the manifest has the exact number)
    defect_rate: float = 0.01  # probability per row of each applicable defect class (0 = clean data)
    defects: dict[str,
                  float] = field(default_factory=dict)  # per-class overrides, e.g. {"duplicate_key": 0.0}
    single_file: str | None = None  # "gpkg" | "shp": all parcels in one file (benchmarks)
    change_fraction: float = 0.0  # same data as with 0, but this fraction of parcels changed
    with_other_layers: bool = True  # admin units, mining, water
    crs_defect_files: bool = False  # also write cadastral_crs_defects/*.shp (swapped, UTM, HN-72, datum traps)
    force_defects: bool = True  # every applicable class at least once when its rate > 0
    as_of: str = "2026-10-31"  # "today" of the data: licence expiry, DBF/GPKG/xlsx timestamps

    def rate(self, cls: str) -> float:
        return float(self.defects.get(cls, self.defect_rate))


def _rates(config: SampleConfig, classes) -> dict[str, float]:
    return {c: config.rate(c) for c in classes}


class _FixedGdalDate:
    """GDAL stamps GPKG metadata with the current time; pin it (OGR_CURRENT_DATE) so reruns are identical."""

    def __init__(self, as_of: str):
        self.value = f"{as_of}T00:00:00.000Z"

    def __enter__(self):
        self.old = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": self.value})

    def __exit__(self, *exc):
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": self.old})


def generate_sample(out_dir: Path, config: SampleConfig | None = None,
                    progress: Progress | None = None) -> dict:
    """Generate the sample into ``out_dir`` (created; existing generated sub-folders are replaced).

    Returns the manifest, also written to ``out_dir/manifest.json``.
    """
    config = config or SampleConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("admin_units", "cadastral", "cadastral_crs_defects", "mining", "water", "rasters"):
        if (out_dir / sub).exists():
            shutil.rmtree(out_dir / sub)
    report = progress or (lambda step, done, total: None)
    if config.single_file not in (None, "gpkg", "shp"):
        raise ValueError(f"single_file must be None, 'gpkg' or 'shp', got {config.single_file!r}")
    as_of = date.fromisoformat(config.as_of)
    with _FixedGdalDate(config.as_of):
        report("geography", 0, 1)
        geo = build_geography(config.seed)
        report("geography", 1, 1)
        plan = cadastral.plan_communes(geo, tuple(config.communes), config.parcels, config.single_file)
        files: list[dict] = []
        defects: list[dict] = []
        # ---- mining first: the parcels under quarries get SKS
        over = []
        for c in list(config.communes)[:3]:
            sc = next(s for s in plan if s.successor.code == c)
            if not len(sc.slots):
                continue
            sx, sy = sc.slots[0]
            x, y = sx + cadastral.SHEET_W / 2, sy + cadastral.SHEET_H / 2
            on_river = bool(geo.water_union.distance(shapely.Point(x, y)) < 150 and
                            any(f.water_class == "song" and f.geometry.distance(shapely.Point(x, y)) < 150
                                for f in geo.water))
            over.append((sc.unit.district_code, x, y, on_river))
        licences = mining.build_licences(config.seed, geo, over)
        parcel_licences = [cadastral.Licence(polygon=lic.polygon, issued=np.datetime64(lic.issued),
                                             holder=lic.holder,
                                             sks=lic.kind != "sand") for lic in licences]
        if config.with_other_layers:
            report("admin_units", 0, 1)
            files.append(_write_admin(geo, out_dir))
            report("admin_units", 1, 1)
            report("mining", 0, 1)
            mout = mining.tables(config.seed, licences, _rates(config, mining.DEFECTS), config.force_defects,
                                 as_of)
            mining.write_xlsx(mout, out_dir / mining.FILE, as_of)
            defects += mout.defects
            files.append(dict(path=mining.FILE, layer="mining_licences", format="XLSX",
                              sheets={"giay_phep": len(mout.register), "toa_do": len(mout.corners)},
                              rows=len(mout.register), corner_rows=len(mout.corners),
                              row_convention="row = worksheet row (header is row 1); data_row = 1-based data row"))
            report("mining", 1, 1)
            report("water", 0, 2)
            table = water.water_sources_table(geo)
            path = out_dir / water.SOURCES_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            pyogrio.write_arrow(table, path, layer="nguon_nuoc", geometry_name="geometry",
                                geometry_type="MultiPolygon",
                                crs="EPSG:9215")
            files.append(dict(path=water.SOURCES_FILE, layer="water_sources", format="GPKG",
                              gpkg_layer="nguon_nuoc",
                              rows=table.num_rows, encoding="utf-8", crs="EPSG:9215"))
            rows, wdef = water.build_licences(config.seed, geo, _rates(config, water.DEFECTS),
                                              config.force_defects,
                                              as_of)
            water.write_csv(rows, out_dir / water.LICENCES_FILE)
            defects += wdef
            files.append(dict(path=water.LICENCES_FILE, layer="water_licences", format="CSV", rows=len(rows),
                              encoding="utf-8-sig", separator=",",
                              row_convention="row = line number (header is line 1); data_row = 1-based data row"))
            report("water", 2, 2)
            report("rasters", 0, 1)
            files += rasters.write_rasters(out_dir, config.seed)  # DEM and planning map (issue 7)
            report("rasters", 1, 1)
        # ---- parcels, one survey commune at a time
        rates = _rates(config, cadastral.ROW_DEFECTS)
        seen: Counter = Counter()
        total_target = sum(s.target for s in plan)
        done = 0
        report("parcels", 0, total_target)
        results: list[cadastral.FileResult] = []
        offsets: dict[str, int] = {}
        carry = 0
        for sc in plan:
            sc.target += carry  # what earlier communes had no room for
            if sc.target <= 0:
                continue
            off = offsets.get(sc.path, 0)
            res = cadastral.generate_commune(
                config.seed, sc, geo, parcel_licences, rates, seen, config.change_fraction, out_dir, off,
                append=off > 0, as_of=config.as_of, force=config.force_defects)
            offsets[sc.path] = off + res.rows
            carry = sc.target - res.rows
            for d in res.defects:
                seen[d["defect"]] += 1
            defects += res.defects
            results.append(res)
            done += res.rows
            report("parcels", min(done, total_target), total_target)
        if config.single_file == "shp" and results:
            # the .cpg stays while appending (GDAL reads it to recode the next batch), then the plan applies
            cadastral.finish_shapefile(out_dir / plan[0].path, cadastral.SINGLE_VARIANTS["shp"], config.as_of)
        files += _parcel_files(results, config)
        if config.crs_defect_files:
            report("crs_defects", 0, 1)
            cf, cd = _write_crs_defects(results, out_dir)
            files += cf
            defects += cd
            report("crs_defects", 1, 1)
    report("manifest", 0, 1)
    manifest = _manifest(config, geo, plan, results, files, defects)
    text = json.dumps(manifest, ensure_ascii=False, indent=1, default=str) + "\n"
    (out_dir / "manifest.json").write_text(text, encoding="utf-8")
    (out_dir / "README.md").write_text(_readme_text(manifest), encoding="utf-8")
    report("manifest", 1, 1)
    return manifest


# --------------------------------------------------------------------------------------------- admin units
def _write_admin(geo: Geography, out_dir: Path) -> dict:
    units = geo.units
    cols = {
        "ma_xa": pa.array([u.code for u in units]),
        "ten_xa": pa.array([u.name for u in units]),
        "cap": pa.array([u.level for u in units]),
        "ma_huyen": pa.array([u.district_code for u in units], pa.string()),
        "hieu_luc_tu": pa.array([u.valid_from for u in units]),
        "hieu_luc_den": pa.array([u.valid_to for u in units], pa.string()),
    }
    fields = [pa.field(k, v.type) for k, v in cols.items()]
    fields.append(pa.field("geometry", pa.binary(), metadata={b"ARROW:extension:name": b"geoarrow.wkb"}))
    geoms = np.array([u.geometry for u in units], dtype=object)
    table = pa.Table.from_arrays(list(cols.values()) + [pa.array(shapely.to_wkb(geoms))],
                                 schema=pa.schema(fields))
    path = out_dir / ADMIN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    pyogrio.write_arrow(table, path, layer="don_vi_hanh_chinh", geometry_name="geometry",
                        geometry_type="MultiPolygon", crs="EPSG:9215")
    return dict(path=ADMIN_FILE, layer="admin_units", format="GPKG", gpkg_layer="don_vi_hanh_chinh",
                rows=len(units),
                new_units=sum(u.valid_to is None for u in units),
                predecessors=sum(u.valid_to is not None for u in units), encoding="utf-8", crs="EPSG:9215")


def _parcel_files(results: list[cadastral.FileResult], config: SampleConfig) -> list[dict]:
    if not config.single_file:
        return [r.info for r in results if r.rows]
    infos = [r.info for r in results if r.rows]
    if not infos:
        return []
    per_file = ("survey_commune", "survey_commune_name", "commune", "commune_name", "rows", "sheets")
    merged = {k: v for k, v in infos[0].items() if k not in per_file}
    merged.update(rows=sum(i["rows"] for i in infos), sheets=sum(i["sheets"] for i in infos),
                  survey_communes=[i["survey_commune"] for i in infos],
                  format="GPKG" if config.single_file == "gpkg" else "ESRI Shapefile")
    if config.single_file == "gpkg":
        merged["gpkg_layer"] = "thua_dat"
    return [merged]


# --------------------------------------------------------------------------------------------- CRS traps
PRJ_ROTATION_SIGN = (
    'PROJCS["VN_2000_TM_3_107_15",GEOGCS["VN_2000",DATUM["Vietnam_2000",SPHEROID["WGS_1984",6378137,298.257223563],'
    'TOWGS84[-191.90441429,-39.30318279,-111.45032835,-0.00928836,0.01975479,-0.00427372,0.252906278]],'
    'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
    'PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",107.25],PARAMETER["scale_factor",0.9999],'
    'PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1]]')


def _write_crs_defects(results: list[cadastral.FileResult], out_dir: Path) -> tuple[list[dict], list[dict]]:
    from pyproj import Transformer

    src = next((r for r in results if r.first_sheet is not None), None)
    if src is None:
        return [], []
    polys = src.first_sheet["polys"]
    folder = out_dir / "cadastral_crs_defects"
    folder.mkdir(parents=True, exist_ok=True)
    no_shift = Transformer.from_crs("EPSG:4326",
                                    "+proj=tmerc +lat_0=0 +lon_0=107.25 +k=0.9999 +x_0=500000 +y_0=0 "
                                    "+ellps=WGS84 +units=m +no_defs", always_xy=True)

    def missing_shift(x, y):
        lon, lat = crs.transform_xy(x, y, 9215, 4326)
        return no_shift.transform(lon, lat)

    variants = [
        ("swapped_xy", lambda x, y: (y, x), "EPSG:9215", "vn2000_esri", "coordinates written as (N, E)",
         "EPSG:9215 (N,E)"),
        ("utm48", lambda x, y: crs.transform_xy(x, y, 9215, 3405), "EPSG:9215", "vn2000_esri",
         "coordinates are VN-2000 / UTM 48N (EPSG:3405) but the .prj says EPSG:9215", "EPSG:3405"),
        ("hn72", lambda x, y: crs.transform_xy(x, y, 9215, 2093), None, "none",
         "coordinates are HN-72 / GK 106 NE (EPSG:2093), no .prj", "EPSG:2093"),
        ("missing_datum_shift", missing_shift, "EPSG:9215", "vn2000_esri",
         "coordinates projected from WGS 84 without the VN-2000 datum shift (~+195 m E / -111 m N)",
         "EPSG:9215 + datum shift missing"),
        ("rotation_sign", lambda x, y: (np.asarray(x), np.asarray(y)), "EPSG:9215",
         "wkt1_towgs84_coordinate_frame",
         "coordinates are right (EPSG:9215); the WKT1 .prj carries TOWGS84 with coordinate-frame rotation signs",
         "EPSG:9215"),
    ]
    classes = {"swapped_xy": "swapped_xy", "utm48": "utm48_coordinates", "hn72": "hn72_coordinates",
               "missing_datum_shift": "missing_datum_shift", "rotation_sign": "rotation_sign"}
    files, defects = [], []
    # the true parcel IDs: what a datum trap gives away (they decode ~200 m from the misplaced parcels)
    inside = shapely.point_on_surface(polys)
    lon, lat = crs.transform_xy(shapely.get_x(inside), shapely.get_y(inside), 9215, 4326)
    mathua = [str(h) for h in geohash.encode(lon, lat, 12)]
    commune = src.info.get("commune", src.info["survey_commune"])  # the code valid today
    for name, fn, crs_arg, prj, detail, coords_crs in variants:
        geoms = shapely.transform(polys, lambda xy: np.column_stack(fn(xy[:, 0], xy[:, 1])))
        table = pa.table({
            "MATHUA": pa.array(mathua),
            "MAXA": pa.array([commune] * len(polys)),
            "MAXA_BD": pa.array([src.info["survey_commune"]] * len(polys)),
            "SOTO": pa.array([1] * len(polys), pa.int32()),
            "SOTHUA": pa.array([str(s) for s in src.first_sheet["sothua"]]),
            "MDSD": pa.array([str(s) for s in src.first_sheet["mdsd"]]),
            "DIENTICH": pa.array(np.round(shapely.area(polys), 1)).cast(pa.decimal128(12, 1), safe=False),
            "geometry": pa.array(shapely.to_wkb(geoms)),
        })
        table = table.cast(pa.schema([*table.schema][:-1] + [pa.field("geometry", pa.binary(),
                                      metadata={b"ARROW:extension:name": b"geoarrow.wkb"})]))
        rel = f"cadastral_crs_defects/{name}.shp"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # hn72.shp has no .prj on purpose
            pyogrio.write_arrow(table, out_dir / rel, geometry_name="geometry", geometry_type="Polygon",
                                crs=crs_arg, encoding="UTF-8")
        if prj == "wkt1_towgs84_coordinate_frame":
            (out_dir / rel).with_suffix(".prj").write_text(PRJ_ROTATION_SIGN, encoding="ascii")
        cadastral.set_dbf_date((out_dir / rel).with_suffix(".dbf"), "2026-10-31")
        files.append(dict(path=rel, layer="cadastral_parcels", format="ESRI Shapefile", rows=len(polys),
                          encoding="utf-8", cpg=True, prj=prj, coordinates_crs=coords_crs,
                          survey_commune=src.info["survey_commune"]))
        defects.append(dict(layer="cadastral_parcels", file=rel, row=None, key=None, defect=classes[name],
                            field=None,
                            detail=detail))
    return files, defects


# --------------------------------------------------------------------------------------------- manifest
def _manifest(config: SampleConfig, geo: Geography, plan, results, files, defects) -> dict:
    counts_files = {f["path"]: f["rows"] for f in files}
    layers: Counter = Counter()
    for f in files:
        if f["path"].startswith("cadastral_crs_defects/"):
            continue
        layers[f["layer"]] += f["rows"]
    by_class: dict[str, Counter] = {}
    notes: dict[str, Counter] = {}
    for d in defects:
        target = notes if d.get("severity") == "info" else by_class
        target.setdefault(d["layer"], Counter())[d["defect"]] += 1
    personal = [p for r in results for p in r.personal][:50]
    changes = [c for r in results for c in r.changes]
    rows = {r.path + r.info.get("survey_commune", ""): r.rows for r in results}
    parcels = sum(r.rows for r in results)
    return {
        "generator": "gisplatform.sample",
        "synthetic": True,
        "config": asdict(config),
        "crs": "EPSG:9215",
        "as_of": config.as_of,
        "row_convention": ("DBF/GPKG: row = 1-based record number in the file; xlsx: row = worksheet row and "
                           "csv: row = line number (the header is row/line 1), data_row = 1-based data row"),
        "parcels": {
            "total": parcels,
            "requested": config.parcels,
            "survey_communes": [dict(code=s.unit.code, name=s.unit.name, commune=s.successor.code,
                                     commune_name=s.successor.name, target=s.target,
                                     rows=rows.get(s.path + s.unit.code, 0),
                                     file=s.path, variant=s.variant,
                                     anchor=[round(float(v), 3) for v in s.anchor])
                                for s in plan if s.target > 0],
            "sheets": sum(r.sheets for r in results),
        },
        "counts": {"layers": dict(layers), "files": counts_files},
        "files": files,
        "defect_counts": {k: dict(sorted(v.items())) for k, v in sorted(by_class.items())},
        "info_counts": {k: dict(sorted(v.items())) for k, v in sorted(notes.items())},
        "defect_classes": {k: list(v) for k, v in DEFECT_CLASSES.items()},
        "defects": defects,
        "changes": {"fraction": config.change_fraction, "parcels_changed": len(changes), "rows": changes},
        "personal_values": {
            "note": "sample of personal values actually written (Unicode NFC); must never appear in public output",
            "records": personal,
            "names": [p["name"] for p in personal],
            "id_numbers": [p["id_number"] for p in personal],
            "birth_dates": [p["birth_date"] for p in personal],
            "addresses": [p["address"] for p in personal],
        },
        "geography": {
            "province_area_km2": round(geo.outline.area / 1e6, 1),
            "province_bounds": [round(v, 3) for v in geo.outline.bounds],
            "new_units": len(geo.new_units), "predecessor_units": len(geo.old_units),
            "water_features": len(geo.water),
        },
    }


def _readme_text(m: dict) -> str:
    from gisplatform.sample.readme import render

    return render(m)
