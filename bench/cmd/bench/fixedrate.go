package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Fixed-rate CPU measurement (S4). Under wrk's closed loop the proxy's CPU
// per request falls as its throughput rises (Envoy handles more requests
// per wake-up), so systems of different throughput are not compared at the
// same work per request, and the no-filter baseline alone moves by tens of
// µs between points of one run. Here every system of a comparison is
// offered the same rate by the open-loop generator (load.go), one request
// per wake-up at most rates a proxy core sustains, and the systems are
// measured in interleaved rounds (A B C, A B C, …) so that drift of the
// machine reaches all of them alike; each system's median over the rounds
// is reported with its range.

// frCell is one system under one workload.
type frCell struct {
	sys, label string
	wl         workload
}

func (c frCell) key() string { return c.sys + "|" + c.label }

// frSeries is one cell's rounds: proxy CPU per request (µs) per round.
type frSeries struct {
	CPU []float64 `json:"cpu_us_per_request"`
	// JIT is, per round, the part of CPU spent in code V8 generated (the
	// wasm filter and V8's wrappers around its calls), from perf's samples
	// of the same round; empty without perf.
	JIT []float64 `json:"jit_us_per_request,omitempty"`
	// Envoy and Kernel are, per round, the parts in Envoy's own binary and
	// in the kernel (perf, as JIT); the rest of CPU is the C library's
	// and the vDSO's.
	Envoy  []float64 `json:"envoy_us_per_request,omitempty"`
	Kernel []float64 `json:"kernel_us_per_request,omitempty"`
	Sent   int       `json:"sent"`
	Late   int64     `json:"late"`
	Failed int       `json:"failed"`
	Other  float64   `json:"max_other_cpu"`
}

func (s *frSeries) Med() float64 { return median(s.CPU) }

// jit is the series of CPU in V8-generated code, if perf sampled every
// round.
func (s *frSeries) jit() (*frSeries, bool) {
	if len(s.JIT) == 0 || len(s.JIT) != len(s.CPU) {
		return nil, false
	}
	return &frSeries{CPU: s.JIT}, true
}

// frPair names the two series a distance row compares, in the order
// a − b: by default modelcache and its floor (S4); S4B compares this
// module with the baseline's.
type frPair struct {
	scenario string
	a, b     string
}

var s4Pair = frPair{"S4", "modelcache", "floor"}

// addJITAbove adds the row of modelcache's (mc) distance to a floor in
// V8-generated code, round by round; when perf ran but missed a round of
// either, the results say the row is missing and why.
func (r *run) addJITAbove(metric, at string, mc, floor *frSeries) {
	r.addJITDistance(s4Pair, metric, at, mc, floor)
}

// addJITDistance is addJITAbove for the pair of series p names.
func (r *run) addJITDistance(p frPair, metric, at string, a, b *frSeries) {
	fj, ok1 := a.jit()
	mj, ok2 := b.jit()
	if !ok1 || !ok2 {
		if r.s.Perf {
			r.note("%s %s: no row in V8-generated code: perf sampled %d of %d rounds of %s and %d of %d of the %s",
				p.scenario, metric, len(a.JIT), len(a.CPU), p.a, len(b.JIT), len(b.CPU), p.b)
		}
		return
	}
	jd := diffs(fj, mj)
	jlo, jhi := minMax(jd)
	r.add(row{Scenario: p.scenario, Metric: metric + ", proxy CPU in V8-generated code (perf: the wasm filter and V8's wrappers of its calls) " + at,
		Value:     fmt.Sprintf("%+.1f µs (rounds %+.1f…%+.1f)", median(jd), jlo, jhi),
		Baselines: fmt.Sprintf("%s %s; %s %s", p.b, mj.Text(), p.a, fj.Text())})
}

// addOutsideJITAbove adds the row of modelcache's distance to a floor
// outside V8-generated code, by binary, round by round: in Envoy's own
// binary, in the kernel, and in the rest (the C library, the vDSO). The
// two make the same host calls, yet need not cost Envoy alike: a filter
// that runs more code leaves Envoy's own code and data colder in the
// caches. Without a full series of perf samples there is no row (the row
// in V8-generated code says why).
func (r *run) addOutsideJITAbove(metric, at string, mc, floor *frSeries) {
	r.addOutsideJITDistance(s4Pair, metric, at, mc, floor)
}

