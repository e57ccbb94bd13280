"""Raster tests: each test gets its own managed raster folder (GISPLATFORM_RASTER_DIR) and an empty run log."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from gisplatform.etl.jobs import parse_job


@pytest.fixture
def raster_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "rasters"
    monkeypatch.setenv("GISPLATFORM_RASTER_DIR", str(folder))
    return folder


def raster_job(layer: str, path: Path, **source):
    """A job for one file, as etl/*.yml would declare it."""
    return parse_job({"layer": layer, "source": {"path": str(path), **source}}, f"test job for {path.name}",
                     f"test:{layer}")


def write_tif(path: Path, data: np.ndarray, transform, epsg: int | None, nodata=None, **extra) -> Path:
    data = data if data.ndim == 3 else data[np.newaxis]
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                   dtype=data.dtype.name, transform=transform, nodata=nodata, **extra)
    if epsg:
        profile["crs"] = CRS.from_epsg(epsg)
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


__all__ = ["raster_job", "write_tif", "from_origin"]
