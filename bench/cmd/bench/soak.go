package main

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// S11: the soak. A fresh Envoy with the filter, 2000 rps for BENCH_SOAK
// (10 min by default) over 10,000 keys drawn at random with a 20 s TTL —
// each key is asked about every 5 s, so about one request in five finds
// its entry expired and misses. Envoy's resident memory is sampled every
// 5 s; after warm-up it must not drift by more than 10 %, no VM may fail,
// and p99.9 should stay within 2× p99 (GC pauses show up there).

const (
	soakRate = 2000
	soakKeys = 10000
)

type rssSample struct {
	T   float64 `json:"t_s"`
	RSS int64   `json:"rss_bytes"`
}

type soakResult struct {
	Duration   string      `json:"duration"`
	Warmup     string      `json:"warmup"`
	Requests   int         `json:"requests"`
	Failed     int         `json:"failed"`
	Late       int64       `json:"late"`
	MissShare  float64     `json:"miss_share"`
	P50        float64     `json:"p50_us"`
	P99        float64     `json:"p99_us"`
	P999       float64     `json:"p999_us"`
	RSSWarm    int64       `json:"rss_after_warmup"`
	RSSEnd     int64       `json:"rss_end"`
	RSSMax     int64       `json:"rss_max"`
	Drift      float64     `json:"drift"`
	VMFailures int64       `json:"vm_failures"`
	FailStats  []string    `json:"fail_stats"`
	Panics     int64       `json:"panics"`
	VMsCreated [2]int64    `json:"vms_created"`
	LogErrors  int         `json:"log_errors"`
	Samples    []rssSample `json:"rss"`
	OtherCPU   float64     `json:"other_cpu"`
}

