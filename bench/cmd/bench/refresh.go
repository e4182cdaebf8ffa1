package main

import (
	"fmt"
	"strings"
	"time"
)

// S7: stale-while-revalidate. One hot key with a 2 s TTL under a steady
// 1000 rps across several expiries, origin 100 ms: no client should wait
// for the origin, one refresh should reach it per expiry, and answers
// served stale (while the refresh runs) should be as fast as fresh hits.
// Peers: nginx proxy_cache_use_stale updating + background update, Varnish
// grace.

const (
	swrRate  = 1000
	swrTTL   = 2 * time.Second
	swrDelay = 100 * time.Millisecond
)

type swrResult struct {
	System    string  `json:"system"`
	Requests  int     `json:"requests"`
	Misses    int     `json:"sync_misses"`
	Stale     int     `json:"stale"`
	Refreshes int     `json:"refreshes"`
	Cycles    float64 `json:"cycles"`
	P50Fresh  float64 `json:"p50_fresh_us"`
	P99Fresh  float64 `json:"p99_fresh_us"`
	P99Stale  float64 `json:"p99_stale_us"`
	P99All    float64 `json:"p99_all_us"`
	Failed    int     `json:"failed"`
	Late      int64   `json:"late"`
}

// perExpiry is refreshes per expiry: origin calls over the number of
// expiries that caused any (calls closer than half a TTL are one expiry).
func (s *swrResult) perExpiry() float64 {
	if s.Cycles == 0 {
		return 0
	}
	return float64(s.Refreshes) / s.Cycles
}

// clusters groups calls (in time order) separated by less than gap.
func clusters(calls []call, gap time.Duration) [][]call {
	var out [][]call
	for i, c := range calls {
		if i == 0 || c.At.Sub(calls[i-1].At) >= gap {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], c)
	}
	return out
}

func (s *swrResult) text() string {
	t := fmt.Sprintf("%d sync misses of %d; %d refreshes for %.0f expiries (%.2f per expiry); p99 stale %s, fresh %s",
		s.Misses, s.Requests, s.Refreshes, s.Cycles, s.perExpiry(), usfmt(s.P99Stale), usfmt(s.P99Fresh))
	if s.Failed > 0 {
		t += fmt.Sprintf("; %d failed", s.Failed)
	}
	return t
}

func usfmt(us float64) string {
	if us >= 1000 {
		return fmt.Sprintf("%.2f ms", us/1000)
	}
	return fmt.Sprintf("%.0f µs", us)
}

// classify maps a reply's cache header to its class: went to the origin
// (leader), waited for it (miss), served stale while refreshing, or fresh.
func classify(sys, cache string) uint8 {
	switch sys {
	case "nginx":
		switch cache {
		case "MISS", "EXPIRED", "BYPASS", "REVALIDATED":
			return clsLeader
		case "UPDATING", "STALE":
			return clsStale
		}
	case "varnish":
		switch cache {
		case "miss", "":
			return clsLeader
		case "grace":
			return clsStale
		}
	default:
		switch {
		case strings.Contains(cache, "fwd=stale"):
			return clsStale
		case strings.Contains(cache, "collapsed"):
			return clsMiss
		case strings.Contains(cache, "fwd=miss"):
			return clsLeader
		}
	}
	return clsFresh
}

func classifier(sys string) func(string) uint8 {
	return func(c string) uint8 { return classify(sys, c) }
}

func isMiss(p sample) bool { return p.Class == clsMiss || p.Class == clsLeader }

