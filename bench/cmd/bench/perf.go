package main

import (
	"bytes"
	"cmp"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// When perf(1) is installed (and BENCH_PERF is not 0) the runner samples
// the proxy with perf(1) during the
// first repetition of the 1 KiB c=16 points (S1, S2, S4's other-route case)
// and every round of S4's fixed-rate CPU (fixedrate.go), and reports where
// its CPU time went by binary: Envoy's own code (C++,
// V8's runtime and the proxy-wasm host functions), code V8 generated (the
// filter's wasm, as anonymous JIT memory), the C library and the kernel.
// Envoy's release binary is stripped, so the split stops at that level.

// defaultPerfHz is perf's sampling frequency unless BENCH_PERF_HZ sets
// another: enough for the split by binary, cheap enough to leave every
// row's CPU nearly as it is. A split of Envoy's binary by function
// (bench/perf_functions.py) wants ten times as many samples.
const defaultPerfHz = 999

func (r *run) wantPerf(sysName, label string, conns int) bool {
	return r.s.Perf && conns == 16 && (label == "hit 1k" || label == "pass other-route")
}

// perfReport is where a sampled process's CPU time went, by binary.
type perfReport struct {
	// Text lists the binaries with their share ("59.18% envoy, …"), or
	// says why there is no report.
	Text string
	// JIT is the share (0–1) of the samples in code V8 generated: the wasm
	// filter and V8's wrappers around its calls. OK is false if perf
	// failed (then JIT is 0 and says nothing).
	JIT float64
	// Envoy and Kernel are the shares (0–1) in Envoy's own binary (its
	// C++, V8's runtime, the host functions) and in the kernel; the rest
	// (the C library, the vDSO) is 1 - JIT - Envoy - Kernel.
	Envoy, Kernel float64
	OK            bool
}

// perfRecord samples the process group of pid for d in the background;
// wait returns the report.
func (r *run) perfRecord(name string, pid int, d time.Duration) (wait func() perfReport) {
	out := filepath.Join(r.s.WorkDir, "perf-"+strings.NewReplacer(" ", "-", "|", "-").Replace(name)+".data")
	pids := strings.Join(groupPids(pid), ",") // nginx's workers, Varnish's child
	if pids == "" {
		pids = strconv.Itoa(pid)
	}
	cmd := exec.CommandContext(r.ctx, "perf", "record", "-q", "-F", strconv.Itoa(cmp.Or(r.s.PerfHz, defaultPerfHz)), "-p", pids, "-o", out,
		"--", "sleep", strconv.FormatFloat(d.Seconds(), 'f', 1, 64))
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		return func() perfReport { return perfReport{Text: "perf: " + err.Error()} }
	}
	return func() perfReport {
		if err := cmd.Wait(); err != nil {
			return perfReport{Text: fmt.Sprintf("perf record: %v %s", err, oneLine(errb.String()))}
		}
		rep, err := exec.Command("perf", "report", "-i", out, "--stdio", "--sort", "dso").CombinedOutput()
		if err != nil {
			return perfReport{Text: fmt.Sprintf("perf report: %v %s", err, oneLine(string(rep)))}
		}
		return parsePerfReport(string(rep))
	}
}

// parsePerfReport reads perf report --sort dso's table: Text lists the
// binaries of at least 1% of the samples, JIT adds up every V8-generated
// region (one per thread that ran wasm).
func parsePerfReport(rep string) perfReport {
	var out perfReport
	var parts []string
	for _, line := range strings.Split(rep, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasSuffix(f[0], "%") || strings.HasPrefix(line, "#") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		out.OK = true // at least one row: a report without any says nothing
		dso := strings.Join(f[1:], " ")
		switch dso {
		case "envoy":
			out.Envoy += pct / 100
		case "[kernel.kallsyms]":
			out.Kernel += pct / 100
		}
		if strings.HasPrefix(dso, "[JIT]") || strings.HasPrefix(dso, "[anon") || dso == "[unknown]" || strings.HasPrefix(dso, "//anon") {
			out.JIT += pct / 100
			dso += " (V8-generated code: the wasm filter)"
		}
		if pct >= 1 {
			parts = append(parts, f[0]+" "+dso)
		}
	}
	out.Text = strings.Join(parts, ", ")
	return out
}
