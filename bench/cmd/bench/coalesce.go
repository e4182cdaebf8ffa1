package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// S5/S6: N identical requests for a new key arrive at once while the origin
// takes D to answer. The leader is the request that went to the origin;
// every other request is a follower, and its lag is its completion minus
// the leader's: how long after the answer existed the proxy released it.
// (perf-anchors B4: nginx's proxy_cache_lock polls every 500 ms, Varnish's
// waiting list is event-driven.)

const burstN = 50

var originDelays = []int{100, 300}

// lagResult is one system at one origin delay, pooled over repetitions.
type lagResult struct {
	System   string    `json:"system"`
	DelayMS  int       `json:"delay_ms"`
	LagsMS   []float64 `json:"lags_ms"` // sorted
	LeaderMS []float64 `json:"leader_ms"`
	Calls    []int64   `json:"origin_calls"`
	Failed   int       `json:"failed"`
	Spread   string    `json:"spread,omitempty"`
	// Statuses tallies the cache headers the replies carried.
	Statuses map[string]int `json:"statuses"`
}

func (l *lagResult) p(q float64) float64 { return percentile(l.LagsMS, q) }

func (l *lagResult) maxCalls() int64 {
	var m int64
	for _, c := range l.Calls {
		m = max(m, c)
	}
	return m
}

func (l *lagResult) text() string {
	if len(l.LagsMS) == 0 {
		return "no followers"
	}
	s := fmt.Sprintf("%s / %s / %s ms, origin calls %s", msfmt(l.p(50)), msfmt(l.p(99)), msfmt(l.LagsMS[len(l.LagsMS)-1]), callsText(l.Calls))
	if l.Failed > 0 {
		s += fmt.Sprintf(", %d failed", l.Failed)
	}
	return s
}

