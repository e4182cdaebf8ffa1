package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// workload is one closed-loop wrk load: a POST of the benchmark request.
type workload struct {
	Path     string
	Headers  []string // "name: value"
	Unique   bool     // a new key on every request
	BodyFile string   // under bench/payloads; default request.json
}

var (
	authHeader = "authorization: Bearer bench-tenant"
	noStoreReq = "cache-control: no-store"
)

// wrkResult is one wrk run.
type wrkResult struct {
	Requests   int64   `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	Bytes      int64   `json:"bytes"`
	ErrConnect int64   `json:"err_connect"`
	ErrRead    int64   `json:"err_read"`
	ErrWrite   int64   `json:"err_write"`
	ErrStatus  int64   `json:"err_status"`
	ErrTimeout int64   `json:"err_timeout"`
	Mean       float64 `json:"mean"`
	P50        float64 `json:"p50"`
	P90        float64 `json:"p90"`
	P99        float64 `json:"p99"`
	P999       float64 `json:"p999"`
	Max        float64 `json:"max"`
	// OtherCPU is CPU used by other processes on the machine during the
	// run, in CPUs (see cpu.go); Conns is the proxy's new downstream
	// connections (Envoy only; -1 unknown).
	OtherCPU float64       `json:"other_cpu"`
	ProxyCPU float64       `json:"proxy_cpu_us_per_request"`
	Conns    int64         `json:"new_connections"`
	wrkCPU   time.Duration `json:"-"`
}

func (w wrkResult) RPS() float64 { return float64(w.Requests) / (float64(w.DurationUS) / 1e6) }

func (w wrkResult) Errors() int64 {
	return w.ErrConnect + w.ErrRead + w.ErrWrite + w.ErrStatus + w.ErrTimeout
}

// wrk runs one closed-loop load: one wrk thread, conns connections.
func (r *run) wrk(url string, wl workload, conns int, d time.Duration) (wrkResult, error) {
	var res wrkResult
	bodyFile := filepath.Join(r.s.Root, "bench", "payloads", "request.json")
	if wl.BodyFile != "" {
		bodyFile = filepath.Join(r.s.Root, "bench", "payloads", wl.BodyFile)
	}
	secs := int(d.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	cmd := exec.CommandContext(r.ctx, "wrk", "-t1", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(secs)+"s",
		"--timeout", "10s", "-s", filepath.Join(r.s.Root, "bench", "wrk", "bench.lua"), url+wl.Path)
	cmd.Env = append(os.Environ(),
		"BENCH_PATH="+wl.Path,
		"BENCH_BODY_FILE="+bodyFile,
		"BENCH_HEADERS="+strings.Join(wl.Headers, "\n"),
		"BENCH_SEED="+strconv.FormatInt(time.Now().UnixNano(), 36),
	)
	if wl.Unique {
		cmd.Env = append(cmd.Env, "BENCH_UNIQUE=1")
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return res, fmt.Errorf("wrk: %v: %s %s", err, errb.String(), out.String())
	}
	res.wrkCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	for _, line := range strings.Split(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "BENCHJSON "); ok {
			if err := json.Unmarshal([]byte(rest), &res); err != nil {
				return res, fmt.Errorf("wrk output %q: %v", rest, err)
			}
			if res.Requests == 0 {
				return res, fmt.Errorf("wrk made no request: %s", out.String())
			}
			return res, nil
		}
	}
	return res, fmt.Errorf("no BENCHJSON line in wrk output: %s %s", out.String(), errb.String())
}

// maxOtherCPU is how much CPU other processes may use during a repetition
// before it is repeated (in CPUs).
const maxOtherCPU = 0.10

// series is one measured point: warm-up, then Reps repetitions.
type series struct {
	Label string      `json:"label"`
	Runs  []wrkResult `json:"runs"`
}

func (s *series) med(f func(wrkResult) float64) float64 {
	v := make([]float64, len(s.Runs))
	for i, x := range s.Runs {
		v[i] = f(x)
	}
	return median(v)
}

func (s *series) rng(f func(wrkResult) float64) (lo, hi float64) {
	lo, hi = f(s.Runs[0]), f(s.Runs[0])
	for _, x := range s.Runs {
		lo, hi = min(lo, f(x)), max(hi, f(x))
	}
	return
}

func (s *series) RPS() float64 { return s.med(wrkResult.RPS) }
func (s *series) P50() float64 { return s.med(func(w wrkResult) float64 { return w.P50 }) }
func (s *series) P99() float64 { return s.med(func(w wrkResult) float64 { return w.P99 }) }

// CPU is the proxy's CPU time per request, µs (median over repetitions).
func (s *series) CPU() float64 { return s.med(func(w wrkResult) float64 { return w.ProxyCPU }) }
func (s *series) Errors() int64 {
	var n int64
	for _, x := range s.Runs {
		n += x.Errors()
	}
	return n
}

// RPSText is "58.1k (57.0–59.3k)".
func (s *series) RPSText() string {
	lo, hi := s.rng(wrkResult.RPS)
	return fmt.Sprintf("%s rps (%s–%s)", kfmt(s.RPS()), kfmt(lo), kfmt(hi))
}

// P50Text is "61 µs (60–63)".
func (s *series) P50Text() string {
	lo, hi := s.rng(func(w wrkResult) float64 { return w.P50 })
	return fmt.Sprintf("%.0f µs (%.0f–%.0f)", s.P50(), lo, hi)
}

// measure runs (or recalls) a series: sys under wl with conns connections.
// The key is system|label|conns, so scenarios share points.
func (r *run) measure(sysName, label string, wl workload, conns int) (*series, error) {
	key := fmt.Sprintf("%s|%s|%d", sysName, label, conns)
	if s := r.memo[key]; s != nil {
		return s, nil
	}
	sys, err := r.system(sysName)
	if err != nil {
		return nil, err
	}
	r.waitQuiet(key)
	if _, err := r.wrk(sys.URL, wl, conns, r.s.Warmup); err != nil {
		return nil, err
	}
	s := &series{Label: label}
	for i, retries := 0, 0; i < r.s.Reps; i++ {
		cx0 := sys.downstreamConns()
		var perfDone func() perfReport
		if i == 0 && retries == 0 && r.wantPerf(sysName, label, conns) {
			perfDone = r.perfRecord(key, sys.Pid(), r.s.Duration-time.Second)
		}
		a := r.cpuSnap(sys)
		res, err := r.wrk(sys.URL, wl, conns, r.s.Duration)
		if err != nil {
			return nil, err
		}
		if perfDone != nil {
			prof := perfDone().Text
			r.note("perf, %s (CPU time by binary): %s", key, prof)
			r.data["perf/"+key] = prof
		}
		b := r.cpuSnap(sys)
		res.OtherCPU = otherCPU(a, b, res.wrkCPU)
		res.ProxyCPU = float64(proxyCPU(a, b).Microseconds()) / float64(res.Requests)
		res.Conns = -1
		if cx0 >= 0 {
			res.Conns = sys.downstreamConns() - cx0
		}
		if res.OtherCPU > maxOtherCPU && retries < 3 {
			retries++
			r.logf("  %s: other processes used %.0f%% of a CPU during repetition %d; repeating it", key, 100*res.OtherCPU, i+1)
			r.waitQuiet(key)
			i--
			continue
		}
		if res.OtherCPU > maxOtherCPU {
			r.note("%s: other processes used %.0f%% of a CPU during a repetition (kept after 3 retries)", key, 100*res.OtherCPU)
		}
		s.Runs = append(s.Runs, res)
	}
	r.memo[key] = s
	r.data["wrk/"+key] = s
	other := 0.0
	for _, x := range s.Runs {
		other = max(other, x.OtherCPU)
	}
	r.logf("  %-10s %-20s c=%-3d %s  p50 %s  p99 %.0f µs  proxy CPU %.1f µs/req  errors %d  others' CPU ≤ %.0f%%",
		sysName, label, conns, s.RPSText(), s.P50Text(), s.P99(), s.CPU(), s.Errors(), 100*other)
	for _, x := range s.Runs {
		if x.Conns > int64(conns)+int64(x.Requests/100) {
			r.note("%s: %d new connections for %d requests: the proxy closes connections", key, x.Conns, x.Requests)
			break
		}
	}
	if s.Errors() > 0 {
		r.note("%s %s c=%d: wrk counted %d errors (non-2xx or socket errors)", sysName, label, conns, s.Errors())
	}
	return s, nil
}

// ---- small statistics ----

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile of sorted values (nearest rank).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p/100*float64(len(sorted))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func kfmt(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.1fk", v/1000)
	case v >= 1000:
		return fmt.Sprintf("%.2fk", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}
