"""ETL of raster layers: GeoTIFF in, validated Cloud-Optimized GeoTIFF in the managed store out.

    inspect_source   open the file and check it: readable GeoTIFF, CRS present and one we accept, inside Lạng Sơn,
                     nodata known, band count and data type, values plausible (heights in range, known classes)
    build_cog        reproject to the layer's CRS and pixel size with the layer's resampling (bilinear for
                     elevation, nearest for planning classes) — or copy pixels unchanged when the file is already in
                     it — and write a COG (256 px tiles, DEFLATE, overviews, GDAL's COG layout)
    check_cog        re-open the written file and check what a COG must be; a failure keeps the old version
    run_raster_job   the above inside the run log (etl.runs: status, source checksum, version, COG checksum)

Every rejection is a :class:`RasterError` whose message names the file, what is wrong and what to do; the run is
logged as failed and ``current.tif`` keeps pointing at the published version.
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.warp import reproject, transform as gdal_transform, transform_bounds

from gisplatform import crs as vncrs
from gisplatform.raster import store
from gisplatform.raster.layers import RasterLayer

# The CRSs the department's rasters come in (issue 7): VN-2000 TM-3 107-15 or UTM 48N, WGS 84 (UTM 48N or degrees).
ACCEPTED_EPSG = {
    9215: "VN-2000 / TM-3 107-15",
    3405: "VN-2000 / UTM 48N",
    32648: "WGS 84 / UTM 48N",
    4326: "WGS 84",
    4756: "VN-2000 (degrees)",
}
MAX_CHECK_PIXELS = 4_000_000  # values are checked on a decimated read above this size
BLOCK = 256


class RasterError(ValueError):
    """A raster file that cannot be published; the message says which file, what is wrong and what to do."""


@dataclass
class SourceInfo:
    path: Path
    epsg: int
    crs_from: str  # "file" | "job"
    nodata: float
    dtype: str
    width: int
    height: int
    bounds_storage: tuple[float, float, float, float]
    notes: list[str] = field(default_factory=list)


def _reject(path: Path, problem: str, action: str) -> RasterError:
    return RasterError(f"{path.name}: {problem}. {action}")


def _open(path: Path):
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise _reject(path, f"is not a readable GeoTIFF (damaged, truncated or another format: {exc})",
                      "Export it again as GeoTIFF from the source software and re-run the job; "
                      "the published version stays in place") from exc


def _source_epsg(src, path: Path, declared: int | None) -> tuple[int, str]:
    if declared:
        return declared, "job"
    if src.crs is None:
        raise _reject(path, "has no coordinate reference system (no GeoKeys / .prj)",
                      "Declare it in the job's source, e.g. `crs: EPSG:9215` (VN-2000 TM-3 107-15) or "
                      "`crs: EPSG:3405` (VN-2000 UTM 48N), after checking the map's legend")
    epsg = src.crs.to_epsg(confidence_threshold=70)
    if epsg not in ACCEPTED_EPSG:
        raise _reject(path, f"is in {src.crs.to_string()[:120]}, which is not an accepted CRS",
                      "Deliver it in " + ", ".join(f"EPSG:{k} ({v})" for k, v in ACCEPTED_EPSG.items())
                      + ", or declare the right EPSG code as `crs:` in the job if the file's label is wrong")
    return epsg, "file"


def _check_placement(src, path: Path, epsg: int) -> tuple[float, float, float, float]:
    """The file's box in the storage CRS, which must lie inside the province's plausibility box (domain §1.5)."""
    if epsg == vncrs.STORAGE_SRID:
        box = tuple(src.bounds)
    else:
        box = transform_bounds(CRS.from_epsg(epsg), CRS.from_epsg(vncrs.STORAGE_SRID), *src.bounds, densify_pts=21)
    e_min, n_min, e_max, n_max = vncrs.PROVINCE_BOUNDS
    inside = box[0] >= e_min and box[1] >= n_min and box[2] <= e_max and box[3] <= n_max
    if all(math.isfinite(v) for v in box) and inside:
        return box
    ce, cn = (src.bounds[0] + src.bounds[2]) / 2, (src.bounds[1] + src.bounds[3]) / 2
    hint = ""
    if epsg == vncrs.STORAGE_SRID:
        code = str(vncrs.diagnose_xy(np.array([ce]), np.array([cn]))[0])
        if code not in ("ok", "outside"):
            hint = " Diagnosis: " + vncrs.diagnosis_message(code, ce, cn)
    raise _reject(path, f"lies outside Lạng Sơn: its box in EPSG:9215 is "
                        f"E {box[0]:,.0f}–{box[2]:,.0f}, N {box[1]:,.0f}–{box[3]:,.0f}, not inside "
                        f"E {e_min:,.0f}–{e_max:,.0f}, N {n_min:,.0f}–{n_max:,.0f} (read as EPSG:{epsg}).{hint}",
                  "Check the CRS the file declares (a wrong or missing CRS label misplaces it) and its "
                  "georeferencing; declare the right `crs:` in the job if the label is wrong")


def _check_bands(src, path: Path, layer: RasterLayer) -> None:
    if src.count != layer.bands:
        raise _reject(path, f"has {src.count} band(s); layer {layer.name} expects {layer.bands}",
                      "Export the single band of "
                      + ("class values (a paletted or grey image, not RGB)" if layer.categorical else "heights")
                      + " as GeoTIFF")
    dtype = np.dtype(src.dtypes[0])
    if layer.categorical and dtype.kind not in "ui":
        raise _reject(path, f"holds {dtype} values; the planning classes of {layer.name} are integers",
                      "Export the classified map (one integer class value per pixel), not a scan or a float image")
    if not layer.categorical and dtype.kind not in "uif":
        raise _reject(path, f"holds {dtype} values, not numbers", "Export the heights as integer or float")


def _check_readable(src, path: Path) -> None:
    """Read every block: a truncated or damaged file opens fine (the header is intact) but fails here."""
    for _, window in src.block_windows(1):
        try:
            src.read(1, window=window)
        except rasterio.errors.RasterioError as exc:
            raise _reject(path, f"is damaged: the block at row {window.row_off}, column {window.col_off} cannot "
                                f"be read ({exc}); the file is probably truncated",
                          "Copy or export the file again and re-run the job; the published version stays in "
                          "place") from exc


def _sample(src) -> np.ma.MaskedArray:
    scale = max(1.0, math.sqrt(src.width * src.height / MAX_CHECK_PIXELS))
    shape = (max(1, int(src.height / scale)), max(1, int(src.width / scale)))
    return src.read(1, out_shape=shape, masked=True, resampling=Resampling.nearest)


def _check_values(values: np.ma.MaskedArray, path: Path, layer: RasterLayer, nodata: float) -> None:
    if values.count() == 0:
        raise _reject(path, f"has no data: every pixel is the nodata value {nodata:g}",
                      "Check the export (an empty or fully masked image was written)")
    if layer.categorical:
        found = np.unique(values.compressed())
        unknown = sorted(set(found.tolist()) - set(layer.category_values.tolist()))
        if unknown:
            raise _reject(path, f"has pixel values {unknown[:10]} that are not classes of {layer.name} "
                                f"(known: {layer.category_values.tolist()}, nodata {nodata:g})",
                          f"Reclassify the map to the classes of layers/{layer.name}.yml, or add the missing "
                          "classes there")
    elif layer.valid_range:
        low, high = float(values.min()), float(values.max())
        if low < layer.valid_range[0] or high > layer.valid_range[1]:
            raise _reject(path, f"has values from {low:g} to {high:g} {layer.unit or ''}, outside the plausible "
                                f"{layer.valid_range[0]:g}–{layer.valid_range[1]:g} for {layer.name}",
                          "Check the unit (feet, decimetres?) and that the nodata value is declared in the file "
                          "or as `nodata:` in the job")


def inspect_source(path: Path, layer: RasterLayer, crs: int | None = None,
                   nodata: float | None = None) -> SourceInfo:
    """Every check a source file must pass before anything is written; RasterError otherwise."""
    path = Path(path)
    with _open(path) as src:
        if src.driver != "GTiff":
            raise _reject(path, f"is a {src.driver} file, not a GeoTIFF", "Export it as GeoTIFF (.tif)")
        _check_bands(src, path, layer)
        _check_readable(src, path)
        epsg, crs_from = _source_epsg(src, path, crs)
        box = _check_placement(src, path, epsg)
        src_nodata = src.nodata if nodata is None else nodata
        if src_nodata is None:
            raise _reject(path, "declares no nodata value, so pixels outside the surveyed area would be read "
                                "as real " + ("classes" if layer.categorical else "heights"),
                          "Set the nodata value in the file (gdal_edit.py -a_nodata) or as `nodata:` in the job")
        values = _sample(src) if nodata is None else np.ma.masked_equal(_sample(src).filled(nodata), nodata)
        _check_values(values, path, layer, float(src_nodata))
        return SourceInfo(path, epsg, crs_from, float(src_nodata), src.dtypes[0], src.width, src.height, box)


# --- building the COG ---------------------------------------------------------------------------------------


def _target_grid(box: tuple[float, float, float, float], res: float):
    """A grid on whole multiples of the pixel size covering ``box``: the same area always gives the same grid."""
    left, bottom = math.floor(box[0] / res) * res, math.floor(box[1] / res) * res
    right, top = math.ceil(box[2] / res) * res, math.ceil(box[3] / res) * res
    width, height = int(round((right - left) / res)), int(round((top - bottom) / res))
    return from_origin(left, top, res, res), width, height


def _check_datum_shift(src_epsg: int, dst_epsg: int, x: float, y: float) -> None:
    """GDAL must apply EPSG:6960 like gisplatform.crs does (a ballpark transformation would move ~200 m)."""
    gx, gy = gdal_transform(CRS.from_epsg(src_epsg), CRS.from_epsg(dst_epsg), [x], [y])
    px, py = vncrs.transform_xy([x], [y], src_epsg, dst_epsg)
    if abs(gx[0] - px[0]) > 0.05 or abs(gy[0] - py[0]) > 0.05:
        raise RuntimeError(f"GDAL's EPSG:{src_epsg} -> EPSG:{dst_epsg} transformation differs from EPSG:6960 by "
                           f"{gx[0] - px[0]:.2f} m / {gy[0] - py[0]:.2f} m: check the PROJ data of rasterio")


def _warped(src, info: SourceInfo, layer: RasterLayer):
    """(array, transform) in the storage CRS: reprojected with the layer's resampling, or the pixels as they are."""
    data = src.read(1)
    if info.epsg == layer.storage_srid:
        out = np.where(data == info.nodata, layer.nodata, data).astype(layer.dtype)
        return out, src.transform
    cx, cy = (src.bounds.left + src.bounds.right) / 2, (src.bounds.bottom + src.bounds.top) / 2
    _check_datum_shift(info.epsg, layer.storage_srid, cx, cy)
    transform, width, height = _target_grid(info.bounds_storage, layer.resolution)
    out = np.full((height, width), layer.nodata, dtype=layer.dtype)
    reproject(data, out, src_transform=src.transform, src_crs=CRS.from_epsg(info.epsg), src_nodata=info.nodata,
              dst_transform=transform, dst_crs=CRS.from_epsg(layer.storage_srid), dst_nodata=layer.nodata,
              resampling=Resampling[layer.resampling], num_threads=1)
    return out, transform


