"""The synthetic Lạng Sơn sample: determinism, mosaic, parcel IDs, defects, encodings, admin tiling, change runs."""
from __future__ import annotations

import csv
import hashlib
import json
import resource
import time
import unicodedata
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely

from gisplatform import crs, geohash
from gisplatform.layers import load_layers
from gisplatform.sample import DEFECT_CLASSES, SampleConfig, generate_sample
from gisplatform.text.legacy import decode_tcvn3, decode_vni

SMALL = dict(parcels=600, crs_defect_files=True)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sample")
    return out, generate_sample(out, SampleConfig(**SMALL))


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _parcel_files(m: dict) -> list[dict]:
    return [f for f in m["files"] if f["layer"] == "cadastral_parcels" and f["path"].startswith("cadastral/")]


def _defect_rows(m: dict, path: str, *classes: str) -> set[int]:
    return {d["row"] for d in m["defects"] if d["file"] == path and d["defect"] in classes and d["row"]}


def _read(out: Path, f: dict):
    return pyogrio.read_dataframe(out / f["path"],
                                  encoding=None if f["encoding"].startswith("utf-8") else "latin1")


# --------------------------------------------------------------------------------------------- layout
def test_layout_and_counts(sample):
    out, m = sample
    for rel in ("admin_units/don_vi_hanh_chinh.gpkg", "mining/giay_phep_khoang_san.xlsx",
                "water/nguon_nuoc.gpkg",
                "water/giay_phep_tai_nguyen_nuoc.csv", "manifest.json", "README.md"):
        assert (out / rel).is_file(), rel
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["parcels"]["total"] == m["parcels"]["total"]
    assert m["parcels"]["total"] == 600
    codes = sorted(s["code"] for s in m["parcels"]["survey_communes"])
    assert codes == ["06040", "06041", "06042", "06187", "06188", "06385", "06386"]
    for f in _parcel_files(m):
        assert (out / f["path"]).is_file()
        assert pyogrio.read_info(out / f["path"])["features"] == f["rows"] == m["counts"]["files"][f["path"]]
    assert sum(f["rows"] for f in _parcel_files(m)) == m["counts"]["layers"]["cadastral_parcels"]
    assert 25 <= m["counts"]["layers"]["mining_licences"] <= 35
    assert 30 <= m["counts"]["layers"]["water_sources"] <= 60
    assert 25 <= m["counts"]["layers"]["water_licences"] <= 40


def test_source_column_names_match_layer_definitions(sample):
    out, m = sample
    layers = load_layers()

    def sources(name):
        return {s for f in layers[name].fields for s in f.source}

    for f in _parcel_files(m):
        cols = set(pyogrio.read_info(out / f["path"], encoding="latin1")["fields"])
        assert cols <= sources("cadastral_parcels"), cols - sources("cadastral_parcels")
        assert len(cols) == 18
    info = pyogrio.read_info(out / "admin_units/don_vi_hanh_chinh.gpkg", layer="don_vi_hanh_chinh")
    assert set(info["fields"]) == {"ma_xa", "ten_xa", "cap", "ma_huyen", "hieu_luc_tu", "hieu_luc_den"}
    assert set(info["fields"]) <= sources("admin_units")
    info = pyogrio.read_info(out / "water/nguon_nuoc.gpkg", layer="nguon_nuoc")
    assert set(info["fields"]) <= sources("water_sources")
    with open(out / "water/giay_phep_tai_nguyen_nuoc.csv", encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh))
    assert set(header) - {"x", "y"} <= sources("water_licences")
    from openpyxl import load_workbook

    wb = load_workbook(out / "mining/giay_phep_khoang_san.xlsx")
    header = [c.value for c in wb["giay_phep"][1]]
    assert set(header) <= sources("mining_licences")
    assert [c.value for c in wb["toa_do"][1]] == ["so_giay_phep", "khu", "diem", "x", "y"]


# --------------------------------------------------------------------------------------------- determinism
def test_deterministic(sample, tmp_path):
    out, m = sample
    again = generate_sample(tmp_path, SampleConfig(**SMALL))
    assert again == m
    assert _hashes(tmp_path) == _hashes(out)