func (r *run) swr(sysName string) (*swrResult, error) {
	sys, err := r.system(sysName)
	if err != nil {
		return nil, err
	}
	path := fmt.Sprintf("/swr/d%d/v1/chat/completions", swrDelay.Milliseconds())
	body := chatRequest("swr-" + sysName + "-" + time.Now().Format("150405.000"))
	c := newClient(1)
	if p := post(r.ctx, c, sys.URL+path, body, authHeader); p.Err != nil || p.Status != 200 {
		return nil, fmt.Errorf("priming: status %d err %v", p.Status, p.Err)
	}
	d := d7(r)
	replies, t0, late := openLoop(r.ctx, swrRate, d, 32, []string{authHeader}, func(int) request {
		return request{URL: sys.URL + path, Body: body}
	}, classifier(sysName))
	t1 := time.Now()
	time.Sleep(2 * swrDelay) // a refresh started at the end lands
	calls := r.origin.CallsBetween("swr", t0, t1.Add(swrDelay))
	res := &swrResult{System: sysName, Requests: len(replies), Late: late, Refreshes: len(calls),
		Cycles: float64(len(clusters(calls, swrTTL/2)))}
	res.Failed = failures(replies)
	for _, p := range replies {
		switch {
		case isMiss(p):
			res.Misses++
		case p.Class == clsStale:
			res.Stale++
		}
	}
	fresh := latencies(replies, func(p sample) bool { return p.Class == clsFresh })
	stale := latencies(replies, func(p sample) bool { return p.Class == clsStale })
	all := latencies(replies, nil)
	res.P50Fresh, res.P99Fresh = percentile(fresh, 50), percentile(fresh, 99)
	res.P99Stale, res.P99All = percentile(stale, 99), percentile(all, 99)
	r.data["swr|"+sysName] = res
	r.logf("  %-10s %s", sysName, res.text())
	return res, nil
}

func d7(r *run) time.Duration {
	if r.s.Quick {
		return 6 * time.Second
	}
	return 12 * time.Second
}

func runS7(r *run) error {
	f, err := r.swr("filter")
	if err != nil {
		return err
	}
	r.stopSystem("filter")
	var base []string
	for _, p := range []struct{ sys, name string }{{"nginx", "nginx"}, {"varnish", "Varnish"}} {
		b, err := r.swr(p.sys)
		if err != nil {
			base = append(base, p.name+" failed: "+oneLine(err.Error()))
			continue
		}
		r.stopSystem(p.sys)
		base = append(base, fmt.Sprintf("%s: %d misses, %.2f refreshes per expiry, p99 stale %s / fresh %s",
			p.name, b.Misses, b.perExpiry(), usfmt(b.P99Stale), usfmt(b.P99Fresh)))
	}
	r.add(row{Scenario: "S7", Metric: fmt.Sprintf("client-visible misses, 1 key, %d rps, TTL %s, origin %s", swrRate, swrTTL, swrDelay),
		Value: fmt.Sprintf("%d of %d", f.Misses, f.Requests), Baselines: strings.Join(base, "; "), Target: "0", Met: met(f.Misses == 0 && f.Failed == 0)})
	pe := f.perExpiry()
	want := d7(r).Seconds() / (swrTTL + swrDelay).Seconds()
	r.add(row{Scenario: "S7", Metric: "refreshes per expiry", Value: fmt.Sprintf("%.2f (%d refreshes for %.0f expiries; ≈ %.1f expected in the run)", pe, f.Refreshes, f.Cycles, want),
		Target: "1.0", Met: met(pe == 1 && f.Cycles >= want-1)})
	r.add(row{Scenario: "S7", Metric: "p99 of answers served stale vs fresh hits", Value: fmt.Sprintf("stale %s, fresh %s (%d stale)", usfmt(f.P99Stale), usfmt(f.P99Fresh), f.Stale),
		Target: "stale ≤ fresh + 1 ms", Met: met(f.Stale > 0 && f.P99Stale <= f.P99Fresh+1000)})
	if f.Late > 0 {
		r.note("S7: the load generator started %d requests more than 10 ms late", f.Late)
	}
	return nil
}

// S8: XFetch early refresh. A few hot keys at a steady 1000 rps in total
// over 3 TTLs after one TTL of warm-up: with early refresh on, no request
// should wait for the origin after warm-up and each key should be refreshed
// about once per TTL (slightly more: a refresh lands a little before
// expiry). The same load on a fixed-TTL route shows the synchronous misses
// early refresh removes.

const (
	xfRate  = 1000
	xfKeys  = 4
	xfTTL   = 5 * time.Second
	xfDelay = 100 * time.Millisecond
)

type xfResult struct {
	Route       string  `json:"route"`
	Measured    int     `json:"measured"`
	SyncMisses  int     `json:"sync_misses"`
	Leaders     int     `json:"leaders"`
	OriginCalls int     `json:"origin_calls"`
	PerTTL      float64 `json:"refreshes_per_ttl_per_key"`
	P99         float64 `json:"p99_us"`
	Failed      int     `json:"failed"`
}