def _cog_options(layer: RasterLayer) -> dict:
    return {
        "driver": "COG",
        "BLOCKSIZE": BLOCK,
        "COMPRESS": "DEFLATE",
        "PREDICTOR": "YES" if not layer.categorical else "NO",
        # overviews: averaged heights; for classes the most frequent class (an average would invent classes)
        "OVERVIEW_RESAMPLING": "MODE" if layer.categorical else "AVERAGE",
        "OVERVIEWS": "IGNORE_EXISTING",
        "NUM_THREADS": "1",  # the machine is shared; a raster run is not latency-critical
    }


def build_cog(info: SourceInfo, layer: RasterLayer, out: Path, tags: dict[str, str]) -> None:
    """Write the COG for a checked source to ``out`` (a staging name; see store.commit_version)."""
    with rasterio.open(info.path) as src:
        data, transform = _warped(src, info, layer)
    profile = {"driver": "GTiff", "width": data.shape[1], "height": data.shape[0], "count": 1,
               "dtype": layer.dtype, "crs": CRS.from_epsg(layer.storage_srid), "transform": transform,
               "nodata": layer.nodata, "tiled": True, "blockxsize": BLOCK, "blockysize": BLOCK}
    with rasterio.MemoryFile() as memory:
        with memory.open(**profile) as tmp:
            tmp.write(data, 1)
            tmp.update_tags(**tags)
            if layer.categorical:
                tmp.write_colormap(1, {c.value: (*c.rgb, 255) for c in layer.categories} | {int(layer.nodata):
                                                                                            (0, 0, 0, 0)})
        with memory.open() as tmp:
            rasterio.shutil.copy(tmp, out, **_cog_options(layer))


