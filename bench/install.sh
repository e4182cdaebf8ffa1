#!/usr/bin/env bash
# Installs what make bench needs from Debian's packages, only if missing:
# wrk, nginx, Varnish (+ varnish-modules for bodyaccess), gnuplot, Node.js
# and, optionally, perf. The packages' own services are stopped: the
# benchmark runs its own instances on free loopback ports with the configs
# under bench/.
set -euo pipefail

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx)
command -v varnishd >/dev/null || need+=(varnish)
ls /usr/lib/*/varnish/vmods/libvmod_bodyaccess.so >/dev/null 2>&1 || need+=(varnish-modules)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
command -v taskset >/dev/null || need+=(util-linux)
command -v node >/dev/null || need+=(nodejs)
# Valgrind (optional): v8host/instructions.py counts instructions with it.
command -v valgrind >/dev/null || need+=(valgrind)

# perf(1) (optional): where the proxy's CPU time goes, by binary.
command -v perf >/dev/null || need+=(linux-perf)

if ((${#need[@]})); then
  echo "bench: installing ${need[*]}"
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y --no-install-recommends "${need[@]}" >/dev/null ||
    { [[ " ${need[*]} " == *" linux-perf "* ]] && $SUDO apt-get install -y --no-install-recommends "${need[@]/linux-perf/}" >/dev/null; }
fi

# The packages may start their services; the benchmark needs the CPUs to
# itself.
for svc in nginx varnish varnishncsa; do
  if command -v service >/dev/null && service "$svc" status >/dev/null 2>&1; then
    service "$svc" stop >/dev/null 2>&1 || true
  fi
done

echo "bench: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(nginx -v 2>&1), $(varnishd -V 2>&1 | head -1), $(gnuplot --version)"
