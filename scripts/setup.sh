#!/usr/bin/env bash
# Prepare this machine for gisplatform: system packages (PostGIS for the installed PostgreSQL major
# version, GDAL's command-line tools), a Python >= 3.12 virtualenv in .venv and the package in it.
# Safe to run again: every step checks first and does nothing when already done.
#
#   scripts/setup.sh           run-time set-up (what the demo needs)
#   scripts/setup.sh --test    also what the test suite needs
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WANT_TEST=0
[[ "${1:-}" == "--test" ]] && WANT_TEST=1

say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[setup] %s\033[0m\n' "$*" >&2; exit 1; }

# --- 1. system packages ------------------------------------------------------------------------
pg_major() {
  # Prefer the server that is actually running; fall back to the newest installed binaries.
  local v
  v=$(psql -h "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}" -U postgres -Atqc 'show server_version_num' 2>/dev/null || true)
  if [[ "$v" =~ ^[0-9]+$ ]]; then echo $((v / 10000)); return; fi
  v=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
  [[ -n "$v" ]] && { echo "$v"; return; }
  die "no PostgreSQL found: install the Debian package 'postgresql' first (apt-get install postgresql)"
}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $*  (run it yourself, then run this script again)"; fi
}

MAJOR=$(pg_major)
PKGS=("postgresql-${MAJOR}-postgis-3" gdal-bin)
if [[ $WANT_TEST -eq 1 ]]; then PKGS+=(chromium chromium-driver ${GISPLATFORM_TEST_APT_PACKAGES:-}); fi  # browser tests of the portal
command -v npm >/dev/null || PKGS+=(npm)  # installs the portal's MapLibre GL JS (step 4)
MISSING=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || MISSING+=("$p")
done
if (( ${#MISSING[@]} )); then
  say "installing system packages: ${MISSING[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${MISSING[@]}" >/dev/null
fi

# --- 2. a Python >= 3.12 -----------------------------------------------------------------------
is_py312() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
find_python() {
  local c
  for c in "${GISPLATFORM_PYTHON:-}" python3.12 python3.13 python3; do
    [[ -n "$c" ]] && command -v "$c" >/dev/null 2>&1 && is_py312 "$c" && { command -v "$c"; return; }
  done
  # pyenv installs are not on PATH unless selected: look in its versions folder directly.
  local root
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  # 3.12 first: the oldest supported version is the one every dependency has wheels for.
  for c in $(ls -d "$root"/versions/3.1[2-9]* 2>/dev/null | sort -V); do
    is_py312 "$c/bin/python3" && { echo "$c/bin/python3"; return; }
  done
  return 1
}

VENV=$ROOT/.venv
if [[ ! -x $VENV/bin/python ]] || ! is_py312 "$VENV/bin/python"; then
  PY=$(find_python) || die "no Python >= 3.12 found (pygeoapi 0.24 needs it). Install python3.12 or set GISPLATFORM_PYTHON=/path/to/python3.12"
  say "creating virtualenv .venv with $PY ($("$PY" -V))"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
fi

# --- 3. the package ----------------------------------------------------------------------------
EXTRAS=""
[[ $WANT_TEST -eq 1 ]] && EXTRAS="[test,bench]"
# One stamp per set of extras, named after the packaging files' hash: a change to setup.cfg reinstalls.
STAMP=$VENV/.installed-$(cat setup.cfg pyproject.toml | sha256sum | cut -c1-16)${EXTRAS:+-test}
if [[ ! -f $STAMP && ! -f ${STAMP%-test}-test ]]; then
  say "installing gisplatform$EXTRAS into .venv"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  "$VENV/bin/python" -m pip install -q --config-settings editable_mode=compat -e ".$EXTRAS" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  rm -f "$VENV"/.installed-*
  touch "$STAMP"
fi
# --- 4. the portal's JavaScript (MapLibre GL JS from npm, never committed) ---------------------------
# npm ci when node_modules is missing or package-lock.json changed since the last install.
PORTAL=$ROOT/gisplatform/portal
LOCK_SUM=$(sha256sum "$PORTAL/package-lock.json" | cut -c1-64)
if [[ ! -f $PORTAL/node_modules/maplibre-gl/dist/maplibre-gl.js || "$(cat "$PORTAL/node_modules/.lock-sha256" 2>/dev/null)" != "$LOCK_SUM" ]]; then
  say "installing the portal's JavaScript (npm ci in gisplatform/portal)"
  (cd "$PORTAL" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
  echo "$LOCK_SUM" > "$PORTAL/node_modules/.lock-sha256"
fi
say "ready: $("$VENV/bin/python" -V), PostgreSQL $MAJOR with PostGIS"
