package main

import (
	"math"
	"strings"
	"testing"
)

// A report as perf report --stdio --sort dso prints it, with wasm run on
// two threads (Envoy's main thread and a worker).
const perfSample = `# To display the perf.data header info, please use --header/--header-only options.
#
# Samples: 3K of event 'cpu-clock:pppH'
# Event count (approx.): 1000000000
#
# Overhead  Shared Object
# ........  ..................
#
    53.96%  envoy
    34.99%  [kernel.kallsyms]
     9.02%  [JIT] tid 15264
     0.60%  [JIT] tid 15260
     1.43%  libc.so.6
`

func TestPerfReportAddsEveryJITRegion(t *testing.T) {
	p := parsePerfReport(perfSample)
	if !p.OK || math.Abs(p.JIT-0.0962) > 1e-9 {
		t.Fatalf("JIT share %v (ok %v), want 0.0962: both threads' V8-generated code", p.JIT, p.OK)
	}
	if strings.Contains(p.Text, "0.60%") {
		t.Errorf("text lists a binary under 1%%: %s", p.Text)
	}
	want := "53.96% envoy, 34.99% [kernel.kallsyms], 9.02% [JIT] tid 15264 (V8-generated code: the wasm filter), 1.43% libc.so.6"
	if p.Text != want {
		t.Errorf("text\n%s\nwant\n%s", p.Text, want)
	}
}

func TestPerfReportWithoutWasm(t *testing.T) {
	p := parsePerfReport("# Overhead  Shared Object\n    61.84%  envoy\n    38.16%  [kernel.kallsyms]\n")
	if !p.OK || p.JIT != 0 {
		t.Fatalf("JIT share %v (ok %v), want 0", p.JIT, p.OK)
	}
}

// The rounds' CPU in V8-generated code is a series only if perf sampled
// every round (a round without it would shift the median).
func TestJITSeriesNeedsEveryRound(t *testing.T) {
	s := &frSeries{CPU: []float64{300, 310, 320}, JIT: []float64{30, 31}}
	if _, ok := s.jit(); ok {
		t.Fatal("a series with a round missing its perf samples was used")
	}
	s.JIT = append(s.JIT, 32)
	j, ok := s.jit()
	if !ok || j.Med() != 31 {
		t.Fatalf("jit series %v %v, want median 31", j, ok)
	}
}

// A report without a table (perf found no samples) is no measurement: a
// round must not count it as 0 µs of V8-generated code.
func TestPerfReportWithoutSamples(t *testing.T) {
	if p := parsePerfReport("# Total Lost Samples: 0\n#\nError:\nThe perf.data data has no samples!\n"); p.OK {
		t.Fatalf("an empty report counted as a measurement: %+v", p)
	}
}

// A round of modelcache or of the floor that perf missed drops the row in
// V8-generated code, and the results say so rather than nothing.
func TestJITRowMissingIsNoted(t *testing.T) {
	r := &run{s: settings{Perf: true}}
	f := &frSeries{CPU: []float64{300, 310, 320}, JIT: []float64{30, 31, 32}}
	m := &frSeries{CPU: []float64{290, 300, 310}, JIT: []float64{20, 21}}
	r.addJITAbove("bypass: modelcache above its floor", "at 1000 rps", f, m)
	if len(r.rows) != 0 || len(r.notes) != 1 || !strings.Contains(r.notes[0], "2 of 3 of the floor") {
		t.Fatalf("rows %v, notes %q", r.rows, r.notes)
	}
	off := &run{s: settings{Perf: false}} // without perf there is no row to miss
	off.addJITAbove("bypass: modelcache above its floor", "at 1000 rps", f, &frSeries{CPU: m.CPU})
	if len(off.rows) != 0 || len(off.notes) != 0 {
		t.Fatalf("without perf: rows %v, notes %q", off.rows, off.notes)
	}
	m.JIT = append(m.JIT, 22)
	r.notes = nil
	r.addJITAbove("bypass: modelcache above its floor", "at 1000 rps", f, m)
	if len(r.rows) != 1 || len(r.notes) != 0 || !strings.HasPrefix(r.rows[0].Value, "+10.0 µs") {
		t.Fatalf("rows %v, notes %q", r.rows, r.notes)
	}
}

// The report keeps Envoy's and the kernel's shares beside the JIT's; the
// C library's is the rest.
func TestPerfReportKeepsEnvoyAndKernel(t *testing.T) {
	p := parsePerfReport(perfSample)
	if math.Abs(p.Envoy-0.5396) > 1e-9 || math.Abs(p.Kernel-0.3499) > 1e-9 {
		t.Fatalf("Envoy %v, kernel %v; want 0.5396 and 0.3499", p.Envoy, p.Kernel)
	}
}

// The distance outside V8-generated code is split by binary, round by
// round, and the rest is what neither perf share nor the JIT holds.
func TestOutsideJITRowSplitsByBinary(t *testing.T) {
	r := &run{s: settings{Perf: true}}
	mc := &frSeries{CPU: []float64{260, 270, 280}, JIT: []float64{48, 50, 52},
		Envoy: []float64{125, 120, 130}, Kernel: []float64{80, 85, 90}}
	floor := &frSeries{CPU: []float64{210, 215, 220}, JIT: []float64{24, 25, 26},
		Envoy: []float64{110, 106, 118}, Kernel: []float64{70, 80, 70}}
	r.addOutsideJITAbove("uncacheable: modelcache above its floor", "at 1000 rps", mc, floor)
	if len(r.rows) != 1 {
		t.Fatalf("rows %v", r.rows)
	}
	// Envoy's binary: +15, +14, +12; kernel: +10, +5, +20; the rest
	// (CPU - JIT - Envoy - kernel): 7 - 6 = +1, 15 - 4 = +11, 8 - 6 = +2.
	want := "Envoy's binary +14.0 µs (rounds +12.0…+15.0); kernel +10.0 µs (rounds +5.0…+20.0); C library and vDSO +2.0 µs (rounds +1.0…+11.0)"
	if r.rows[0].Value != want {
		t.Errorf("value\n%s\nwant\n%s", r.rows[0].Value, want)
	}
	if !strings.Contains(r.rows[0].Baselines, "floor Envoy's binary 110.0, kernel 70.0, C library and vDSO 6.0") {
		t.Errorf("baselines %s", r.rows[0].Baselines)
	}
	// A round without its split (an older series, perf missing) gives no
	// row rather than one shifted by a round.
	r.rows = nil
	mc.Kernel = mc.Kernel[:2]
	r.addOutsideJITAbove("uncacheable: modelcache above its floor", "at 1000 rps", mc, floor)
	if len(r.rows) != 0 {
		t.Fatalf("a partial series gave rows %v", r.rows)
	}
}
