"""With no server and no URL, the platform starts its own cluster from the installed binaries."""
from __future__ import annotations

import psycopg2

from gisplatform.db.cluster import EmbeddedCluster


def test_embedded_cluster_initialises_starts_and_has_postgis(tmp_path):
    cluster = EmbeddedCluster(tmp_path / "pgcluster", port=54391)
    try:
        cluster.ensure_running()
        assert cluster.is_running()
        connection = psycopg2.connect(cluster.uri("postgres"))  # the libpq URI the platform connects with
        connection.autocommit = True
        with connection.cursor() as cur:
            cur.execute("CREATE EXTENSION postgis")
            cur.execute("SELECT postgis_lib_version()")
            assert cur.fetchone()[0].startswith("3.")
        connection.close()
        cluster.ensure_running()  # idempotent
    finally:
        cluster.stop()
    assert not cluster.is_running()
