"""The database schema as SQLAlchemy metadata, derived from ``layers/*.yml`` and ``layers/codes/*.csv``.

This is what Alembic compares the database with when a migration is generated (``gisplatform db revision``);
the migrations in ``migrations/versions`` are the frozen, reviewed DDL. A test checks that applying them
gives exactly this metadata, so a layer file and its table cannot drift apart.

Schemas:
  data     one table per layer: the current version of every feature ever loaded (retired ones flagged)
  history  one table per layer: every earlier version, with the time span it was current
  codes    versioned code tables (land-use codes, admin units, mineral groups)
  etl      run log, quarantine of rejected rows, warnings and repairs per row
  staging  per-run unlogged tables, created and dropped by the loader
"""
from __future__ import annotations

import csv
from functools import cache

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from gisplatform.config import settings
from gisplatform.layers import CODES_SCHEMA, DATA_SCHEMA, HISTORY_SCHEMA, WGS84_SRID, Field, Layer, load_layers

ETL_SCHEMA = "etl"
STAGING_SCHEMA = "staging"
SCHEMAS = (DATA_SCHEMA, HISTORY_SCHEMA, CODES_SCHEMA, ETL_SCHEMA, STAGING_SCHEMA)

_SQL_TYPES: dict[str, type[sa.types.TypeEngine] | sa.types.TypeEngine] = {
    "text": sa.Text(),
    "integer": sa.BigInteger(),
    "number": sa.Float(precision=53),
    "date": sa.Date(),
    "boolean": sa.Boolean(),
}

# Bookkeeping columns of every layer table; layer fields may not use these names.
SYSTEM_COLUMNS = (
    "fid", "version", "version_start", "version_end", "retired_at", "run_id", "row_hash", "source_hash",
    "source_file", "source_row", "source_raw", "qa_flags", "geom", "geom_wgs84", "hid",
)


def sql_type(field: Field) -> sa.types.TypeEngine:
    return _SQL_TYPES[field.type]


def _geometry(layer: Layer, srid: int) -> Geometry:
    # spatial_index=False: indexes are declared explicitly so migrations show them and names are stable.
    return Geometry(layer.geometry_type.upper(), srid=srid, spatial_index=False)


def _field_columns(layer: Layer) -> list[sa.Column]:
    key = set(layer.natural_key)
    return [sa.Column(f.name, sql_type(f), nullable=f.name not in key, comment=f.title.en) for f in layer.fields]