def check_cog(path: Path, layer: RasterLayer) -> list[str]:
    """What is wrong with a written COG (empty list: nothing)."""
    problems = []
    with rasterio.open(path) as cog:
        if cog.driver != "GTiff":
            problems.append(f"driver {cog.driver}, not GTiff")
        if cog.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") != "COG":
            problems.append("GDAL does not see the COG layout (IFDs first, then tiles by overview level)")
        if cog.block_shapes[0] != (BLOCK, BLOCK):
            problems.append(f"not internally tiled {BLOCK}×{BLOCK} (blocks {cog.block_shapes[0]})")
        if max(cog.width, cog.height) > BLOCK and not cog.overviews(1):
            problems.append("no overviews")
        if cog.crs is None or cog.crs.to_epsg() != layer.storage_srid:
            problems.append(f"CRS {cog.crs}, not EPSG:{layer.storage_srid}")
        if cog.nodata != layer.nodata or cog.dtypes[0] != layer.dtype:
            problems.append(f"nodata {cog.nodata} / {cog.dtypes[0]}, not {layer.nodata} / {layer.dtype}")
    return problems


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def definition_hash(layer: RasterLayer) -> str:
    text = layer.path.read_text(encoding="utf-8") if layer.path else layer.name
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class IngestResult:
    version: store.Version
    new: bool  # False: the source and layer definition were those of the published version (nothing written)
    source: SourceInfo


