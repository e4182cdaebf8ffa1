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