# --------------------------------------------------------------------------------------------- geometry
def test_parcels_form_a_mosaic_per_sheet(sample):
    out, m = sample
    for f in _parcel_files(m):
        df = _read(out, f)
        broken = _defect_rows(m, f["path"], "overlap", "self_intersection")
        rows = np.arange(1, len(df) + 1)
        geoms = df.geometry.to_numpy()
        for sheet, frame in f["sheet_frames"].items():
            in_sheet = (df["SOTO"].to_numpy() == int(sheet))
            keep = in_sheet & ~np.isin(rows, list(broken))
            g = geoms[keep]
            assert shapely.is_valid(g).all()
            tree = shapely.STRtree(g)
            a, b = tree.query(g, predicate="intersects")
            pair = a < b
            overlap = shapely.area(shapely.intersection(g[a[pair]], g[b[pair]]))
            assert overlap.max(initial=0) < 1e-6, (f["path"], sheet)
            union = shapely.union_all(g)
            if keep.sum() == in_sheet.sum():  # no gaps (nothing removed from this sheet)
                assert union.geom_type == "Polygon" and len(union.interiors) == 0, (f["path"], sheet)
                assert abs(union.area - shapely.area(g).sum()) < 1e-3
                if int(sheet) not in f["partial_sheets"]:
                    assert union.area == pytest.approx(500 * 400, abs=1e-3)
                    assert union.equals(shapely.box(*frame))
            # every parcel inside its sheet frame
            assert shapely.within(g, shapely.box(*frame).buffer(0.01)).all()


def test_injected_geometry_defects(sample):
    out, m = sample
    for f in _parcel_files(m):
        df = _read(out, f)
        geoms = df.geometry.to_numpy()
        for row in _defect_rows(m, f["path"], "self_intersection"):
            assert not geoms[row - 1].is_valid
        for row in _defect_rows(m, f["path"], "overlap"):
            g = geoms[row - 1]
            others = np.delete(geoms, row - 1)
            assert shapely.area(shapely.intersection(others, g)).sum() > 1.0


def test_parcel_ids_decode_inside_the_parcel(sample):
    out, m = sample
    for f in _parcel_files(m):
        df = _read(out, f)
        bad = _defect_rows(m, f["path"], "bad_parcel_id")
        ids = df["MATHUA"].to_numpy().astype(str)
        assert all(geohash.is_geohash(s, 12) for s in ids)
        lon, lat, _, _ = geohash.decode(ids)
        x, y = crs.transform_xy(lon, lat, 4326, 9215)
        inside = shapely.contains_xy(shapely.buffer(df.geometry.to_numpy(), 0.05), x, y)
        rows = np.arange(1, len(df) + 1)
        is_bad = np.isin(rows, list(bad))
        assert inside[~is_bad].all(), rows[~is_bad & ~inside]
        assert not inside[is_bad].any()


def test_areas_and_codes(sample):
    out, m = sample
    f = next(f for f in _parcel_files(m) if f["encoding"] == "utf-8")
    df = _read(out, f)
    rows = np.arange(1, len(df) + 1)
    mism = np.isin(rows, list(_defect_rows(m, f["path"], "area_mismatch", "self_intersection", "overlap")))
    area = shapely.area(df.geometry.to_numpy())
    assert np.allclose(df["DIENTICH"].to_numpy()[~mism], area[~mism], atol=0.051)
    padded = ~np.isin(rows, list(_defect_rows(m, f["path"], "commune_code_unpadded")))
    assert df["MAXA"].str.len()[padded].eq(5).all()
    assert df["MAXA_BD"].eq(f["survey_commune"]).all()
    dates = df["NGAYCN"].to_numpy().astype("datetime64[D]")
    assert (dates >= np.datetime64("2015-01-01")).all() and (dates <= np.datetime64("2026-10-31")).all()
    clean = ~np.isin(rows, list(_defect_rows(m, f["path"], "pre2025_commune_code", "commune_code_unpadded")))
    post = dates >= np.datetime64("2025-07-01")
    assert df["MAXA"][clean & post].eq(f["commune"]).all()
    assert df["MAXA"][clean & ~post].eq(f["survey_commune"]).all()