// addOutsideJITDistance is addOutsideJITAbove for the pair p names.
func (r *run) addOutsideJITDistance(p frPair, metric, at string, mc, floor *frSeries) {
	full := func(s *frSeries) bool {
		n := len(s.CPU)
		return n > 0 && len(s.JIT) == n && len(s.Envoy) == n && len(s.Kernel) == n
	}
	if !full(mc) || !full(floor) {
		return
	}
	rest := func(s *frSeries) *frSeries {
		out := make([]float64, len(s.CPU))
		for i := range out {
			out[i] = s.CPU[i] - s.JIT[i] - s.Envoy[i] - s.Kernel[i]
		}
		return &frSeries{CPU: out}
	}
	parts := []struct {
		name      string
		mc, floor *frSeries
	}{
		{"Envoy's binary", &frSeries{CPU: mc.Envoy}, &frSeries{CPU: floor.Envoy}},
		{"kernel", &frSeries{CPU: mc.Kernel}, &frSeries{CPU: floor.Kernel}},
		{"C library and vDSO", rest(mc), rest(floor)},
	}
	var value, fl, m []string
	for _, part := range parts {
		d := diffs(part.mc, part.floor)
		lo, hi := minMax(d)
		value = append(value, fmt.Sprintf("%s %+.1f µs (rounds %+.1f…%+.1f)", part.name, median(d), lo, hi))
		fl = append(fl, fmt.Sprintf("%s %.1f", part.name, part.floor.Med()))
		m = append(m, fmt.Sprintf("%s %.1f", part.name, part.mc.Med()))
	}
	r.add(row{Scenario: p.scenario, Metric: metric + ", proxy CPU outside V8-generated code, by binary (perf) " + at,
		Value:     strings.Join(value, "; "),
		Baselines: fmt.Sprintf("medians, µs: %s %s; %s %s", p.b, strings.Join(fl, ", "), p.a, strings.Join(m, ", "))})
}

func (s *frSeries) Range() (lo, hi float64) { return minMax(s.CPU) }

// Text is "123.4 µs (120.1–125.0)".
func (s *frSeries) Text() string {
	lo, hi := s.Range()
	return fmt.Sprintf("%.1f µs (%.1f–%.1f)", s.Med(), lo, hi)
}

func minMax(v []float64) (lo, hi float64) {
	if len(v) == 0 {
		return 0, 0
	}
	lo, hi = v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return
}

// diffs are a's rounds minus b's, round by round (the two were measured
// seconds apart in each round).
func diffs(a, b *frSeries) []float64 {
	n := min(len(a.CPU), len(b.CPU))
	out := make([]float64, n)
	for i := range out {
		out[i] = a.CPU[i] - b.CPU[i]
	}
	return out
}

// runtimeNS is the CPU time (ns, from the scheduler: /proc/PID/task/TID/
// schedstat) of every thread of the processes of one process group — finer
// than the 10 ms ticks of /proc/PID/stat, which at a few thousand requests
// per point would be µs per request of rounding.
func runtimeNS(pgid int) uint64 {
	var total uint64
	for _, pid := range groupPids(pgid) {
		tasks, _ := os.ReadDir(filepath.Join("/proc", pid, "task"))
		for _, t := range tasks {
			b, err := os.ReadFile(filepath.Join("/proc", pid, "task", t.Name(), "schedstat"))
			if err != nil {
				continue
			}
			f, _, _ := strings.Cut(string(b), " ")
			v, _ := strconv.ParseUint(f, 10, 64)
			total += v
		}
	}
	return total
}

