#!/usr/bin/env bash
# The main job, from a fresh machine: set-up (PostGIS, virtualenv, package), database, every ETL job on the
# bundled Lạng Sơn sample, run reports.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/gisplatform demo "$@"
