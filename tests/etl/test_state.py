"""The layer's live features as a run reads them before its heavier modules are imported (gisplatform.etl.state)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import sqlalchemy as sa

from gisplatform.db.engine import libpq_dsn
from gisplatform.etl.jobs import one_off_job
from gisplatform.etl.runner import run_job
from gisplatform.etl.state import LiveFeatures, read_live_features, start_reading
from tests.builders import parcels, write_parcels

TABLE = "data.cadastral_parcels"


def test_live_features_are_the_live_rows_hashes_sorted_with_their_fids(db, tmp_path):
    run_job(one_off_job("cadastral_parcels", write_parcels(tmp_path / "p.gpkg", parcels(6)), None, "auto", "full"))
    with db.begin() as connection:  # one retired, one loaded without a source hash
        connection.execute(sa.text(f"UPDATE {TABLE} SET retired_at = now() WHERE fid = (SELECT min(fid) FROM {TABLE})"))
        connection.execute(sa.text(f"UPDATE {TABLE} SET source_hash = NULL WHERE fid = (SELECT max(fid) FROM {TABLE})"))
        expected = connection.execute(sa.text(
            f"SELECT source_hash, fid FROM {TABLE} WHERE retired_at IS NULL AND source_hash IS NOT NULL "
            "ORDER BY source_hash")).all()
        hashless = connection.execute(sa.text(
            f"SELECT fid FROM {TABLE} WHERE retired_at IS NULL AND source_hash IS NULL")).scalars().all()
    live = read_live_features(libpq_dsn(), TABLE)
    assert [(int(h), int(f)) for h, f in zip(live.hashes, live.fids)] == [tuple(r) for r in expected]
    assert live.hashes.dtype == np.int64 and len(expected) == 4
    assert live.hashless_fids.tolist() == hashless and len(hashless) == 1
    threaded = start_reading(libpq_dsn(), TABLE).result(timeout=60)
    assert (threaded.hashes.tolist(), threaded.fids.tolist()) == (live.hashes.tolist(), live.fids.tolist())


def test_an_empty_layer_has_no_live_features(db):
    live = read_live_features(libpq_dsn(), TABLE)
    assert (len(live.hashes), len(live.fids), len(live.hashless_fids)) == (0, 0, 0)


def test_identical_hashes_come_in_fid_order():
    live = LiveFeatures.of(np.array([7, 3, 7, 7], dtype=np.int64), np.array([40, 10, 20, 30]), np.zeros(0, np.int64))
    assert live.hashes.tolist() == [3, 7, 7, 7] and live.fids.tolist() == [10, 20, 30, 40]


def test_a_failed_read_reaches_the_run():
    future = start_reading(libpq_dsn(), "data.no_such_layer")
    try:
        future.result(timeout=60)
    except Exception as exc:  # noqa: BLE001 - any database error, handed over by the thread
        assert "no_such_layer" in str(exc)
    else:
        raise AssertionError("reading a missing table succeeded")


def test_the_run_frame_imports_none_of_the_heavy_modules():
    """What lets the run take its lock and start the scan while pandas, pyogrio and the rest are still being
    imported: the CLI's etl commands, the job definitions and the runner import none of them."""
    probe = ("import sys, json; import gisplatform.cli.etl, gisplatform.etl.jobs, gisplatform.etl.runner; "
             "print(json.dumps(sorted(m for m in ('pandas', 'pyogrio', 'shapely', 'pyproj', 'polars', 'sqlalchemy', "
             "'pyarrow', 'adbc_driver_postgresql', 'gisplatform.etl.execute') if m in sys.modules)))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                       check=True).stdout)
    assert loaded == []


def test_the_transaction_imports_no_sqlalchemy():
    """The transaction's own modules read code tables and boundaries on the run's ADBC connection: SQLAlchemy
    (0.2 s to import, on the critical path of a re-run) is first imported after the commit, for the conflict
    recompute."""
    probe = ("import sys; import gisplatform.cli.etl, gisplatform.etl.runner, gisplatform.etl.execute; "
             "print('sqlalchemy' in sys.modules)")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "False"
