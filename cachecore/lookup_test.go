package cachecore

import (
	"math"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestHitResponseCustomCacheName(t *testing.T) {
	env := newEnv(t, `{"cache_name":"edge-1","routes":[{"name":"j","kind":"json","path_prefix":"/j","shared":true,"ttl":"90s"}]}`)
	req, _ := env.lookup("j", nil, `{"q":1}`)
	env.fill(req, hdr("content-type", "application/problem+json"), `{"a":1}`, 0)
	req, _ = env.lookup("j", nil, `{"q":1}`)
	_, headers, _ := env.cache.HitResponse(req)
	if got := headerValue(headers, "cache-status"); got != "edge-1; hit; ttl=90" {
		t.Fatalf("cache-status %q", got)
	}
	if got := headerValue(headers, "content-type"); got != "application/problem+json" {
		t.Fatalf("content-type %q", got)
	}
}

// TestFreshness: TTL, stale-while-revalidate, stale-if-error and the
// client's Cache-Control, on an entry stored with a 300 s TTL.
func TestFreshness(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name      string
		route     string // chat: SWR 30 s; sie: stale-if-error 60 s; nocc: ignores Cache-Control
		after     time.Duration
		cc        string
		extra     [][2]string
		want      Decision
		status    Status
		wantEntry bool
	}{
		{"fresh", "chat", 0, "", nil, Serve, StatusHit, true},
		{"last fresh millisecond", "chat", 300*time.Second - ms, "", nil, Serve, StatusHit, true},
		{"stale within SWR", "chat", 300 * time.Second, "", nil, Serve, StatusStale, true},
		{"end of SWR", "chat", 330*time.Second - ms, "", nil, Serve, StatusStale, true},
		{"past SWR", "chat", 330 * time.Second, "", nil, Forward, StatusMiss, false},
		{"max-age satisfied", "chat", 60 * time.Second, "max-age=60", nil, Serve, StatusHit, true},
		{"max-age exceeded", "chat", 60*time.Second + ms, "max-age=60", nil, Forward, StatusMiss, true},
		{"max-age=0 at age 0", "chat", 0, "max-age=0", nil, Serve, StatusHit, true},
		{"max-age=0 at age 1 s", "chat", time.Second, "max-age=0", nil, Forward, StatusMiss, true},
		{"malformed max-age is 0", "chat", time.Second, "max-age=soon", nil, Forward, StatusMiss, true},
		{"large max-age does not extend freshness", "chat", 310 * time.Second, "max-age=600", nil, Serve, StatusStale, true},
		{"max-age refuses SWR", "chat", 310 * time.Second, "max-age=10", nil, Forward, StatusMiss, true},
		{"min-fresh satisfied", "chat", 100 * time.Second, "min-fresh=200", nil, Serve, StatusHit, true},
		{"min-fresh not satisfied", "chat", 100*time.Second + ms, "min-fresh=200", nil, Forward, StatusMiss, true},
		{"min-fresh refuses SWR", "chat", 305 * time.Second, "min-fresh=1", nil, Forward, StatusMiss, true},
		{"only-if-cached fresh", "chat", 0, "only-if-cached", nil, Serve, StatusHit, true},
		{"only-if-cached stale within SWR", "chat", 310 * time.Second, "only-if-cached", nil, Serve, StatusStale, true},
		{"only-if-cached and nothing usable", "chat", 330 * time.Second, "only-if-cached", nil, Unavailable, StatusUnavailable, false},
		{"only-if-cached and too old", "chat", 100 * time.Second, "only-if-cached, max-age=10", nil, Unavailable, StatusUnavailable, true},
		{"no-cache skips the lookup", "chat", 0, "no-cache", nil, Forward, StatusRevalidate, false},
		{"pragma no-cache skips the lookup", "chat", 0, "", hdr("pragma", "no-cache"), Forward, StatusRevalidate, false},
		{"stale kept for stale-if-error", "sie", 310 * time.Second, "", nil, Forward, StatusMiss, true},
		{"max-stale without value", "sie", 310 * time.Second, "max-stale", nil, Serve, StatusStale, true},
		{"max-stale enough", "sie", 310 * time.Second, "max-stale=10", nil, Serve, StatusStale, true},
		{"max-stale too little", "sie", 310 * time.Second, "max-stale=9", nil, Forward, StatusMiss, true},
		{"max-stale past the stale window", "sie", 360 * time.Second, "max-stale", nil, Forward, StatusMiss, false},
		{"no SWR on a stale-if-error route", "sie", 300 * time.Second, "", nil, Forward, StatusMiss, true},
		{"Cache-Control ignored", "nocc", 0, "no-cache, max-age=0", nil, Serve, StatusHit, true},
		{"Cache-Control ignored when stale", "nocc", 301 * time.Second, "max-stale", nil, Forward, StatusMiss, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, testConfig)
			body := chatRequest("freshness")
			req, _ := env.lookup(tc.route, alice, body)
			env.fill(req, jsonCT, chatResponse("ok"), 10)
			env.clock.Advance(tc.after)
			h := append(hdr("authorization", "Bearer sk-alice", "cache-control", tc.cc), tc.extra...)
			req, d := env.lookup(tc.route, h, body)
			if d != tc.want || req.Status != tc.status {
				t.Fatalf("Lookup = %v/%s, want %v/%s", d, req.Status, tc.want, tc.status)
			}
			if (req.Entry != nil) != tc.wantEntry {
				t.Fatalf("entry kept = %v, want %v", req.Entry != nil, tc.wantEntry)
			}
		})
	}
}