def ingest(path: Path, layer: RasterLayer, *, run_id: int | None = None, crs: int | None = None,
           nodata: float | None = None) -> IngestResult:
    """Check ``path``, write its COG, validate it and publish it as the layer's current version."""
    path = Path(path)
    info = inspect_source(path, layer, crs, nodata)
    source_sha = sha256(path)
    current = store.current_version(layer.name)
    if current and current.source_sha256 == source_sha and current.meta.get("definition") == definition_hash(layer):
        return IngestResult(current, False, info)
    version = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + (f"-run{run_id}" if run_id else "")
    staged = store.staging_path(layer.name, version)
    tags = {"GISPLATFORM_LAYER": layer.name, "GISPLATFORM_VERSION": version, "SOURCE_FILE": path.name,
            "SOURCE_SHA256": source_sha, "SOURCE_CRS": f"EPSG:{info.epsg}",
            "RESAMPLING": layer.resampling if info.epsg != layer.storage_srid else "none (already in EPSG:9215)"}
    try:
        build_cog(info, layer, staged, tags)
        problems = check_cog(staged, layer)
        if problems:
            raise RuntimeError(f"the COG written for {path.name} is not valid: {'; '.join(problems)}")
        meta = _version_meta(staged, layer, info, source_sha, run_id, tags)
        return IngestResult(store.commit_version(layer.name, version, staged, meta), True, info)
    finally:
        staged.unlink(missing_ok=True)


def _version_meta(cog: Path, layer: RasterLayer, info: SourceInfo, source_sha: str, run_id: int | None,
                  tags: dict) -> dict:
    with rasterio.open(cog) as out:
        meta = {"width": out.width, "height": out.height, "bounds": list(out.bounds), "res": list(out.res),
                "overviews": out.overviews(1), "crs": f"EPSG:{layer.storage_srid}", "dtype": layer.dtype,
                "nodata": layer.nodata}
    return {**meta, "layer": layer.name, "run_id": run_id, "sha256": sha256(cog), "definition": definition_hash(layer),
            "resampling": tags["RESAMPLING"], "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source": {"file": str(info.path), "sha256": source_sha, "crs": f"EPSG:{info.epsg}",
                       "crs_from": info.crs_from, "nodata": info.nodata, "dtype": info.dtype,
                       "size": [info.width, info.height]}}


def describe(result: IngestResult) -> dict:
    """What the run log keeps of a raster run (etl.runs.report)."""
    v = result.version
    return {"raster": {"version": v.version, "path": str(v.path), "sha256": v.meta.get("sha256"),
                       "new_version": result.new, "source_crs": v.meta.get("source", {}).get("crs"),
                       "resampling": v.meta.get("resampling"), "size": [v.meta.get("width"), v.meta.get("height")],
                       "overviews": v.meta.get("overviews")}}


__all__ = ["RasterError", "SourceInfo", "inspect_source", "build_cog", "check_cog", "ingest", "describe"]
