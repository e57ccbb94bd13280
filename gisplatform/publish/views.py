"""The public face of the database: ``api.*`` views, and the role the API server connects as.

Privacy is enforced by the database, not by filtering in the server: the views carry only the public fields
of each layer (never a field marked ``personal``), and the ``gisplatform_api`` role may read those views and
nothing else. A bug in the API layer cannot leak a name, an ID number or an address it cannot select.

  api.<layer>           live features: id, public fields, version, updated, geometries
  api.<layer>_versions  every version (current and past) with its validity span, for "as of" queries
  api.catalogue         per layer: the last successful ETL run (time, counts, source checksum), for Records

The DDL is rendered from layers/*.yml; migrations freeze it (``python -m gisplatform.publish.views`` prints it)
and a test checks the views still match the layers.
"""
from __future__ import annotations

from gisplatform.layers import Layer, load_layers

API_SCHEMA = "api"
API_ROLE = "gisplatform_api"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def public_columns(layer: Layer) -> list[str]:
    return [f.name for f in layer.public_fields]


def live_view_sql(layer: Layer) -> str:
    fields = ", ".join(_q(c) for c in public_columns(layer))
    return (f"CREATE OR REPLACE VIEW {API_SCHEMA}.{layer.name} AS\n"
            f"  SELECT fid AS id, {fields}, version, version_start AS updated, geom, geom_wgs84\n"
            f"  FROM {layer.qualified_table} WHERE retired_at IS NULL")


def versions_view_sql(layer: Layer) -> str:
    fields = ", ".join(_q(c) for c in public_columns(layer))
    return (f"CREATE OR REPLACE VIEW {API_SCHEMA}.{layer.name}_versions AS\n"
            f"  SELECT fid AS id, {fields}, version, version_start, retired_at AS version_end, "
            "geom, geom_wgs84\n"
            f"  FROM {layer.qualified_table}\n"
            "  UNION ALL\n"
            f"  SELECT fid AS id, {fields}, version, version_start, version_end, "
            "geom, geom_wgs84\n"
            f"  FROM {layer.history_table}")


CATALOGUE_SQL = f"""CREATE OR REPLACE VIEW {API_SCHEMA}.catalogue AS
  SELECT DISTINCT ON (layer) layer, run_id, job, finished_at, read, inserted, updated, unchanged, rejected,
         retired, features, source_checksum
  FROM etl.runs WHERE status = 'succeeded'
  ORDER BY layer, run_id DESC"""


def role_sql() -> list[str]:
    """Create the API role if missing (roles are cluster-wide) and give it the api schema, read-only."""
    return [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{API_ROLE}') THEN "
        f"CREATE ROLE {API_ROLE} LOGIN; END IF; END $$",
        f"GRANT USAGE ON SCHEMA {API_SCHEMA} TO {API_ROLE}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {API_SCHEMA} TO {API_ROLE}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {API_SCHEMA} GRANT SELECT ON TABLES TO {API_ROLE}",
        f"GRANT USAGE ON SCHEMA public TO {API_ROLE}",  # PostGIS functions and spatial_ref_sys
    ]


def all_statements() -> list[str]:
    statements = [f"CREATE SCHEMA IF NOT EXISTS {API_SCHEMA}"]
    for layer in load_layers().values():
        statements += [live_view_sql(layer), versions_view_sql(layer)]
    statements.append(CATALOGUE_SQL)
    return statements + role_sql()


if __name__ == "__main__":  # print the DDL to freeze into a migration
    print(";\n\n".join(all_statements()) + ";")