func TestOnlyIfCachedMiss(t *testing.T) {
	env := newEnv(t, testConfig)
	req, d := env.lookup("chat", hdr("authorization", "a", "cache-control", "only-if-cached"), chatRequest("never stored"))
	if d != Unavailable || req.Status != StatusUnavailable {
		t.Fatalf("Lookup = %v/%s", d, req.Status)
	}
	var cs CacheStatus
	cs.Status = req.Status
	if got := string(cs.AppendHeader(nil, "modelcache")); got != "modelcache; fwd=miss; detail=only-if-cached" {
		t.Fatalf("cache-status %q", got)
	}
}

// TestOnlyIfCachedNeverForwards: only-if-cached means "answer 504 rather
// than go upstream" (RequestCC, RFC 9111 §5.2.1.7) — for a paid model API
// it is a cost guard. It must hold whatever else makes the cache unable to
// answer: no-cache, no identity, an unkeyable body.
func TestOnlyIfCachedNeverForwards(t *testing.T) {
	tests := []struct {
		name    string
		headers [][2]string
		body    string
	}{
		{"with no-cache", hdr("authorization", "a", "cache-control", "only-if-cached, no-cache"), chatRequest("q")},
		{"without identity", hdr("cache-control", "only-if-cached"), chatRequest("q")},
		{"with a malformed body", hdr("authorization", "a", "cache-control", "only-if-cached"), `{"model":`},
		{"with a body too large", hdr("authorization", "a", "cache-control", "only-if-cached"), chatRequest(strings.Repeat("x", 9000))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, testConfig)
			// The answer is cached for the well-formed request, to show the
			// cache would rather go upstream than use it.
			req, _ := env.lookup("chat", hdr("authorization", "a"), chatRequest("q"))
			env.fill(req, jsonCT, chatResponse("cached"), 1)
			req, d := env.lookup("chat", tc.headers, tc.body)
			if d == Forward {
				t.Fatalf("Lookup = Forward (status %s, reason %s): an only-if-cached request goes upstream", req.Status, req.Reason)
			}
		})
	}
}

func TestHitResponseStale(t *testing.T) {
	env := newEnv(t, testConfig)
	body := chatRequest("stale")
	req, _ := env.lookup("chat", alice, body)
	env.fill(req, jsonCT, chatResponse("ok"), 10)
	stored := env.clock.Now()
	for _, tc := range []struct {
		after      time.Duration
		age, cache string
	}{
		{300 * time.Second, "300", "modelcache; hit; fwd=stale; ttl=0"},
		{300*time.Second + 500*time.Millisecond, "300", "modelcache; hit; fwd=stale; ttl=-1"},
		{312 * time.Second, "312", "modelcache; hit; fwd=stale; ttl=-12"},
	} {
		t.Run(tc.after.String(), func(t *testing.T) {
			env.clock.Set(stored.Add(tc.after))
			req, d := env.lookup("chat", alice, body)
			if d != Serve || req.Status != StatusStale {
				t.Fatalf("Lookup = %v/%s", d, req.Status)
			}
			_, headers, _ := env.cache.HitResponse(req)
			if headerValue(headers, "age") != tc.age || headerValue(headers, "cache-status") != tc.cache {
				t.Fatalf("headers %q", headers)
			}
		})
	}
}

