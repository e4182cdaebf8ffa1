// Command bench is modelcache's side-by-side benchmark (make bench): it runs
// Envoy with and without the filter, nginx proxy_cache and Varnish on this
// machine, all on loopback, with the proxy under test pinned to CPU0 and the
// load generator and origin (this process) on CPU1, and prints one table of
// medians and ratios to baselines measured in the same run. It writes the
// results to bench/results/<date>.md (and latest.md), renders PNG charts
// with gnuplot and refreshes the generated section of BENCHMARKS.md.
//
// Scenarios are registered in scenarios.go, one entry each; see
// bench/README.md for the method and why it is built this way.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/modelcache/modelcache/internal/envoyrun"
)

// settings are the knobs of one run.
type settings struct {
	Quick    bool
	Warmup   time.Duration // before each measured series
	Duration time.Duration // one wrk repetition
	Reps     int
	Soak     time.Duration // S11; 0 skips it
	Only     map[string]bool

	Root  string // repository root
	Envoy string // Envoy binary
	Wasm  string // build/modelcache.wasm
	// BaselineWasm is another build to compare with (S2B), BaselineName
	// what it was built from.
	BaselineWasm, BaselineName string
	OutDir                     string // where results go (bench/results, or build/bench-quick)
	WorkDir                    string // scratch (configs, logs, cache dirs)
	ProxyCPUs                  string // taskset list for the proxy under test
	Date                       string // results file name
	KeepWork                   bool
	Perf                       bool // sample the proxy with perf (perf.go); BENCH_PERF=0 disables
	PerfHz                     int  // perf's sampling frequency; BENCH_PERF_HZ overrides 999
	S4Rate                     int  // S4's fixed rate (rps); BENCH_S4_RATE overrides s4Rate
	// S4Rows, when set (BENCH_S4_ROWS), are the S4 and S4B rows to run,
	// by words of their labels (s4Rows); S4Rounds (BENCH_S4_ROUNDS) their
	// fixed-rate rounds, if not the default. For repeating one row with
	// more rounds than a full run can afford.
	S4Rows   []string
	S4Rounds int
	// S4BHistory (BENCH_S4B_HISTORY=1) gives S4B's module and Envoy
	// without the filter S4's closed-loop points first, as S4 gives them
	// before its rounds, and not the baseline nor the floors: with the
	// module as its own baseline, S4B then reads what that history costs.
	S4BHistory bool
	Benchtime  string // S12 -test.benchtime
	BenchCnt   int    // S12 -test.count
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "wazero-exec" {
		os.Exit(wazeroExec(os.Args[2:]))
	}
	var s settings
	var only string
	flag.BoolVar(&s.Quick, "quick", false, "smoke run: 2 short repetitions, short scenarios, no soak; results under build/bench-quick")
	flag.StringVar(&only, "only", "", "comma-separated scenario ids to run (e.g. S1,S2); default all")
	flag.StringVar(&s.Envoy, "envoy", "", "Envoy binary (default: build/envoy-path, else envoy on PATH)")
	flag.StringVar(&s.OutDir, "out", "", "results directory (default bench/results, or build/bench-quick with -quick)")
	flag.BoolVar(&s.KeepWork, "keep", false, "keep the scratch directory (configs, logs)")
	flag.StringVar(&s.BaselineWasm, "baseline-wasm", "", "a module to compare hits with, side by side (S2B; see bench/baseline.sh)")
	flag.StringVar(&s.BaselineName, "baseline-name", "", "what the baseline module was built from (shown in S2B)")
	flag.Parse()

	s.Root = repoRoot()
	s.Warmup, s.Duration, s.Reps = 2*time.Second, 5*time.Second, 3
	s.Soak = 10 * time.Minute
	s.Benchtime, s.BenchCnt = "500ms", 3
	if s.Quick {
		s.Warmup, s.Duration, s.Reps = time.Second, 2*time.Second, 2
		s.Soak = 0
		s.Benchtime, s.BenchCnt = "100ms", 1
	}
	if v := os.Getenv("BENCH_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			fatalf("BENCH_SOAK: %v (use e.g. 10m, 3m, 0)", err)
		}
		s.Soak = d
	}
	s.S4Rate = s4Rate
	if v := os.Getenv("BENCH_S4_RATE"); v != "" {
		if _, err := fmt.Sscan(v, &s.S4Rate); err != nil || s.S4Rate < 1 {
			fatalf("BENCH_S4_RATE: %q is not a rate in requests per second", v)
		}
	}
	if v := os.Getenv("BENCH_S4_ROWS"); v != "" {
		s.S4Rows = strings.Split(v, ",")
		if _, err := s4Rows(s.S4Rows); err != nil {
			fatalf("BENCH_S4_ROWS: %v", err)
		}
	}
	if v := os.Getenv("BENCH_S4_ROUNDS"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 2 || n > 100 {
			fatalf("BENCH_S4_ROUNDS: %q is not a number of rounds from 2 to 100", v)
		} else {
			s.S4Rounds = n
		}
	}
	s.S4BHistory = os.Getenv("BENCH_S4B_HISTORY") == "1"
	if v := os.Getenv("BENCH_REPS"); v != "" {
		fmt.Sscan(v, &s.Reps)
	}
	if v := os.Getenv("BENCH_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			fatalf("BENCH_DURATION: %v", err)
		}
		s.Duration = d
	}
	// perf sampling is on when perf(1) is installed; BENCH_PERF=0 turns it off.
	if _, err := lookPath("perf"); err == nil && os.Getenv("BENCH_PERF") != "0" {
		s.Perf = true
	}
	s.PerfHz = defaultPerfHz
	if v := os.Getenv("BENCH_PERF_HZ"); v != "" {
		hz, err := strconv.Atoi(v)
		if err != nil || hz < 1 || hz > 50000 {
			fatalf("BENCH_PERF_HZ: %q is not a sampling frequency from 1 to 50000", v)
		}
		s.PerfHz = hz
	}
	if only != "" {
		s.Only = map[string]bool{}
		for _, id := range strings.Split(only, ",") {
			s.Only[strings.ToUpper(strings.TrimSpace(id))] = true
		}
	}
	if s.OutDir == "" {
		s.OutDir = filepath.Join(s.Root, "bench", "results")
		if s.Quick {
			s.OutDir = filepath.Join(s.Root, "build", "bench-quick")
		}
	}
	if s.Envoy == "" {
		s.Envoy = findEnvoy(s.Root)
	}
	s.Wasm = filepath.Join(s.Root, "build", "modelcache.wasm")
	s.ProxyCPUs = "0"
	s.Date = time.Now().Format("2006-01-02")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := newRun(ctx, s)
	if err != nil {
		fatalf("%v", err)
	}
	code := r.main()
	os.Exit(code)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

func repoRoot() string {
	if wd, err := os.Getwd(); err == nil {
		for d := wd; d != "/"; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				if _, err := os.Stat(filepath.Join(d, "envoy", "bench")); err == nil {
					return d
				}
			}
		}
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// findEnvoy is envoyrun.Find (ENVOY_BIN, build/envoy-path, PATH, .venv),
// else plain "envoy".
func findEnvoy(root string) string {
	if p := envoyrun.Find(root); p != "" {
		return p
	}
	return "envoy"
}
