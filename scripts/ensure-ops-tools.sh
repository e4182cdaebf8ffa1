#!/usr/bin/env bash
# Installs the Debian packages the operations tests need, only when missing:
#   prometheus       ships promtool (alert rules: check + unit tests)
#   docker-registry  an OCI distribution registry (the `make oci` round trip)
# Neither daemon is started or enabled: the tests run their own instances on
# free ports with their own config and storage. Quiet when all is present.
set -euo pipefail
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "ensure-ops-tools: need ${missing[*]} (Debian packages); run as root or install them: apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "ensure-ops-tools: apt-get install ${missing[*]}" >&2
# Keep the packages' init scripts from starting system daemons (policy-rc.d
# exit 101 = "action forbidden"); removed again afterwards if we made it.
made_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
fi
cleanup() { if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
if ! apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null 2>&1 || true
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
command -v promtool >/dev/null && command -v docker-registry >/dev/null || {
  echo "ensure-ops-tools: promtool or docker-registry still missing after install" >&2; exit 1; }
