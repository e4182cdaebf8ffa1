#!/usr/bin/env python3
"""Split two systems' proxy CPU in S4's fixed-rate rounds by function.

The runner's perf report splits a request's CPU by binary only: Envoy's
release binary is stripped. Its unwind table (.eh_frame_hdr) still gives
every function's start, so the samples in Envoy's binary can be summed by
function without names. This compares two systems of one run, every round
of each, in µs per request, and says how concentrated the difference is:
one call or path in Envoy shows as a few functions; a cost spread over
Envoy's whole request path shows as many small ones.

    BENCH_PERF_HZ=9999 build/bench -only S4B -keep ...   # keeps its scratch dir
    python3 bench/perf_functions.py --hz 9999 <scratch dir> \\
        filter-pass-uncacheable floor-miss-served-pass-uncacheable

The systems are named as in the scratch directory's perf-fr-<name>-<round>.data.
"""

import argparse
import bisect
import collections
import glob
import os
import re
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def envoy_binary():
    found = glob.glob(os.path.join(ROOT, ".venv/lib/python*/site-packages/envoy/_bin/envoy"))
    return found[0] if found else None


def sections(binary):
    """name -> (address, file offset, size) of the binary's sections."""
    out = subprocess.run(["readelf", "-S", "-W", binary], capture_output=True, text=True, check=True).stdout
    secs = {}
    for line in out.splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if m:
            secs[m.group(1)] = (int(m.group(2), 16), int(m.group(3), 16), int(m.group(4), 16))
    return secs


def function_starts(binary, secs):
    """The sorted start addresses of the binary's functions, from the
    binary search table of .eh_frame_hdr (encoded datarel sdata4)."""
    addr, off, size = secs[".eh_frame_hdr"]
    with open(binary, "rb") as f:
        f.seek(off)
        hdr = f.read(size)
    if hdr[0] != 1 or hdr[2] != 0x03 or hdr[3] != 0x3B:
        sys.exit("perf_functions: .eh_frame_hdr's table is not in the expected encoding")
    count = struct.unpack_from("<I", hdr, 8)[0]
    return sorted(addr + struct.unpack_from("<i", hdr, 12 + 8 * i)[0] for i in range(count))


REPORT_LINE = re.compile(r"\s*[\d.]+%\s+(\d+)\s+(\[JIT\] tid \d+|\S+)\s+\[(.)\]\s+(.*)$")


def samples(path, starts, malloc):
    """Samples of one perf file by place: a function of Envoy's binary,
    V8-generated code (one group), or a named symbol elsewhere."""
    out = subprocess.run(["perf", "report", "-i", path, "--stdio", "--sort", "dso,sym", "-n"],
                         capture_output=True, text=True, check=True).stdout
    by = collections.Counter()
    for line in out.splitlines():
        m = REPORT_LINE.match(line)
        if not m or line.startswith("#"):
            continue
        n, dso, sym = int(m.group(1)), m.group(2), m.group(4).strip()
        if dso.startswith("[JIT]") or dso.startswith("//anon") or dso.startswith("[anon") or dso == "[unknown]":
            by["V8-generated code"] += n
        elif dso == "envoy" and sym.startswith("0x"):
            a = int(sym, 16)
            i = bisect.bisect_right(starts, a) - 1
            where = "tcmalloc" if malloc[0] <= a < malloc[1] else "envoy"
            by["%s fn@%x" % (where, starts[i] if i >= 0 else a)] += n
        else:
            by[dso + " " + sym] += n
    return by


def group(place):
    for prefix, name in (("V8-generated", "V8-generated code"), ("[kernel", "kernel"),
                         ("tcmalloc", "Envoy's binary"), ("envoy", "Envoy's binary")):
        if place.startswith(prefix):
            return name
    return "C library, vDSO"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", help="the runner's scratch directory (build/bench -keep)")
    ap.add_argument("a", help="system A, as in perf-fr-<A>-<round>.data")
    ap.add_argument("b", help="system B")
    ap.add_argument("--hz", type=int, default=999, help="the run's BENCH_PERF_HZ")
    ap.add_argument("--requests", type=int, default=4000, help="requests per round (S4: 4 s at 1,000 rps)")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--envoy", default=envoy_binary(), help="Envoy's binary (default: the .venv's)")
    args = ap.parse_args()
    if not args.envoy:
        sys.exit("perf_functions: no Envoy binary (make envoy, or --envoy)")
    secs = sections(args.envoy)
    starts = function_starts(args.envoy, secs)
    m = secs.get("google_malloc", (0, 0, 0))
    malloc = (m[0], m[0] + m[2])
    us = 1e6 / args.hz / args.requests  # µs of CPU per request that one sample stands for

    def system(name):
        files = sorted(glob.glob(os.path.join(args.dir, "perf-fr-%s-[0-9]*.data" % name)))
        if not files:
            sys.exit("perf_functions: no perf-fr-%s-<round>.data in %s" % (name, args.dir))
        total = collections.Counter()
        for f in files:
            total.update(samples(f, starts, malloc))
        return {k: v * us / len(files) for k, v in total.items()}, len(files)

    a, na = system(args.a)
    b, nb = system(args.b)
    places = set(a) | set(b)
    diff = {k: a.get(k, 0) - b.get(k, 0) for k in places}
    print("%s (%d rounds) − %s (%d rounds), µs per request" % (args.a, na, args.b, nb))
    print("  all: %.1f − %.1f = %+.1f" % (sum(a.values()), sum(b.values()), sum(diff.values())))
    groups = collections.Counter()
    for k, d in diff.items():
        groups[group(k)] += d
    for g, d in sorted(groups.items(), key=lambda x: -x[1]):
        print("  %-18s %+.1f" % (g, d))
    envoy = sorted((d for k, d in diff.items() if group(k) == "Envoy's binary"), reverse=True)
    print("  Envoy's binary: %d functions sampled; the 10 / 50 that grew most %+.1f / %+.1f; "
          "%d moved by 0.3 µs or more" % (len(envoy), sum(envoy[:10]), sum(envoy[:50]),
                                          sum(1 for d in envoy if abs(d) >= 0.3)))
    print("  most grown:")
    for k in sorted(places, key=lambda k: -diff[k])[:args.top]:
        print("    %+6.2f  (%.2f − %.2f)  %s" % (diff[k], a.get(k, 0), b.get(k, 0), k))


if __name__ == "__main__":
    main()