def _version_columns(layer: Layer) -> list[sa.Column]:
    # geom_wgs84 = ST_Transform(geom, 4326): computed by the run's staging table while rows are copied in and
    # written by the merge; triggers compute it for other writers (migration 0010)
    return [
        sa.Column("geom", _geometry(layer, layer.storage_srid), nullable=False),
        sa.Column("geom_wgs84", _geometry(layer, WGS84_SRID)),
        sa.Column("qa_flags", ARRAY(sa.Text()), comment="warnings and repairs that apply to this version"),
        sa.Column("source_file", sa.Text()),
        sa.Column("source_row", sa.Integer()),
        sa.Column("source_raw", JSONB(), comment="original bytes (hex) of text converted from legacy encodings"),
        sa.Column("source_hash", sa.BigInteger(), comment="hash of the source record as read, to skip unchanged rows"),
        sa.Column("row_hash", sa.BigInteger(), nullable=False, comment="hash of attributes and normalised geometry"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("version_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False, comment="run that wrote this version"),
    ]


def _data_table(layer: Layer, metadata: sa.MetaData) -> sa.Table:
    name = layer.table
    table = sa.Table(
        name,
        metadata,
        sa.Column("fid", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        *_field_columns(layer),
        *_version_columns(layer),
        sa.Column("retired_at", sa.DateTime(timezone=True), comment="set when a full snapshot no longer has it"),
        sa.UniqueConstraint(*layer.natural_key, name=f"{name}_natural_key"),
        schema=DATA_SCHEMA,
        comment=layer.title.en,
    )
    sa.Index(f"{name}_geom_idx", table.c.geom, postgresql_using="gist")
    sa.Index(f"{name}_geom_wgs84_idx", table.c.geom_wgs84, postgresql_using="gist")
    return table


def _history_table(layer: Layer, metadata: sa.MetaData) -> sa.Table:
    name = layer.table
    table = sa.Table(
        name,
        metadata,
        sa.Column("hid", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("fid", sa.BigInteger(), nullable=False),
        *_field_columns(layer),
        *_version_columns(layer),
        sa.Column("version_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_by_run", sa.BigInteger(), nullable=False),
        sa.Column("retired", sa.Boolean(), nullable=False, comment="the version ended because the feature was retired"),
        schema=HISTORY_SCHEMA,
        comment=f"Earlier versions of {layer.qualified_table}",
    )
    sa.Index(f"{name}_fid_version_idx", table.c.fid, table.c.version, unique=True)
    sa.Index(f"{name}_span_idx", table.c.version_start, table.c.version_end)
    sa.Index(f"{name}_hist_geom_idx", table.c.geom_wgs84, postgresql_using="gist")
    return table


def _code_table(name: str, columns: list[str], metadata: sa.MetaData) -> sa.Table:
    def column(col: str) -> sa.Column:
        if col in ("valid_from", "valid_to"):
            return sa.Column(col, sa.Date(), nullable=col == "valid_to")
        return sa.Column(col, sa.Text(), nullable=col != "code")

    return sa.Table(
        name,
        metadata,
        *[column(c) for c in columns],
        sa.PrimaryKeyConstraint("code", "valid_from", name=f"{name}_pkey"),
        schema=CODES_SCHEMA,
    )


def code_table_files() -> dict[str, list[str]]:
    """Code-table name -> CSV header, for every layers/codes/*.csv."""
    tables = {}
    for path in sorted(settings().codes_dir.glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh))
        missing = {"code", "valid_from", "valid_to"} - set(header)
        if missing:
            raise ValueError(f"{path}: a code table needs the columns code, valid_from, valid_to (missing {missing})")
        tables[path.stem] = header
    return tables


def _row_reference() -> list[sa.Column]:
    """Columns that locate a source row of a run (shared by the quarantine and the issues log)."""
    return [
        sa.Column("run_id", sa.BigInteger(), sa.ForeignKey(f"{ETL_SCHEMA}.runs.run_id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("file", sa.Text()),
        sa.Column("row_number", sa.Integer()),
        sa.Column("natural_key", sa.Text()),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("field", sa.Text()),
        sa.Column("message", sa.Text(), nullable=False),
    ]


def _etl_tables(metadata: sa.MetaData) -> None:
    counts = [sa.Column(c, sa.BigInteger(), nullable=False, server_default="0") for c in (
        "read", "inserted", "updated", "unchanged", "rejected", "retired", "repaired", "warnings")]
    sa.Table(
        "runs",
        metadata,
        sa.Column("run_id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("job", sa.Text(), nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("mode", sa.Text(), nullable=False),
        sa.Column("trigger", sa.Text(), nullable=False, server_default="manual"),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("host", sa.Text()),
        sa.Column("pid", sa.Integer()),
        sa.Column("options", JSONB(), comment="declared CRS, encoding, fixes"),
        sa.Column("sources", JSONB(), comment="files read: path, sha256, rows, encodings, CRS"),
        sa.Column("source_checksum", sa.Text()),
        *counts,
        sa.Column("features", sa.BigInteger(), comment="live features of the layer after the run"),
        sa.Column("report", JSONB(), comment="per-rule counts and notes"),
        sa.Column("error", sa.Text()),
        sa.Column("attempt", sa.Integer(), nullable=False, server_default="1",
                  comment="1 for the first try, 2.. for retries"),
        sa.Column("inbox_file", sa.Text(), comment="file taken from the inbox"),
        sa.Column("inbox_checksum", sa.Text(), comment="SHA-256 of the inbox file with its side-cars"),
        sa.Column("quarantine_pruned_at", sa.DateTime(timezone=True),
                  comment="when the run's rejects and issues were pruned (retention); its counts and report stay"),
        sa.CheckConstraint("status in ('running', 'succeeded', 'failed', 'skipped')", name="runs_status"),
        schema=ETL_SCHEMA,
        comment="One row per ETL run, whatever triggered it",
    )
    sa.Index("runs_inbox_checksum_idx", metadata.tables[f"{ETL_SCHEMA}.runs"].c.inbox_checksum)
    sa.Index("runs_job_idx", metadata.tables[f"{ETL_SCHEMA}.runs"].c.job, metadata.tables[f"{ETL_SCHEMA}.runs"].c.run_id)
    rejects = sa.Table(
        "rejects",
        metadata,
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        *_row_reference(),
        sa.Column("raw_record", JSONB(), comment="the source row as read (may hold personal data: internal only)"),
        sa.Column("source_hash", sa.BigInteger(),
                  comment="hash of the source row as read (same seed as the layer's rows)"),
        sa.Column("copied_from", sa.BigInteger(),
                  comment="for a row rejected again unchanged: the reject holding its raw record (raw_record is "
                          "then empty)"),
        schema=ETL_SCHEMA,
        comment="Quarantine: source rows rejected by a rule, with the reason",
    )
    sa.Index("rejects_run_idx", rejects.c.run_id)
    sa.Table(  # read through the view etl.all_rejects (migration 0009)
        "rejects_again",
        metadata,
        sa.Column("run_id", sa.BigInteger(), sa.ForeignKey(f"{ETL_SCHEMA}.runs.run_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("files", ARRAY(sa.Text()), nullable=False),
        sa.Column("row_numbers", ARRAY(sa.Integer()), nullable=False),
        sa.Column("originals", ARRAY(sa.BigInteger()), nullable=False,
                  comment="per reason: the reject (of an earlier run) holding it and the raw record"),
        sa.Column("rules", ARRAY(sa.Text()), nullable=False),
        sa.Column("source_hashes", ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("natural_keys", ARRAY(sa.Text()), nullable=False),
        sa.Column("messages", ARRAY(sa.Text()), nullable=False,
                  comment="per reason: this run's message where it is not the original's, else null"),
        schema=ETL_SCHEMA,
        comment="Rows a run rejected again unchanged, for the same reasons as before (see etl.all_rejects)",
    )
    issues = sa.Table(
        "issues",
        metadata,
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        *_row_reference(),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.CheckConstraint("kind in ('warning', 'repair')", name="issues_kind"),
        schema=ETL_SCHEMA,
        comment="Warnings and repairs on rows that were loaded",
    )
    sa.Index("issues_run_idx", issues.c.run_id)


@cache
def metadata() -> sa.MetaData:
    md = sa.MetaData()
    _etl_tables(md)
    for name, columns in code_table_files().items():
        _code_table(name, columns, md)
    for layer in load_layers().values():
        clash = {f.name for f in layer.fields} & set(SYSTEM_COLUMNS)
        if clash:
            raise ValueError(f"{layer.path}: field names {sorted(clash)} are reserved for bookkeeping columns")
        _data_table(layer, md)
        _history_table(layer, md)
    return md


def data_table(layer: Layer) -> sa.Table:
    return metadata().tables[f"{DATA_SCHEMA}.{layer.table}"]


def history_table(layer: Layer) -> sa.Table:
    return metadata().tables[f"{HISTORY_SCHEMA}.{layer.table}"]


def etl_table(name: str) -> sa.Table:
    return metadata().tables[f"{ETL_SCHEMA}.{name}"]


def code_table(name: str) -> sa.Table:
    return metadata().tables[f"{CODES_SCHEMA}.{name}"]
