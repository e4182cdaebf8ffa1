#!/usr/bin/env python3
"""Two systems of one S4 or S4B row, round by round, split by binary.

A run's results.json keeps every fixed-rate round of every system: its
proxy CPU per request, and perf's split of it (V8-generated code, Envoy's
binary, the kernel). The report prints the rows' pairs it judges; this
prints any pair, each as the median of the per-round differences with
their range, so a control (the padded floor, the module's own copy) can be
read against anything in the same rounds.

    python3 bench/s4_pairs.py bench/results/2026-12-05-s4b-miss-1/results.json \\
        'pass uncacheable' filter floor-miss-served-padded [more pairs...]

With no pair after the row it lists the row's systems. Several runs'
files, comma-separated, pool their rounds (the same row in each).
"""
import json
import statistics
import sys

PARTS = [('all', 'cpu_us_per_request'), ("V8's code", 'jit_us_per_request'),
         ("Envoy's binary", 'envoy_us_per_request'), ('kernel', 'kernel_us_per_request')]


def main(argv):
    if len(argv) < 2 or len(argv) % 2:
        sys.exit(__doc__)
    row = argv[1]
    series = {}
    for path in argv[0].split(','):
        data = json.load(open(path))
        for k, v in data.items():
            if k.startswith('fixedrate/') and k.endswith('|' + row):
                pooled = series.setdefault(k[len('fixedrate/'):-len('|' + row)], {})
                for key, rounds in v.items():
                    if isinstance(rounds, list):  # per round; the rest are totals
                        pooled.setdefault(key, []).extend(rounds)
    if not series:
        sys.exit(f'{argv[0]}: no fixed-rate rounds for row {row!r}')
    if len(argv) == 2:
        print('\n'.join(sorted(series)))
        return
    for a, b in zip(argv[2::2], argv[3::2]):
        for s in (a, b):
            if s not in series:
                sys.exit(f'{s!r} did not run in row {row!r} (it has: {", ".join(sorted(series))})')
        out = []
        for name, key in PARTS:
            if key not in series[a] or key not in series[b]:
                continue
            d = [x - y for x, y in zip(series[a][key], series[b][key])]
            out.append(f'{name} {statistics.median(d):+.1f} ({min(d):+.1f}…{max(d):+.1f})')
            if key == 'cpu_us_per_request':
                total = d
        print(f'{a} − {b}, µs per request, median of {len(total)} rounds (range): ' + '; '.join(out) +
              f'; all: mean {statistics.mean(total):+.1f}, standard deviation {statistics.stdev(total):.1f} a round')


if __name__ == '__main__':
    main(sys.argv[1:])