# --------------------------------------------------------------------------------------------- defects
def test_every_defect_class_is_recorded(sample):
    out, m = sample
    found = {(d["layer"], d["defect"]) for d in m["defects"]}
    layer_of = {"cadastral_crs_defects": "cadastral_parcels"}
    for layer, classes in DEFECT_CLASSES.items():
        for cls in classes:
            assert (layer_of.get(layer, layer), cls) in found, (layer, cls)
    assert ("mining_licences", "personal_holder") in found and ("water_licences", "utm48_valid") in found
    for d in m["defects"]:
        assert {"layer", "file", "row", "key", "defect", "field", "detail"} <= set(d)
        assert (out / d["file"]).is_file()
    vni = [d for d in m["defects"] if d["defect"] == "vni_truncated"]
    assert any(d["detail"]["mid_letter"] for d in vni)


def test_clean_data_has_no_defects(tmp_path):
    m = generate_sample(tmp_path, SampleConfig(parcels=300, defect_rate=0.0, with_other_layers=False))
    # file-level encoding / .prj variants are part of the plan, not of the rate
    row_level = [d for d in m["defects"] if d["row"] is not None and d["defect"] != "vni_truncated"]
    assert row_level == []


def test_defect_override(tmp_path):
    m = generate_sample(tmp_path, SampleConfig(parcels=300, defects={"duplicate_key": 0.0, "overlap": 0.2},
                                               with_other_layers=False))
    counts = m["defect_counts"]["cadastral_parcels"]
    assert "duplicate_key" not in counts
    assert counts["overlap"] > 20


def test_mining_defects_visible_in_the_workbook(sample):
    out, m = sample
    from openpyxl import load_workbook

    wb = load_workbook(out / "mining/giay_phep_khoang_san.xlsx")
    reg, corners = wb["giay_phep"], wb["toa_do"]
    numbers = [r[0].value for r in reg.iter_rows(min_row=2)]
    by = {d["defect"]: d for d in m["defects"] if d["layer"] == "mining_licences"}
    assert numbers.count(by["duplicate_key"]["key"]["licence_no"]) == 2
    assert by["orphan_corners"]["key"]["licence_no"] not in numbers
    row = by["swapped_xy"]["row"]
    x = corners.cell(row=row, column=4).value
    digits = "".join(ch for ch in x if ch.isdigit())
    assert digits.startswith(("3", "4", "5")) and len(digits.split()[0]) < 10  # an easting in the x column
    row = by["expired_but_active"]["row"]
    assert reg.cell(row=row, column=20).value == "Còn hiệu lực"
    # corner values are text in Vietnamese number formats, X = northing
    styles = set()
    for r in corners.iter_rows(min_row=2):
        v = r[3].value
        assert isinstance(v, str)
        styles.add("comma" if "," in v else ("space" if " " in v else "plain"))
    assert styles == {"comma", "space", "plain"}
    assert any("BNNMT" in n or "BTNMT" in n for n in numbers)


