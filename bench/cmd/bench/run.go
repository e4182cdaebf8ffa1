package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"time"
)

// run is one `make bench`: its settings, the origin, the proxies it started,
// the measurements taken so far (memoised, so a scenario that compares with
// another's numbers reuses them or measures them itself under -only) and
// the rows of the table.
type run struct {
	ctx     context.Context
	s       settings
	origin  *origin
	systems map[string]*system
	memo    map[string]*series
	rows    []row
	notes   []string // printed under the table
	charts  []chart
	data    map[string]any // raw results, written as JSON beside the charts
	env     envInfo
	started time.Time
}

func newRun(ctx context.Context, s settings) (*run, error) {
	work, err := os.MkdirTemp("", "modelcache-bench-")
	if err != nil {
		return nil, err
	}
	s.WorkDir = work
	r := &run{ctx: ctx, s: s, systems: map[string]*system{}, memo: map[string]*series{},
		data: map[string]any{}, started: time.Now()}
	return r, nil
}

// main runs every selected scenario in order and reports. A scenario that
// fails is reported as such; the others still run.
func (r *run) main() int {
	defer func() {
		r.stopAll()
		if r.origin != nil {
			r.origin.Close()
		}
		if !r.s.KeepWork {
			os.RemoveAll(r.s.WorkDir)
		} else {
			r.logf("scratch directory kept: %s", r.s.WorkDir)
		}
	}()
	if err := r.preflight(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	failed := 0
	for _, sc := range scenarios {
		if r.s.Only != nil && !r.s.Only[sc.ID] {
			continue
		}
		if r.ctx.Err() != nil {
			break
		}
		if sc.Run == nil {
			r.add(row{Scenario: sc.ID, Metric: sc.Title, Value: "not landed", Met: "—", Target: sc.Target})
			continue
		}
		r.logf("==== %s: %s", sc.ID, sc.Title)
		t0 := time.Now()
		err := r.protect(sc)
		r.stopAll()
		if err != nil {
			failed++
			r.logf("%s FAILED: %v", sc.ID, err)
			r.add(row{Scenario: sc.ID, Metric: sc.Title, Value: "FAILED: " + oneLine(err.Error()), Met: "—"})
		}
		r.logf("%s done in %s", sc.ID, time.Since(t0).Round(time.Second))
	}
	if r.ctx.Err() != nil {
		r.logf("interrupted: no results written")
		return 130
	}
	if err := r.report(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: report:", err)
		return 1
	}
	if failed > 0 {
		fmt.Printf("bench: %d scenario(s) failed (see the table)\n", failed)
		return 1
	}
	return 0
}

func (r *run) protect(sc scenario) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return sc.Run(r)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// preflight checks the tools, starts the origin and records the machine.
func (r *run) preflight() error {
	for _, tool := range []string{"taskset", "wrk"} {
		if _, err := lookPath(tool); err != nil {
			return fmt.Errorf("%s not found (make bench installs it: bench/install.sh)", tool)
		}
	}
	if _, err := os.Stat(r.s.Wasm); err != nil {
		return fmt.Errorf("%s missing: run make build", r.s.Wasm)
	}
	if err := writePayloads(filepath.Join(r.s.Root, "bench", "payloads")); err != nil {
		return err
	}
	o, err := startOrigin(filepath.Join(r.s.Root, "bench", "payloads"))
	if err != nil {
		return err
	}
	r.origin = o
	r.env = collectEnv(r)
	r.logf("machine: %s, %d CPUs, kernel %s", r.env.CPU, r.env.NCPU, r.env.Kernel)
	r.logf("proxy under test on CPU %s; wrk, origin and this runner on CPU 1; warm-up %s, %d × %s per point",
		r.s.ProxyCPUs, r.s.Warmup, r.s.Reps, r.s.Duration)
	return nil
}

func (r *run) logf(format string, args ...any) {
	fmt.Printf("%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (r *run) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// row is one line of the results table.
type row struct {
	Scenario  string
	Metric    string
	Value     string // modelcache
	Baselines string
	Ratio     string
	Target    string
	Met       string // yes / NO / — (informational)
}

func (r *run) add(rw row) {
	if rw.Met == "" {
		rw.Met = "—"
	}
	r.rows = append(r.rows, rw)
}

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

// system returns a running proxy by name, starting it on first use. The
// systems are defined in systems.go.
func (r *run) system(name string) (*system, error) {
	if s := r.systems[name]; s != nil && s.alive() {
		return s, nil
	}
	def, ok := systemDefs[name]
	if !ok {
		return nil, fmt.Errorf("unknown system %q", name)
	}
	s, err := def(r)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	r.systems[name] = s
	return s, nil
}

// stopAll stops every proxy (after each scenario: an idle proxy's timers
// must not disturb the next one).
func (r *run) stopAll() {
	names := make([]string, 0, len(r.systems))
	for n := range r.systems {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r.systems[n].stop()
		delete(r.systems, n)
	}
}

func (r *run) sleep(d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
}

// cpuBusy is the machine's CPU use (0..1, all CPUs) over d, from /proc/stat.
func cpuBusy(d time.Duration) float64 {
	read := func() (busy, total uint64) {
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			return 0, 0
		}
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		for i, s := range f[1:] {
			var v uint64
			fmt.Sscan(s, &v)
			total += v
			if i != 3 && i != 4 { // idle, iowait
				busy += v
			}
		}
		return
	}
	b0, t0 := read()
	time.Sleep(d)
	b1, t1 := read()
	if t1 <= t0 {
		return 0
	}
	return float64(b1-b0) / float64(t1-t0)
}

// waitQuiet waits (up to 2 minutes) until nothing else uses the CPUs, so
// a measurement is not shared with another job on the machine; if the
// machine stays busy it measures anyway and says so in the notes.
func (r *run) waitQuiet(what string) {
	deadline := time.Now().Add(2 * time.Minute)
	warned := false
	for {
		busy := cpuBusy(300 * time.Millisecond)
		if busy < 0.08 {
			return
		}
		if time.Now().After(deadline) || r.ctx.Err() != nil {
			r.note("the machine was %.0f%% busy with other work before %s (waited 2 min): that point may be low", 100*busy, what)
			return
		}
		if !warned {
			r.logf("  machine %.0f%% busy with other work; waiting before %s", 100*busy, what)
			warned = true
		}
		time.Sleep(2 * time.Second)
	}
}