// hitFor stores a response for route with the given XFetch δ and returns a
// fresh hit on it.
func hitFor(t *testing.T, env *testEnv, route string, computeMs uint32) *Request {
	t.Helper()
	body := chatRequest("xfetch " + route)
	req, _ := env.lookup(route, alice, body)
	env.fill(req, jsonCT, chatResponse("ok"), computeMs)
	req, d := env.lookup(route, alice, body)
	if d != Serve || req.Status != StatusHit {
		t.Fatalf("no hit: %v %s", d, req.Status)
	}
	return req
}

// at moves the clock to `remaining` before the entry's expiry.
func at(env *testEnv, req *Request, remaining time.Duration) {
	env.clock.Set(time.UnixMilli(req.Entry.FreshUntil).Add(-remaining))
}

func TestEarlyRefresh(t *testing.T) {
	const delta = 1000 // ms: how long the upstream took

	t.Run("never without early_refresh", func(t *testing.T) {
		env := newEnv(t, testConfig)
		req := hitFor(t, env, "sie", delta)
		for i := 0; i < 1000; i++ {
			at(env, req, time.Millisecond)
			if env.cache.EarlyRefresh(req) {
				t.Fatal("refresh on a route without early_refresh")
			}
		}
	})
	t.Run("never for a stale hit or a miss", func(t *testing.T) {
		env := newEnv(t, testConfig)
		req := hitFor(t, env, "chat", delta)
		env.clock.Set(time.UnixMilli(req.Entry.FreshUntil).Add(time.Second))
		req, d := env.lookup("chat", alice, chatRequest("xfetch chat"))
		if d != Serve || req.Status != StatusStale {
			t.Fatalf("not stale: %s", req.Status)
		}
		miss, _ := env.lookup("chat", alice, chatRequest("other"))
		for i := 0; i < 1000; i++ {
			if env.cache.EarlyRefresh(req) || env.cache.EarlyRefresh(miss) {
				t.Fatal("early refresh of a stale hit or a miss")
			}
		}
	})
	t.Run("never for a zero recompute time", func(t *testing.T) {
		env := newEnv(t, testConfig)
		req := hitFor(t, env, "chat", 0)
		for _, remaining := range []time.Duration{time.Millisecond, time.Second, time.Minute} {
			at(env, req, remaining)
			for i := 0; i < 1000; i++ {
				if env.cache.EarlyRefresh(req) {
					t.Fatalf("refresh with δ=0 at %v before expiry", remaining)
				}
			}
		}
	})
	t.Run("bounded by the smallest draw", func(t *testing.T) {
		// U is at least 2^-53, so the gap is at most δ·β·53·ln 2 ≈ 36.74 δβ.
		ln2 := math.Ln2
		bound := time.Duration(delta * 53 * ln2 * float64(time.Millisecond))
		for _, tc := range []struct {
			name  string
			rand  func() uint64
			route string
			beta  float64
		}{
			{"smallest U, beta 1", func() uint64 { return 0 }, "chat", 1},
			{"smallest U, beta 2", func() uint64 { return 0 }, "beta2", 2},
		} {
			t.Run(tc.name, func(t *testing.T) {
				env := newEnv(t, testConfig)
				req := hitFor(t, env, tc.route, delta)
				env.cache.rand = tc.rand // after storing: a generation is never 0
				b := time.Duration(float64(bound) * tc.beta)
				at(env, req, b+2*time.Millisecond)
				if env.cache.EarlyRefresh(req) {
					t.Errorf("refresh %v before expiry, beyond the bound %v", b+2*time.Millisecond, b)
				}
				at(env, req, b-2*time.Millisecond)
				if !env.cache.EarlyRefresh(req) {
					t.Errorf("no refresh %v before expiry with the smallest U", b-2*time.Millisecond)
				}
			})
		}
	})
	t.Run("largest draw never refreshes a fresh entry", func(t *testing.T) {
		env := newEnv(t, testConfig)
		req := hitFor(t, env, "chat", delta)
		env.cache.rand = func() uint64 { return math.MaxUint64 } // U = 1, ln U = 0
		at(env, req, time.Millisecond)
		if env.cache.EarlyRefresh(req) {
			t.Fatal("refresh with U = 1")
		}
	})
	t.Run("probability rises as expiry nears", func(t *testing.T) {
		// P(refresh at r before expiry) = P(-δβ ln U ≥ r) = exp(-r/(δβ)).
		for _, tc := range []struct {
			route string
			beta  float64
		}{{"chat", 1}, {"beta2", 2}} {
			t.Run(tc.route, func(t *testing.T) {
				env := newEnv(t, testConfig)
				req := hitFor(t, env, tc.route, delta)
				const n = 4000
				prev := -1.0
				for _, r := range []float64{8000, 5000, 3000, 2000, 1000, 500, 100, 1} {
					at(env, req, time.Duration(r)*time.Millisecond)
					k := 0
					for i := 0; i < n; i++ {
						if env.cache.EarlyRefresh(req) {
							k++
						}
					}
					p := float64(k) / n
					want := math.Exp(-r / (delta * tc.beta))
					if math.Abs(p-want) > 0.03 {
						t.Errorf("r=%vms: P = %.3f, want %.3f", r, p, want)
					}
					if p < prev {
						t.Errorf("r=%vms: P fell from %.3f to %.3f", r, prev, p)
					}
					prev = p
				}
			})
		}
	})
	t.Run("first refresh of a hot key", func(t *testing.T) {
		// One hit every h ms. The first refresh comes at R ms before expiry
		// with P(R < r) = exp(-(δ/h)·e^(-r/δ)): a Gumbel law with location
		// δ·ln(δ/h), scale δ, mean δ·(ln(δ/h) + γ).
		const (
			h      = 10
			trials = 400
			gamma  = 0.5772156649
		)
		env := newEnv(t, testConfig)
		req := hitFor(t, env, "chat", delta)
		mu := delta * math.Log(delta/h)
		var firsts []float64
		for trial := 0; trial < trials; trial++ {
			remaining := 20 * delta
			for {
				at(env, req, time.Duration(remaining)*time.Millisecond)
				if env.cache.EarlyRefresh(req) {
					break
				}
				remaining -= h
				if remaining < 0 {
					t.Fatal("no refresh by expiry")
				}
			}
			firsts = append(firsts, float64(remaining))
		}
		sort.Float64s(firsts)
		mean := 0.0
		for _, f := range firsts {
			mean += f
		}
		mean /= trials
		quantile := func(q float64) float64 { return firsts[int(q*trials)] }
		wantMean := mu + gamma*delta
		t.Logf("first refresh before expiry: mean %.0f ms (want %.0f), 5%% %.0f ms, median %.0f ms, 95%% %.0f ms",
			mean, wantMean, quantile(0.05), quantile(0.5), quantile(0.95))
		if math.Abs(mean-wantMean) > 0.3*delta {
			t.Errorf("mean %.0f ms before expiry, want %.0f ± %d", mean, wantMean, int(0.3*delta))
		}
		gumbel := func(q float64) float64 { return mu - delta*math.Log(-math.Log(q)) }
		for _, q := range []float64{0.05, 0.5, 0.95} {
			if got, want := quantile(q), gumbel(q); math.Abs(got-want) > 0.6*delta {
				t.Errorf("%.0f%% quantile %.0f ms, want %.0f ms", q*100, got, want)
			}
		}
	})
}

func TestLookupFailsOpen(t *testing.T) {
	env := newEnv(t, testConfig)
	req, _ := env.lookup("chat", alice, chatRequest("x"))
	env.fill(req, jsonCT, chatResponse("y"), 1)
	// (An index read error alone does not fail the lookup: an entry in its
	// preferred way is read directly, without the index.)
	for _, prefix := range []string{"mc:e:", "mc:m:"} {
		t.Run(prefix, func(t *testing.T) {
			s := &flakyStore{Store: env.store, getErr: func(k string) error {
				if strings.HasPrefix(k, prefix) {
					return errStoreDown
				}
				return nil
			}}
			c := New(env.cache.cfg, Options{Store: s, Now: env.clock.Now, Rand: seededRand(2)})
			req := c.Begin(env.route("chat"), "POST", "/v1/chat/completions", alice)
			c.SetBody(req, []byte(chatRequest("x")))
			if d := c.Lookup(req); d != Forward || req.Status != StatusBypass || req.Reason != ReasonInternal {
				t.Fatalf("Lookup = %v %s/%s, want forward, bypass/internal", d, req.Status, req.Reason)
			}
		})
	}
}