func msfmt(v float64) string {
	switch {
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10 || v <= -10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func callsText(calls []int64) string {
	lo, hi := calls[0], calls[0]
	for _, c := range calls {
		lo, hi = min(lo, c), max(hi, c)
	}
	if lo == hi {
		return strconv.FormatInt(lo, 10)
	}
	return fmt.Sprintf("%d–%d", lo, hi)
}

// isLeader tells, from the cache header, which reply went to the origin.
func isLeader(sys, cache string) bool {
	switch {
	case strings.HasPrefix(sys, "filter"):
		return strings.Contains(cache, "fwd=miss") && !strings.Contains(cache, "collapsed")
	case sys == "nginx":
		return cache == "MISS"
	case sys == "varnish":
		return cache == "miss"
	}
	return true // no cache: every reply went to the origin
}

func (r *run) coalesceLag(sysName string, delay int) (*lagResult, error) {
	key := fmt.Sprintf("lag|%s|%d", sysName, delay)
	if v, ok := r.data[key].(*lagResult); ok {
		return v, nil
	}
	sys, err := r.system(sysName)
	if err != nil {
		return nil, err
	}
	clients, err := warmConns(r.ctx, sys.URL, burstN)
	if err != nil {
		return nil, err
	}
	reps := r.s.Reps + 2
	res := &lagResult{System: sysName, DelayMS: delay, Statuses: map[string]int{}}
	url := fmt.Sprintf("%s/coalesce/d%d/v1/chat/completions", sys.URL, delay)
	for rep := 0; rep < reps; rep++ {
		body := chatRequest(fmt.Sprintf("coalesce-%s-%d-%d-%d", sysName, delay, rep, time.Now().UnixNano()))
		before := r.origin.Calls("coalesce")
		replies := burst(r.ctx, clients, url, body, authHeader)
		res.Calls = append(res.Calls, r.origin.Calls("coalesce")-before)
		for _, p := range replies {
			cs := p.Cache
			if i := strings.Index(cs, "; ttl="); i >= 0 {
				cs = cs[:i]
			}
			res.Statuses[cs]++
		}
		var leaderDone time.Time
		for _, p := range replies {
			if p.Err == nil && isLeader(sysName, p.Cache) && (leaderDone.IsZero() || p.Done.Before(leaderDone)) {
				leaderDone = p.Done
			}
		}
		first := time.Time{}
		for _, p := range replies {
			if first.IsZero() || p.Start.Before(first) {
				first = p.Start
			}
		}
		if leaderDone.IsZero() { // no reply says it went upstream: take the first to finish
			for _, p := range replies {
				if leaderDone.IsZero() || p.Done.Before(leaderDone) {
					leaderDone = p.Done
				}
			}
		}
		res.LeaderMS = append(res.LeaderMS, float64(leaderDone.Sub(first).Microseconds())/1000)
		leaderSeen := false
		for _, p := range replies {
			if p.Err != nil || p.Status != 200 {
				res.Failed++
				continue
			}
			if p.Done.Equal(leaderDone) && !leaderSeen {
				leaderSeen = true
				continue
			}
			res.LagsMS = append(res.LagsMS, float64(p.Done.Sub(leaderDone).Microseconds())/1000)
		}
		if err := r.sleep(50 * time.Millisecond); err != nil {
			return nil, err
		}
	}
	sort.Float64s(res.LagsMS)
	if sys.kind == "envoy" {
		st, _ := sys.Stats()
		var per []string
		for w := 0; w < 2; w++ {
			for name, v := range st {
				if strings.HasPrefix(name, "listener.127.0.0.1_") && strings.HasSuffix(name, fmt.Sprintf(".worker_%d.downstream_cx_total", w)) {
					per = append(per, strconv.FormatInt(v, 10))
				}
			}
		}
		res.Spread = strings.Join(per, "/")
		var ev []string
		for name, v := range st {
			if strings.HasPrefix(name, "wasmcustom.modelcache_route.coalesce.") && v > 0 {
				ev = append(ev, fmt.Sprintf("%s=%d", strings.TrimPrefix(name, "wasmcustom.modelcache_route.coalesce."), v))
			}
		}
		sort.Strings(ev)
		r.logf("  %s filter events: %s", sysName, strings.Join(ev, " "))
	}
	r.data[key] = res
	r.logf("  %-10s D=%dms lag p50/p99/max %s (leader at %s ms) %v", sysName, delay, res.text(), msfmt(median(res.LeaderMS)), res.Statuses)
	return res, nil
}

func runS5(r *run) error { return r.coalesceScenario("S5", "filter", "1 worker", 5) }
func runS6(r *run) error { return r.coalesceScenario("S6", "filter-2w", "2 workers", 10) }

func (r *run) coalesceScenario(id, sysName, workers string, targetMS float64) error {
	for _, d := range originDelays {
		f, err := r.coalesceLag(sysName, d)
		if err != nil {
			return err
		}
		r.stopSystem(sysName)
		var base []string
		for _, peer := range []struct{ sys, name string }{{"nginx", "nginx"}, {"varnish", "Varnish"}, {"nofilter", "no cache"}} {
			if peer.sys == "nofilter" && id != "S5" {
				continue
			}
			p, err := r.coalesceLag(peer.sys, d)
			if err != nil {
				return err
			}
			r.stopSystem(peer.sys)
			if peer.sys == "nofilter" {
				base = append(base, fmt.Sprintf("no cache: origin calls %s", callsText(p.Calls)))
				continue
			}
			base = append(base, peer.name+" "+p.text())
		}
		p99 := f.p(99)
		ok := p99 <= targetMS && f.maxCalls() == 1 && f.Failed == 0
		metric := fmt.Sprintf("follower lag p50/p99/max, %d requests, origin %d ms, %s", burstN, d, workers)
		val := f.text()
		if f.Spread != "" && id == "S6" {
			val += " (connections per worker " + f.Spread + ")"
		}
		r.add(row{Scenario: id, Metric: metric, Value: val, Baselines: strings.Join(base, "; "),
			Target: fmt.Sprintf("p99 ≤ %.0f ms, 1 call", targetMS), Met: met(ok)})
	}
	return nil
}
