#!/usr/bin/env bash
# Makes sure redis-server and webdis (the L2 tier's store and its HTTP front,
# see README "L2") are installed; the e2e tests start their own instances on
# free ports. Quiet and quick when both are present. Debian/Ubuntu: apt-get.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v webdis >/dev/null 2>&1 || missing+=(webdis)
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-l2: missing ${missing[*]} and no apt-get: install them (the L2 e2e tests skip without them)" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "ensure-l2: installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
  || { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
# The packages start system services; the tests do not use them.
for s in webdis redis-server; do
  command -v systemctl >/dev/null 2>&1 && $SUDO systemctl disable --now "$s" >/dev/null 2>&1 || true
done
command -v redis-server >/dev/null && command -v webdis >/dev/null
