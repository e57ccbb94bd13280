#!/usr/bin/env bash
# The test suite, from a fresh machine: set-up included. Tests use a real PostgreSQL + PostGIS database of their
# own (created and dropped by the suite). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
exec .venv/bin/python -m pytest "$@"
