"""Bring a database to the current schema, load the code tables, and report its state."""
from __future__ import annotations

import csv
from dataclasses import dataclass

import sqlalchemy as sa

from gisplatform.config import settings
from gisplatform.db import migrate
from gisplatform.db.engine import database_url, engine, ensure_database
from gisplatform.db.schema import code_table, code_table_files
from gisplatform.layers import load_layers

# Lạng Sơn city, EPSG:9215 → EPSG:4326 through EPSG:6960 (shared/domain §1.6): a wrong spatial_ref_sys row
# for 9215 (no datum shift, wrong rotation signs) moves this point by 0.7 m to 200 m.
CHECKPOINT_9215 = (450_000.0, 2_420_000.0)
CHECKPOINT_4326 = (106.768059047, 21.875849983)


def init_database() -> list[str]:
    """Create the database if needed, apply migrations, load code tables. Returns what was done."""
    done = []
    if ensure_database():
        done.append(f"created database {database_url().database}")
    before = _current_revision()
    migrate.upgrade()
    after = _current_revision()
    if before != after:
        done.append(f"migrated schema {before or '(empty)'} → {after}")
    counts = sync_code_tables()
    done.append("code tables: " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    return done


def _current_revision() -> str | None:
    with engine().connect() as connection:
        return migrate.current_revision(connection)


def sync_code_tables() -> dict[str, int]:
    """Replace each codes.* table with its CSV (the CSV, versioned in git, is the truth)."""
    counts = {}
    with engine().begin() as connection:
        for name in code_table_files():
            table = code_table(name)
            rows = _read_code_csv(name)
            connection.execute(table.delete())
            if rows:
                connection.execute(table.insert(), rows)
            counts[name] = len(rows)
    return counts


def _read_code_csv(name: str) -> list[dict]:
    path = settings().codes_dir / f"{name}.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = []
        for line_no, row in enumerate(csv.DictReader(fh), start=2):
            if not row.get("code") or not row.get("valid_from"):
                raise ValueError(f"{path} line {line_no}: 'code' and 'valid_from' are required")
            rows.append({k: (v if v != "" else None) for k, v in row.items()})
        return rows


@dataclass
class DatabaseStatus:
    url: str
    reachable: bool
    postgis: str | None = None
    revision: str | None = None
    head: str | None = None
    drift: list | None = None
    srid_9215_error_m: float | None = None
    layer_counts: dict[str, tuple[int, int]] | None = None  # layer -> (current, retired)
    error: str | None = None

    @property
    def up_to_date(self) -> bool:
        return self.reachable and self.revision == self.head and not self.drift


def status() -> DatabaseStatus:
    url = database_url()
    result = DatabaseStatus(url=url.render_as_string(hide_password=True), reachable=False, head=migrate.head_revision())
    try:
        with engine().connect() as connection:
            result.reachable = True
            result.revision = migrate.current_revision(connection)
            result.postgis = connection.scalar(sa.text(
                "SELECT extversion FROM pg_extension WHERE extname = 'postgis'"))
            if result.revision is None:
                return result
            result.drift = migrate.drift(connection)
            result.srid_9215_error_m = checkpoint_error_m(connection)
            result.layer_counts = _layer_counts(connection)
    except sa.exc.OperationalError as exc:
        result.error = str(exc.orig).strip()
    return result


def checkpoint_error_m(connection: sa.Connection) -> float:
    """Distance in metres between PostGIS' transform of the Lạng Sơn checkpoint and the reference value."""
    return connection.scalar(sa.text(
        "SELECT ST_Distance(ST_Transform(ST_SetSRID(ST_MakePoint(:e, :n), 9215), 4326)::geography, "
        "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography)"
    ), {"e": CHECKPOINT_9215[0], "n": CHECKPOINT_9215[1], "lon": CHECKPOINT_4326[0], "lat": CHECKPOINT_4326[1]})


def _layer_counts(connection: sa.Connection) -> dict[str, tuple[int, int]]:
    counts = {}
    for layer in load_layers().values():
        row = connection.execute(sa.text(
            f"SELECT count(*) FILTER (WHERE retired_at IS NULL), count(*) FILTER (WHERE retired_at IS NOT NULL) "
            f"FROM {layer.qualified_table}"
        )).one()
        counts[layer.name] = (row[0], row[1])
    return counts