func (r *run) xfetch(route string) (*xfResult, error) {
	sys, err := r.system("filter")
	if err != nil {
		return nil, err
	}
	path := fmt.Sprintf("/%s/d%d/v1/chat/completions", route, xfDelay.Milliseconds())
	bodies := make([][]byte, xfKeys)
	c := newClient(1)
	for k := range bodies {
		bodies[k] = chatRequest(fmt.Sprintf("xf-%s-%d-%d", route, k, time.Now().UnixNano()))
		if p := post(r.ctx, c, sys.URL+path, bodies[k], authHeader); p.Err != nil || p.Status != 200 {
			return nil, fmt.Errorf("priming: status %d err %v", p.Status, p.Err)
		}
	}
	warm, measured := xfTTL, 3*xfTTL
	replies, t0, _ := openLoop(r.ctx, xfRate, warm+measured, 32, []string{authHeader}, func(i int) request {
		return request{URL: sys.URL + path, Body: bodies[i%xfKeys]}
	}, classifier("filter"))
	tm := t0.Add(warm)
	t1 := t0.Add(warm + measured)
	calls := r.origin.CallsBetween(route, tm, t1)
	res := &xfResult{Route: route, OriginCalls: len(calls), PerTTL: refreshRate(r.origin.CallsBetween(route, t0, t1), xfTTL)}
	in := since(replies, warm)
	res.Measured = len(in)
	res.Failed = failures(in)
	for _, p := range in {
		if isMiss(p) {
			res.SyncMisses++
		}
		if p.Class == clsLeader {
			res.Leaders++
		}
	}
	res.P99 = percentile(latencies(in, nil), 99)
	r.data["xfetch|"+route] = res
	r.logf("  route %-7s %d sync misses (%d leaders) of %d after warm-up; %d origin calls = %.2f per key per TTL; p99 %s",
		route, res.SyncMisses, res.Leaders, res.Measured, res.OriginCalls, res.PerTTL, usfmt(res.P99))
	return res, nil
}

// refreshRate is refreshes per TTL per key: TTL over the mean interval
// between one key's consecutive origin calls (window edges cannot bias it
// the way counting calls in a window would).
func refreshRate(calls []call, ttl time.Duration) float64 {
	last := map[uint64]time.Time{}
	var sum time.Duration
	n := 0
	for _, c := range calls {
		if t, ok := last[c.Key]; ok {
			sum += c.At.Sub(t)
			n++
		}
		last[c.Key] = c.At
	}
	if n == 0 {
		return 0
	}
	return ttl.Seconds() / (sum.Seconds() / float64(n))
}

func runS8(r *run) error {
	x, err := r.xfetch("xfetch")
	if err != nil {
		return err
	}
	f, err := r.xfetch("fixed")
	if err != nil {
		return err
	}
	load := fmt.Sprintf("%d keys, %d rps, TTL %s, origin %s, 3 TTLs after 1 TTL warm-up", xfKeys, xfRate, xfTTL, xfDelay)
	r.add(row{Scenario: "S8", Metric: "synchronous misses after warm-up (" + load + ")",
		Value:     fmt.Sprintf("%d of %d", x.SyncMisses, x.Measured),
		Baselines: fmt.Sprintf("fixed TTL: %d of %d (%d went upstream, the rest waited for them)", f.SyncMisses, f.Measured, f.Leaders),
		Target:    "0", Met: met(x.SyncMisses == 0 && x.Failed == 0)})
	r.add(row{Scenario: "S8", Metric: "refreshes per TTL per key",
		Value: fmt.Sprintf("%.2f (%d origin calls)", x.PerTTL, x.OriginCalls), Baselines: fmt.Sprintf("fixed TTL: %.2f", f.PerTTL),
		Target: "1.0–1.2", Met: met(x.PerTTL >= 1.0 && x.PerTTL <= 1.2)})
	r.add(row{Scenario: "S8", Metric: "p99 after warm-up", Value: usfmt(x.P99), Baselines: "fixed TTL: " + usfmt(f.P99)})
	return nil
}
