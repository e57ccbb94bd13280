"""Small hand-made source files for tests: a few parcels whose every value the test controls."""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from gisplatform import crs, geohash

ORIGIN = (450_000.0, 2_420_000.0)  # near Lạng Sơn city, EPSG:9215


def parcel_id(polygon) -> str:
    point = shapely.point_on_surface(polygon)
    lon, lat = crs.transform_xy(np.array([point.x]), np.array([point.y]), 9215, 4326)
    return str(geohash.encode(lon, lat)[0])


def parcel(i: int, **overrides) -> dict:
    """Parcel i of a row of 30 m x 20 m parcels on sheet 3 of commune 05977 (valid values throughout)."""
    x0 = ORIGIN[0] + i * 30
    polygon = shapely.box(x0, ORIGIN[1], x0 + 30, ORIGIN[1] + 20)
    row = dict(MATHUA=parcel_id(polygon), MAXA="05977", MAXA_BD="05977", SOTO=3, SOTHUA=str(i + 1), DIENTICH=600.0,
               DTPHAPLY=600.0, MDSD="ONT+CLN", THOIHAN="Lâu dài", NGUONGOC="DG-KTT", DIACHI="Thôn Nà Pài",
               LOAIDT="CNV", TENCHU=f"Nguyễn Văn Thử {i}", SOGIAYTO=f"0200900{i:05d}", NGAYSINH="12/03/1970",
               DCTT="Thôn Nà Pài, xã Đông Kinh", SOGCN=f"CS {100000 + i}", NGAYCN="20/07/2020", geometry=polygon)
    row.update(overrides)
    return row


def write_parcels(path: Path, rows: list[dict], crs_code: int | None = 9215, layer: str = "thua_dat") -> Path:
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs_code)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".shp":
        frame.to_file(path, engine="pyogrio")
    else:
        frame.to_file(path, layer=layer, engine="pyogrio")
    return path


def parcels(n: int) -> list[dict]:
    return [parcel(i) for i in range(n)]