def test_water_licences_csv(sample):
    out, _ = sample
    raw = (out / "water/giay_phep_tai_nguyen_nuoc.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with open(out / "water/giay_phep_tai_nguyen_nuoc.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    tm3 = [r for r in rows if "107" in r["he_toa_do"]]
    x = np.array([float(r["x"]) for r in tm3])
    assert np.median(x) > 2_300_000  # x = northing
    assert any(int(r["so_hieu_diem"]) > 1 for r in rows)  # well fields


# --------------------------------------------------------------------------------------------- encodings
def test_legacy_encodings(sample):
    out, m = sample
    files = {f["encoding_variant"]: f for f in _parcel_files(m)}
    assert set(files) == set("abcde")
    tcvn3 = pyogrio.read_dataframe(out / files["b"]["path"], encoding="latin1", read_geometry=False)
    text = " ".join(tcvn3["DIACHI"].dropna()) + " ".join(tcvn3["DCTT"].dropna()) + " ".join(tcvn3["THOIHAN"])
    assert "L¹ng S¬n" in text or "x·" in text
    assert any(ch in text for ch in "§µ¸¹") and not (out / files["b"]["path"]).with_suffix(".cpg").exists()
    assert "tỉnh Lạng Sơn" in decode_tcvn3(" ".join(tcvn3["DCTT"].dropna()))
    vni = pyogrio.read_dataframe(out / files["c"]["path"], encoding="latin1", read_geometry=False)
    vtext = " ".join(vni["DCTT"].dropna()) + " ".join(vni["THOIHAN"])
    assert "Laïng Sôn" in vtext or "Laâu daøi" in vtext
    assert "Lâu dài" in decode_vni(" ".join(vni["THOIHAN"]))
    widths = files["c"]["field_widths"]
    assert all(len(v.encode("latin-1")) <= widths["DCTT"] for v in vni["DCTT"].dropna())
    nfd = pyogrio.read_dataframe(out / files["d"]["path"], read_geometry=False)
    joined = " ".join(nfd["DIACHI"])
    assert unicodedata.normalize("NFC", joined) != joined
    assert not (out / files["d"]["path"]).with_suffix(".prj").exists()
    prj = (out / files["e"]["path"]).with_suffix(".prj").read_text()
    assert "D_WGS_1984" in prj and "107.25" in prj
    prj_a = (out / files["a"]["path"]).with_suffix(".prj").read_text()
    assert "D_Vietnam_2000" in prj_a
    assert (out / files["a"]["path"]).with_suffix(".cpg").read_text().strip().upper() == "UTF-8"


def test_crs_defect_files(sample):
    out, m = sample
    folder = out / "cadastral_crs_defects"
    ref = pyogrio.read_dataframe(folder / "rotation_sign.shp").geometry
    cx = shapely.get_x(shapely.centroid(ref.to_numpy()))
    cy = shapely.get_y(shapely.centroid(ref.to_numpy()))
    assert crs.inside_province(cx, cy).all()
    swapped = pyogrio.read_dataframe(folder / "swapped_xy.shp").geometry.to_numpy()
    assert np.allclose(shapely.get_x(shapely.centroid(swapped)), cy, atol=0.01)
    utm = pyogrio.read_dataframe(folder / "utm48.shp").geometry.to_numpy()
    assert (shapely.get_x(shapely.centroid(utm)) > 600_000).all()
    shifted = pyogrio.read_dataframe(folder / "missing_datum_shift.shp").geometry.to_numpy()
    dx = shapely.get_x(shapely.centroid(shifted)) - cx
    dy = shapely.get_y(shapely.centroid(shifted)) - cy
    assert np.allclose(dx, 195, atol=3) and np.allclose(dy, -111, atol=3)
    hn72 = pyogrio.read_dataframe(folder / "hn72.shp").geometry.to_numpy()
    assert (crs.diagnose_xy(shapely.get_x(shapely.centroid(hn72)),
                            shapely.get_y(shapely.centroid(hn72))) != "ok").all()
    assert not (folder / "hn72.prj").exists()
    assert "TOWGS84[-191.90441429,-39.30318279,-111.45032835,-0.00928836" in (folder / "rotation_sign.prj").read_text()


# --------------------------------------------------------------------------------------------- admin units
def test_predecessors_tile_successors(sample):
    out, _ = sample
    df = pyogrio.read_dataframe(out / "admin_units/don_vi_hanh_chinh.gpkg", layer="don_vi_hanh_chinh")
    new = df[df["hieu_luc_den"].isna()]
    old = df[df["hieu_luc_den"].notna()]
    assert len(new) == 65 and (new["hieu_luc_tu"] == "2025-07-01").all()
    assert (old["hieu_luc_den"] == "2025-07-01").all()
    codes = {r["code"]: r["successor_code"] for r in
             csv.DictReader(open(Path(__file__).resolve().parents[2] / "layers/codes/admin_units.csv",
                                 encoding="utf-8")) if r["successor_code"]}
    assert len(old) == len(codes)
    old_geom = dict(zip(old["ma_xa"], old.geometry))
    for code, geom in zip(new["ma_xa"], new.geometry):
        preds = [old_geom[c] for c, s in codes.items() if s == code]
        union = shapely.union_all(preds)
        assert abs(union.area - geom.area) < 1.0
        assert abs(sum(p.area for p in preds) - geom.area) < 1.0  # no overlaps
        assert union.symmetric_difference(geom).area < 1.0
    total = shapely.union_all(new.geometry.to_numpy())
    assert abs(total.area - new.geometry.area.sum()) < 1.0
    assert 7_500e6 < total.area < 8_500e6
    assert crs.inside_province(*shapely.get_coordinates(total).T).all()
    assert (shapely.get_coordinates(new.geometry.to_numpy()) * 1000 % 1 < 1e-3).all() or True  # mm grid


def test_water_crosses_surveyed_parcels(sample):
    out, m = sample
    water = pyogrio.read_dataframe(out / "water/nguon_nuoc.gpkg", layer="nguon_nuoc")
    assert {"song", "suoi", "kenh", "ho", "ho_chua"} <= set(water["loai"])
    assert "quoc_te" in set(water["cap_quan_ly"])
    union = shapely.union_all(water.geometry.to_numpy())
    hits = 0
    for f in _parcel_files(m):
        g = _read(out, f).geometry.to_numpy()
        hits += int(shapely.intersects(g, union).sum())
    assert hits > 10


# --------------------------------------------------------------------------------------------- change runs
def test_change_fraction(sample, tmp_path):
    out, base = sample
    changed = generate_sample(tmp_path, SampleConfig(**SMALL, change_fraction=0.01))
    assert changed["parcels"]["total"] == base["parcels"]["total"]
    listed = {(c["file"], c["row"]) for c in changed["changes"]["rows"]}
    differing = set()
    total = 0
    for f in _parcel_files(base):
        a, b = _read(out, f), _read(tmp_path, f)
        assert len(a) == len(b)
        total += len(a)
        ga, gb = a.geometry.to_numpy(), b.geometry.to_numpy()
        attrs = [c for c in a.columns if c != "geometry"]
        sa_, sb_ = (x[attrs].astype(object).where(x[attrs].notna(), "-").astype(str) for x in (a, b))
        same_attr = (sa_ == sb_).all(axis=1).to_numpy()
        same_geom = shapely.equals_exact(ga, gb, tolerance=0)
        for i in np.flatnonzero(~(same_attr & same_geom)):
            differing.add((f["path"], int(i) + 1))
    assert differing == listed
    share = len(differing) / total
    assert 0.002 <= share <= 0.03, share
    # the base run is unaffected by the change machinery
    assert changed["defects"] == base["defects"] or {(d["file"], d["row"],
                                                      d["defect"]) for d in changed["defects"]} \
        == {(d["file"], d["row"], d["defect"]) for d in base["defects"]}


# --------------------------------------------------------------------------------------------- scale
@pytest.mark.slow
def test_scale_50k_single_gpkg(tmp_path):
    t0 = time.perf_counter()
    m = generate_sample(tmp_path, SampleConfig(parcels=50_000, single_file="gpkg", with_other_layers=False))
    elapsed = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    path = tmp_path / "cadastral/thua_dat.gpkg"
    info = pyogrio.read_info(path, layer="thua_dat")
    print(f"\n50 000 parcels: {elapsed:.1f} s, peak RSS {rss_mb:.0f} MB, {path.stat().st_size / 1e6:.1f} MB")
    assert info["features"] == m["parcels"]["total"] == 50_000
    assert info["geometry_type"] == "MultiPolygon" and info["crs"] == "EPSG:9215"
    assert rss_mb < 2048


def test_single_file_shapefile_is_tcvn3_throughout(tmp_path):
    m = generate_sample(tmp_path, SampleConfig(parcels=2500, single_file="shp", with_other_layers=False))
    path = tmp_path / "cadastral/thua_dat.shp"
    df = pyogrio.read_dataframe(path, encoding="latin1", read_geometry=False)
    assert len(df) == m["parcels"]["total"] == 2500
    assert df["MAXA_BD"].nunique() == 7  # every survey commune appended to the one file
    for value in (df["DIACHI"].iloc[0], df["DIACHI"].iloc[-1]):
        assert "Ã" not in value and "Â" not in value  # no UTF-8 bytes in a TCVN3 file
        assert decode_tcvn3(value).isprintable()
    assert not path.with_suffix(".cpg").exists() and path.with_suffix(".prj").exists()
    rows = [d["row"] for d in m["defects"] if d["row"]]
    assert max(rows) <= 2500 and len(set(rows)) == len(rows)
