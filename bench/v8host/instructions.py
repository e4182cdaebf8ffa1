#!/usr/bin/env python3
"""Instructions per request of a module's own code under V8, counted.

Runs hitpath.mjs under Valgrind's callgrind (which counts every
instruction the process executes, JIT-generated code included) with V8
writing a perf map of the code it generates, then attributes each counted
instruction to the function whose code holds it. The count barely moves
with the machine's load (within 30 instructions in 65,000 on an idle
machine; about 170 beside other work, as the harness's clock is the real
one and lease expiry follows a run's speed), where CPU time moves ±15 %
here between runs, so it can tell apart changes of a few percent. It is
a guide to where work went, not a measure of time (instructions differ
in cost, and in Envoy a request runs cold). For the cold cost it also
counts the 64-byte lines of the module's code a request runs: in S4 each
costs 20-30 ns (BENCHMARKS.md, item 22).

    python3 bench/v8host/instructions.py [--mode miss-nostore] [--top 30] \\
        build/modelcache.wasm [other.wasm]

With two modules (run side by side, one per CPU) it prints both and the
functions whose counts differ most. Each run takes a few minutes: Valgrind
runs Node.js about 50 times slower. Not part of `make bench`.

Per request means over every exchange hitpath.mjs ran (its 20,000 warm-up
exchanges included, all in TurboFan's code with --no-liftoff); the
module's start and configuration, a few instructions per exchange once
spread, are in it too.
"""
import argparse
import bisect
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
# V8 names the code of a wasm function "JS:<name>-<index>-turbofan" in its
# perf map; JavaScript functions carry their script's URL, builtins a
# "Builtin:" prefix.
WASM = re.compile(r'^JS:([^*~].*)-\d+-(turbofan|liftoff)$')


def run(wasm, mode, iterations, req_file, workdir, tag):
    out = os.path.join(workdir, tag + '.callgrind')
    # hitpath.mjs calls v8.getHeapStatistics() once, where the counts of
    # its miss-nostore-full mode start: after the table's fill.
    cmd = ['valgrind', '--tool=callgrind', '--dump-instr=yes', '--callgrind-out-file=' + out,
           '--zero-before=*UpdateHeapStatisticsBuffer*',
           '--smc-check=all-non-file', 'node', '--perf-basic-prof', '--no-liftoff', '--single-threaded',
           # Envoy's V8 (14.6) reads a module's branch hints by default,
           # Node.js 20's (11.3) only with this flag.
           '--experimental-wasm-branch-hinting',
           os.path.join(HERE, 'hitpath.mjs'), wasm, str(iterations), '1', mode]
    env = dict(os.environ)
    env.pop('REQ_FILE', None)
    if req_file:
        env['REQ_FILE'] = os.path.abspath(req_file)
    # Run in the temporary directory: V8 leaves its log files there.
    p = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p, out


def exchanges(log):
    m = re.search(r'exchanges run: (\d+)', log)
    if not m:
        sys.exit('hitpath.mjs did not report its exchanges:\n' + log[-2000:])
    return int(m.group(1))


def load_map(path):
    syms = []
    with open(path) as f:
        for line in f:
            a, size, name = line.rstrip('\n').split(' ', 2)
            syms.append((int(a, 16), int(size, 16), name))
    syms.sort()
    return [s[0] for s in syms], syms


def costs(path):
    """Instructions per address (self cost: a call's inclusive line is skipped)."""
    cost = collections.Counter()
    last, skip = 0, False
    with open(path) as f:
        for line in f:
            if line.startswith('calls='):
                skip = True
                continue
            if not line or line[0] not in '0123456789+-*':
                continue
            parts = line.split()
            p = parts[0]
            addr = last if p == '*' else (last + int(p, 0) if p[0] in '+-' else int(p, 0))
            last = addr
            if skip:
                skip = False
                continue
            if len(parts) > 2:
                cost[addr] += int(parts[2])
    return cost


LINE = 64  # bytes in a cache line of the CPU's instruction cache
PAGE = 4096  # bytes in a page of memory (an entry of the TLB)