// fixedRate measures cells in rounds rounds, each cell for d at rate
// requests per second after a short warm-up, in the order given in every
// round. A cell whose measurement others disturbed (more than maxOtherCPU)
// is measured again once the machine is quiet (twice at most).
func (r *run) fixedRate(cells []frCell, rate, rounds int, d time.Duration) (map[string]*frSeries, error) {
	out := map[string]*frSeries{}
	for _, c := range cells {
		out[c.key()] = &frSeries{}
	}
	warm := max(d/4, 500*time.Millisecond)
	var idle *idler
	if os.Getenv("BENCH_IDLER") != "0" {
		var err error
		if idle, err = startIdler(r.s.ProxyCPUs); err != nil {
			return nil, err
		}
		defer idle.stop()
		idle.pause()
	}
	for round := 0; round < rounds; round++ {
		for _, c := range cells {
			sys, err := r.system(c.sys)
			if err != nil {
				return nil, err
			}
			s := out[c.key()]
			if round == 0 { // what the system answers this workload with
				p := post(r.ctx, newClient(1), sys.URL+c.wl.Path, frRequests("", c.wl, "probe")(0).Body, c.wl.Headers...)
				r.logf("  %s: status %d, Cache-Status %q", c.key(), p.Status, p.Cache)
				if p.Err != nil || p.Status != 200 {
					return nil, fmt.Errorf("%s: probe request: status %d, %v", c.key(), p.Status, p.Err)
				}
				if strings.Contains(p.Cache, "detail=unkeyed") { // bench/floorfilter miss-keyed, miss-served
					return nil, fmt.Errorf("%s: the floor could not key the request (Cache-Status %q): it would do less than its row's work", c.key(), p.Cache)
				}
			}
			for try := 0; ; try++ {
				idle.pause()
				r.waitQuiet(fmt.Sprintf("%s fixed rate round %d", c.key(), round+1))
				idle.resume()
				tag := fmt.Sprintf("fr-%d-%d-%s-%d", time.Now().UnixNano(), round, c.sys, try)
				next := frRequests(sys.URL, c.wl, tag)
				if _, _, _ = openLoop(r.ctx, rate, warm, 16, c.wl.Headers, next, noClass); r.ctx.Err() != nil {
					return nil, r.ctx.Err()
				}
				// perf samples every system alike (its sampling costs the
				// proxy the same CPU whatever the filter).
				var perfDone func() perfReport
				if r.s.Perf {
					perfDone = r.perfRecord(fmt.Sprintf("fr-%s-%d", c.key(), round), sys.Pid(), d)
				}
				a, ns0, i0 := r.cpuSnap(sys), runtimeNS(sys.Pid()), idle.cpu()
				replies, _, late := openLoop(r.ctx, rate, d, 16, c.wl.Headers, frRequests(sys.URL, c.wl, tag+"m"), noClass)
				ns1, b, i1 := runtimeNS(sys.Pid()), r.cpuSnap(sys), idle.cpu()
				var prof perfReport
				if perfDone != nil {
					prof = perfDone()
				}
				if r.ctx.Err() != nil {
					return nil, r.ctx.Err()
				}
				other := otherCPU(a, b, i1-i0)
				if other > maxOtherCPU && try < 2 {
					r.logf("  %s: other processes used %.0f%% of a CPU during round %d; measuring it again", c.key(), 100*other, round+1)
					continue
				}
				cpu := float64(ns1-ns0) / 1e3 / float64(max(1, len(replies)))
				s.CPU = append(s.CPU, cpu)
				if prof.OK {
					s.JIT = append(s.JIT, prof.JIT*cpu)
					s.Envoy = append(s.Envoy, prof.Envoy*cpu)
					s.Kernel = append(s.Kernel, prof.Kernel*cpu)
				} else if perfDone != nil {
					r.logf("  %s: no perf samples this round: %s", c.key(), prof.Text)
				}
				s.Sent += len(replies)
				s.Late += late
				s.Failed += failures(replies)
				s.Other = max(s.Other, other)
				inJIT := ""
				if prof.OK {
					inJIT = fmt.Sprintf(", %.1f in V8-generated code", prof.JIT*cpu)
				}
				r.logf("  %-13s %-20s %d rps round %d: proxy CPU %.1f µs/req%s (%d requests, %d late, %d failed, others' CPU %.0f%%)",
					c.sys, c.label, rate, round+1, cpu, inJIT, len(replies), late, failures(replies), 100*other)
				break
			}
		}
	}
	for _, c := range cells {
		s := out[c.key()]
		r.data["fixedrate/"+c.key()] = s
		if s.Late > int64(s.Sent/100) {
			r.note("%s at %d rps: the load generator started %d of %d requests more than 10 ms late (the rate was not held)", c.key(), rate, s.Late, s.Sent)
		}
		if s.Failed > 0 {
			r.note("%s at %d rps: %d of %d requests failed (error or non-200)", c.key(), rate, s.Failed, s.Sent)
		}
		if s.Other > maxOtherCPU {
			r.note("%s at %d rps: other processes used up to %.0f%% of a CPU during a round (kept after 2 retries)", c.key(), rate, 100*s.Other)
		}
	}
	return out, nil
}

func noClass(string) uint8 { return 0 }

// frRequests is wl as open-loop requests: the benchmark request, with a new
// nonce each (tag and the request's index) when wl.Unique.
func frRequests(base string, wl workload, tag string) func(int) request {
	url := base + wl.Path
	fixed := chatRequest("N0NCE")
	return func(i int) request {
		if wl.Unique {
			return request{URL: url, Body: chatRequest(tag + "-" + strconv.Itoa(i))}
		}
		return request{URL: url, Body: fixed}
	}
}

// idler keeps the proxy's CPU busy with a SCHED_IDLE spin loop while a
// fixed-rate point runs, so that the CPU never halts between requests: at
// a rate below saturation the proxy otherwise sleeps between most
// requests, and on a virtual machine each halt and wake-up costs tens of
// µs (an exit to the hypervisor) that vary with the host's load — noise of
// the same size as the differences S4 looks for. The spin loop yields to
// any other task at once (SCHED_IDLE) and its CPU time is not the proxy's.
type idler struct{ cmd *exec.Cmd }

func startIdler(cpus string) (*idler, error) {
	// The loop ends when the runner (its parent: taskset and chrt exec)
	// is gone, should the runner die without stopping it: a loop left
	// behind would keep the proxy's CPU busy for every later run.
	cmd := exec.Command("taskset", "-c", cpus, "chrt", "--idle", "0", "sh", "-c", "while kill -0 $PPID; do :; done 2>/dev/null")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &idler{cmd: cmd}, nil
}

func (i *idler) signal(sig syscall.Signal) {
	if i != nil {
		_ = syscall.Kill(-i.cmd.Process.Pid, sig)
	}
}

// pause stops the loop (a quiet machine is waited for without it).
func (i *idler) pause()  { i.signal(syscall.SIGSTOP) }
func (i *idler) resume() { i.signal(syscall.SIGCONT) }

func (i *idler) stop() {
	if i != nil {
		i.signal(syscall.SIGKILL)
		_ = i.cmd.Wait()
	}
}

// cpu is the loop's CPU time so far.
func (i *idler) cpu() time.Duration {
	if i == nil {
		return 0
	}
	t, _, _ := procTicks(strconv.Itoa(i.cmd.Process.Pid))
	return time.Duration(t) * time.Second / clkTck
}