func runS11(r *run) error {
	if r.s.Soak <= 0 {
		r.add(row{Scenario: "S11", Metric: "soak", Value: "skipped (BENCH_SOAK=0 or -quick)"})
		return nil
	}
	sys, err := r.system("filter")
	if err != nil {
		return err
	}
	d := r.s.Soak
	warm := min(2*time.Minute, d/5)
	bodies := make([][]byte, soakKeys)
	for i := range bodies {
		bodies[i] = chatRequest(fmt.Sprintf("soak-%05d", i))
	}
	path := "/soak/v1/chat/completions"
	url := sys.URL + path
	st0, _ := sys.Stats()
	res := &soakResult{Duration: d.String(), Warmup: warm.String()}
	res.VMsCreated[0] = vmCreated(st0)

	// RSS sampler.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			if rss, err := sys.RSS(); err == nil {
				res.Samples = append(res.Samples, rssSample{T: time.Since(t0).Seconds(), RSS: rss})
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	r.waitQuiet("the soak")
	snap0 := r.cpuSnap(sys)
	r.logf("  soak: %s at %d rps over %d keys (warm-up %s)…", d, soakRate, soakKeys, warm)
	keyOf := func(i int) uint64 { // a fixed pseudo-random key sequence
		x := uint64(i+1) * 0x9e3779b97f4a7c15
		x ^= x >> 31
		x *= 0xbf58476d1ce4e5b9
		x ^= x >> 27
		return x % soakKeys
	}
	replies, _, late := openLoop(r.ctx, soakRate, d, 64, []string{authHeader}, func(i int) request {
		return request{URL: url, Body: bodies[keyOf(i)]}
	}, classifier("filter"))
	close(stop)
	wg.Wait()
	res.OtherCPU = otherCPU(snap0, r.cpuSnap(sys), 0)
	if res.OtherCPU > maxOtherCPU {
		r.note("S11: other processes used %.0f%% of a CPU on average during the soak", 100*res.OtherCPU)
	}
	if rss, err := sys.RSS(); err == nil {
		res.Samples = append(res.Samples, rssSample{T: time.Since(t0).Seconds(), RSS: rss})
	}
	if r.ctx.Err() != nil {
		return r.ctx.Err()
	}
	time.Sleep(6 * time.Second) // one stats flush, so wasm counters are current
	st1, err := sys.Stats()
	if err != nil {
		return err
	}
	res.VMsCreated[1] = vmCreated(st1)
	for name, v := range st1 {
		if strings.Contains(name, "wasm") && (strings.Contains(name, "fail") || strings.Contains(name, "crash")) && v > 0 {
			res.FailStats = append(res.FailStats, fmt.Sprintf("%s=%d", name, v))
			res.VMFailures += v
		}
	}
	sort.Strings(res.FailStats)
	res.Panics = st1["wasmcustom.modelcache.panics"]
	res.LogErrors = countLogErrors(sys.log)

	after := since(replies, warm)
	res.Requests = len(replies)
	res.Failed = failures(replies)
	res.Late = late
	misses := 0
	for _, p := range after {
		if isMiss(p) {
			misses++
		}
	}
	res.MissShare = float64(misses) / float64(max(1, len(after)))
	lat := latencies(after, nil)
	res.P50, res.P99, res.P999 = percentile(lat, 50), percentile(lat, 99), percentile(lat, 99.9)

	// Drift: mean RSS of the last minute against the minute after warm-up.
	window := func(from, to float64) int64 {
		var sum, n int64
		for _, s := range res.Samples {
			if s.T >= from && s.T < to {
				sum += s.RSS
				n++
			}
		}
		if n == 0 {
			return 0
		}
		return sum / n
	}
	w := warm.Seconds()
	span := min(60, (d.Seconds()-w)/2)
	res.RSSWarm = window(w, w+span)
	res.RSSEnd = window(d.Seconds()-span, d.Seconds()+10)
	for _, s := range res.Samples {
		res.RSSMax = max(res.RSSMax, s.RSS)
	}
	if res.RSSWarm > 0 {
		res.Drift = float64(res.RSSEnd-res.RSSWarm) / float64(res.RSSWarm)
	}
	r.data["soak"] = res
	r.logf("  soak: %d requests (%d failed, %d late), miss share %.1f%%, p99 %s p99.9 %s, RSS %s → %s (max %s, drift %+.1f%%), VM failures %d, panics %d",
		res.Requests, res.Failed, res.Late, 100*res.MissShare, usfmt(res.P99), usfmt(res.P999),
		mib(res.RSSWarm), mib(res.RSSEnd), mib(res.RSSMax), 100*res.Drift, res.VMFailures, res.Panics)

	// The same load through Envoy without the filter, briefly: the tail
	// latency the machine, Envoy and the load generator have by themselves.
	r.stopSystem("filter")
	var base string
	if nf, err := r.system("nofilter"); err == nil {
		bd := min(time.Minute, d/5)
		bs, _, _ := openLoop(r.ctx, soakRate, bd, 64, []string{authHeader}, func(i int) request {
			return request{URL: nf.URL + path, Body: bodies[keyOf(i)]}
		}, classifier("filter"))
		bl := latencies(since(bs, bd/6), nil)
		b99, b999 := percentile(bl, 99), percentile(bl, 99.9)
		base = fmt.Sprintf("no filter, same load for %s: p99 %s, p99.9 %s (%.2f×)", bd, usfmt(b99), usfmt(b999), b999/max(1, b99))
		r.data["soak_nofilter"] = map[string]float64{"p99_us": b99, "p999_us": b999}
		r.logf("  soak baseline: %s", base)
	}
	load := fmt.Sprintf("%s, %d rps, %d keys, TTL 20 s", d, soakRate, soakKeys)
	r.add(row{Scenario: "S11", Metric: "resident memory drift after warm-up (" + load + ")",
		Value:  fmt.Sprintf("%+.1f%% (%s → %s, max %s)", 100*res.Drift, mib(res.RSSWarm), mib(res.RSSEnd), mib(res.RSSMax)),
		Target: "≤ 10 %", Met: met(res.Drift <= 0.10)})
	vmText := fmt.Sprintf("%d (VMs created %d → %d, panics %d, wasm errors in log %d)", res.VMFailures, res.VMsCreated[0], res.VMsCreated[1], res.Panics, res.LogErrors)
	r.add(row{Scenario: "S11", Metric: "VM failures", Value: vmText, Target: "0",
		Met: met(res.VMFailures == 0 && res.Panics == 0 && res.VMsCreated[1] == res.VMsCreated[0] && res.LogErrors == 0)})
	r.add(row{Scenario: "S11", Metric: "p99.9 vs p99 after warm-up",
		Value:     fmt.Sprintf("p99 %s, p99.9 %s (%.2f×); p50 %s", usfmt(res.P99), usfmt(res.P999), res.P999/max(1, res.P99), usfmt(res.P50)),
		Baselines: base, Target: "p99.9 ≤ 2× p99", Met: met(res.P999 <= 2*res.P99)})
	r.add(row{Scenario: "S11", Metric: "misses after warm-up; failed requests",
		Value: fmt.Sprintf("%.1f%% misses; %d of %d failed", 100*res.MissShare, res.Failed, res.Requests), Target: "≈ 20 %; 0 failed",
		Met: met(res.Failed == 0)})
	if late > 0 {
		r.note("S11: the load generator started %d of %d requests more than 10 ms late", late, res.Requests)
	}
	return nil
}

func vmCreated(st map[string]int64) int64 {
	var n int64
	for name, v := range st {
		if strings.HasPrefix(name, "wasm.") && strings.HasSuffix(name, ".created") {
			n += v
		}
	}
	return n
}

var wasmErrRe = regexp.MustCompile(`(?i)\[(error|critical)\].*(wasm|modelcache)`)

func countLogErrors(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return len(wasmErrRe.FindAll(b, -1))
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