def attribute(cost, mapfile, n):
    """Instructions per request by function, and the own code's cache lines
    touched per request by function.

    A line counts as touched per request when one of its instructions ran
    at least n/2 times (callgrind's count at an address is how often the
    instruction there ran): code of the start, the warm-up's first
    requests, or of rare paths (a tick, a collection) does not count. In
    Envoy a request arrives with the caches cold, and its cost follows the
    lines it brings in, 20-30 ns each on the bench machine (BENCHMARKS.md,
    items 17 and 22)."""
    if not os.path.exists(mapfile):
        sys.exit(f'no perf map {mapfile}: is node a wrapper script? (the map is named after its pid)')
    starts, syms = load_map(mapfile)
    per = collections.Counter()
    hot = {}  # own code's line -> its function, for lines run on most requests
    ran = []  # own code's instructions run on most requests, by address
    for addr, v in cost.items():
        i = bisect.bisect_right(starts, addr) - 1
        name = syms[i][2] if i >= 0 and addr < syms[i][0] + syms[i][1] else None
        if name is None:
            continue  # Node.js and V8 themselves, startup included
        m = WASM.match(name)
        key = ('wasm', m.group(1)) if m else (('builtin', name) if name.startswith('Builtin:') else ('js', name))
        per[key] += v / n
        if m and v >= n / 2:
            hot[addr // LINE] = m.group(1)
            ran.append(addr)
    lines = collections.Counter(hot.values())
    lines.pages = len({l * LINE // PAGE for l in hot})
    lines.ran = bytes_run(ran)
    return per, lines


def bytes_run(addrs):
    """Bytes of machine code run, from the addresses of the instructions
    that ran: each instruction's size is the distance to the next one that
    ran, when that is at most 15 bytes (x86's longest instruction); the last
    one of a run, a jump or a branch, counts 4 bytes. Against the lines
    touched it says how densely the code that runs is laid out."""
    addrs = sorted(addrs)
    total = 0
    for a, b in zip(addrs, addrs[1:] + [None]):
        d = b - a if b is not None else 16
        total += d if d <= 15 else 4
    return total


def totals(per):
    t = collections.Counter()
    for (kind, _), v in per.items():
        t[kind] += v
    return t


def harness_modes():
    """hitpath.mjs's modes, read from its list (one list for both): a mode
    it does not know is refused here, before a run under Valgrind starts."""
    with open(os.path.join(HERE, 'hitpath.mjs')) as f:
        m = re.search(r"^const modes = \[([^\]]*)\];$", f.read(), re.M)
    if not m:
        sys.exit('hitpath.mjs: no "const modes = [...];" line to read the modes from')
    return re.findall(r"'([^']+)'", m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--mode', default='miss-nostore', choices=harness_modes())
    ap.add_argument('--iterations', type=int, default=3000)
    ap.add_argument('--top', type=int, default=30)
    ap.add_argument('--by-lines', action='store_true', help='with one module, list its functions by lines touched')
    ap.add_argument('--req-file', help="the chat request's body (hitpath.mjs's REQ_FILE; "
                    "default: its built-in one-line question; S4 sends bench/payloads/request.json)")
    ap.add_argument('modules', nargs='+')
    a = ap.parse_args()
    if len(a.modules) > 2:
        sys.exit('one or two modules')
    for tool in ('valgrind', 'node'):
        if not shutil.which(tool):
            sys.exit(f'{tool} not found (bench/install.sh installs it)')
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        pers = []
        try:
            for i, w in enumerate(a.modules):
                runs.append(run(os.path.abspath(w), a.mode, a.iterations, a.req_file, tmp, 'm%d' % i))
            for (p, out), w in zip(runs, a.modules):
                log = p.communicate()[0]
                if p.returncode != 0:
                    sys.exit(f'{w}: exit {p.returncode}\n{log[-2000:]}')
                pers.append(attribute(costs(out), f'/tmp/perf-{p.pid}.map', exchanges(log)))
        finally:
            # A failed run stops the other one; every run's perf map goes.
            for p, _ in runs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                mapfile = f'/tmp/perf-{p.pid}.map'
                if os.path.exists(mapfile):
                    os.remove(mapfile)
    body = a.req_file or "hitpath.mjs's built-in request"
    print(f'{a.mode}: instructions per request under V8 (callgrind), the warm-up included; body: {body}')
    for w, (per, lines) in zip(a.modules, pers):
        t = totals(per)
        print(f"  {w}: own code (wasm) {t['wasm']:.0f}, V8 builtins {t['builtin']:.0f}, harness JavaScript {t['js']:.0f}")
        print(f"  {w}: own code touched per request {sum(lines.values())} lines of {LINE} bytes "
              f"({sum(lines.values()) * LINE / 1000:.1f} KB) in {len(lines)} functions, {lines.pages} pages of {PAGE} bytes; "
              f"{lines.ran / 1000:.1f} KB of it run ({lines.ran / (sum(lines.values()) * LINE or 1):.2f} of the lines' bytes)")
    if len(pers) == 1:
        per, lines = pers[0]
        own = [(v, name) for (kind, name), v in per.items() if kind == 'wasm']
        if a.by_lines:
            own.sort(key=lambda x: (-lines[x[1]], -x[0]))
        else:
            own.sort(key=lambda x: -x[0])
        print('  instructions, lines touched, function:')
        for v, name in own[:a.top]:
            print(f'  {v:9.0f} {lines[name]:5d}  {name}')
        return
    (x, lx), (y, ly) = pers
    wx, wy = totals(x)['wasm'], totals(y)['wasm']
    print(f'  own code: {wx:.0f} against {wy:.0f} ({wx - wy:+.0f}, {wx / wy:.3f}x)')
    names = list(set(lx) | set(ly))
    names.sort(key=lambda k: -abs(lx[k] - ly[k]))
    print('  lines touched that differ most (first - second, first, second):')
    for k in names[:a.top]:
        if lx[k] != ly[k]:
            print(f'  {lx[k] - ly[k]:+9d} {lx[k]:9d} {ly[k]:9d}  {k}')
    keys = list(set(x) | set(y))
    keys.sort(key=lambda k: -abs(x[k] - y[k]))
    print(f'  functions that differ most (first - second, first, second; '
          f'"builtin" and "js" are V8\'s and the harness\'s):')
    for k in keys[:a.top]:
        kind = '' if k[0] == 'wasm' else k[0] + ' '
        print(f'  {x[k] - y[k]:+9.0f} {x[k]:9.0f} {y[k]:9.0f}  {kind}{k[1]}')


if __name__ == '__main__':
    main()
