package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// S12: cachecore's benchmarks (go test -bench) natively, and the same
// benchmarks compiled for wasip1 under V8 (Node.js's node:wasi, TurboFan
// only as in Envoy: perf-anchors B8) and under wazero (the runtime of the
// project's in-process tests). All pinned to the proxy CPU.

type microResult struct {
	Name    string             `json:"name"`
	NsOp    map[string]float64 `json:"ns_op"` // runtime → median ns/op
	BOp     float64            `json:"b_op"`
	Allocs  float64            `json:"allocs_op"`
	Missing []string           `json:"missing,omitempty"`
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+([\d.]+) ns/op(?:.*?\s([\d.]+) B/op\s+([\d.]+) allocs/op)?`)

// parseBench returns name → ns/op samples (and B/op, allocs/op).
func parseBench(out string) (map[string][]float64, map[string][2]float64) {
	ns := map[string][]float64{}
	mem := map[string][2]float64{}
	for _, line := range strings.Split(out, "\n") {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[3], 64)
		ns[m[1]] = append(ns[m[1]], v)
		if m[4] != "" {
			b, _ := strconv.ParseFloat(m[4], 64)
			a, _ := strconv.ParseFloat(m[5], 64)
			mem[m[1]] = [2]float64{b, a}
		}
	}
	return ns, mem
}

func runS12(r *run) error {
	native := filepath.Join(r.s.WorkDir, "cachecore.test")
	wasm := filepath.Join(r.s.WorkDir, "cachecore.test.wasm")
	build := func(out string, env ...string) error {
		cmd := exec.CommandContext(r.ctx, "go", "test", "-c", "-o", out, "./cachecore")
		cmd.Dir = r.s.Root
		cmd.Env = append(os.Environ(), env...)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go test -c %v: %v\n%s", env, err, b)
		}
		return nil
	}
	if err := build(native); err != nil {
		return err
	}
	if err := build(wasm, "GOOS=wasip1", "GOARCH=wasm"); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"-test.run", "^$", "-test.bench", ".", "-test.benchmem",
		"-test.benchtime", r.s.Benchtime, "-test.count", strconv.Itoa(r.s.BenchCnt)}
	runtimes := []struct {
		name string
		cmd  []string
	}{
		{"native", append([]string{native}, args...)},
		{"V8", append([]string{"node", "--no-liftoff", filepath.Join(r.s.Root, "bench", "wasi", "run.mjs"), wasm}, args...)},
		{"wazero", append([]string{self, "wazero-exec", wasm}, args...)},
	}
	results := map[string]*microResult{}
	var names []string
	for _, rt := range runtimes {
		cmd := exec.CommandContext(r.ctx, "taskset", append([]string{"-c", r.s.ProxyCPUs}, rt.cmd...)...)
		cmd.Dir = filepath.Join(r.s.Root, "cachecore")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			r.note("S12 %s: %v: %s", rt.name, err, oneLine(tail(out.String(), 400)))
		}
		ns, mem := parseBench(out.String())
		if len(ns) == 0 {
			r.note("S12 %s: no benchmark results", rt.name)
		}
		for name, v := range ns {
			m := results[name]
			if m == nil {
				m = &microResult{Name: name, NsOp: map[string]float64{}}
				results[name] = m
				names = append(names, name)
			}
			m.NsOp[rt.name] = median(v)
			if rt.name == "native" {
				m.BOp, m.Allocs = mem[name][0], mem[name][1]
			}
		}
		r.logf("  %s: %d benchmarks", rt.name, len(ns))
	}
	sort.Strings(names)
	var list []*microResult
	for _, name := range names {
		m := results[name]
		list = append(list, m)
		nat := m.NsOp["native"]
		var base []string
		for _, rt := range []string{"V8", "wazero"} {
			if v, ok := m.NsOp[rt]; ok {
				base = append(base, fmt.Sprintf("%s %s (%s)", rt, nsfmt(v), ratio(v, nat)))
			} else {
				base = append(base, rt+" —")
			}
		}
		r.add(row{Scenario: "S12", Metric: strings.TrimPrefix(name, "Benchmark") + " ns/op (native; allocs/op)",
			Value: fmt.Sprintf("%s; %.0f allocs, %.0f B", nsfmt(nat), m.Allocs, m.BOp), Baselines: strings.Join(base, "; ")})
	}
	r.data["micro"] = list
	return nil
}

func nsfmt(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// wazeroExec runs a wasip1 command module under wazero with real clocks
// (wazero defaults to fake ones, which would make every benchmark "0 ns"):
// bench wazero-exec file.wasm [args…].
func wazeroExec(args []string) int {
	if len(args) < 1 {
		fmt.Fprintln(os.Stderr, "usage: bench wazero-exec file.wasm [args…]")
		return 2
	}
	ctx := context.Background()
	wasm, err := os.ReadFile(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	wd, _ := os.Getwd()
	cfg := wazero.NewModuleConfig().
		WithArgs(args...).
		WithStdout(os.Stdout).WithStderr(os.Stderr).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithRandSource(rand.Reader).
		WithEnv("PWD", wd).
		WithFSConfig(wazero.NewFSConfig().WithDirMount("/", "/"))
	_, err = rt.InstantiateWithConfig(ctx, wasm, cfg)
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return int(exit.ExitCode())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
