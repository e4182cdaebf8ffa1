//go:build !wasip1

package main

import (
	"fmt"
	"testing"
	"time"
)

func TestStaleServingSLO(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "freshness_slo":{"max_age":"10s","max_fraction":0.05,"window":"1m","min_samples":10}}]}`
	hs := newHarness(t, cfg)
	for k := 0; k < 5; k++ {
		hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", k)))
	}
	// Young answers: within the objective, nothing fires.
	for i := 0; i < 20; i++ {
		hs.post(i%2, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", i%5)))
	}
	hs.h.AdvanceAndTick(2 * time.Second)
	if hs.counter("modelcache_route.chat.slo.breaches") != 0 {
		t.Fatal("breach without old answers")
	}
	// The same entries, now 20 s old: every hit is past the budget.
	hs.clock.Advance(20 * time.Second)
	for i := 0; i < 20; i++ {
		hs.post(i%2, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", i%5)))
	}
	hs.h.AdvanceAndTick(2 * time.Second)
	for i := 0; i < 20; i++ {
		hs.post(i%2, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", i%5)))
	}
	hs.h.AdvanceAndTick(2 * time.Second)
	if got := hs.counter("modelcache_route.chat.slo.breaches"); got != 1 {
		t.Fatalf("breaches = %d, want exactly 1", got)
	}
	if n := len(hs.h.LogsContaining("stale-serving SLO breached on route chat")); n != 1 {
		t.Fatalf("%d breach lines, want 1", n)
	}
	if g, _ := hs.h.Gauge("modelcache_route.chat.slo.breached"); g != 1 {
		t.Fatalf("breached gauge = %d", g)
	}
	// Fresh answers only, for longer than the window: one recovery line.
	for round := 0; round < 40; round++ {
		hs.post(round%2, "/v1/chat/completions", chatBody(fmt.Sprint("new ", round)))
		hs.h.AdvanceAndTick(2 * time.Second)
	}
	if n := len(hs.h.LogsContaining("stale-serving SLO recovered on route chat")); n != 1 {
		t.Fatalf("%d recovery lines, want 1", n)
	}
	if hs.counter("modelcache_route.chat.slo.breaches") != 1 {
		t.Fatal("breached again")
	}
}

// The stale-serving SLO counts responses whose answer is older than
// max_age. A 504 for only-if-cached (the cache had nothing acceptable, so
// it served nothing) carries no cached answer: it must not count as a
// stale serve, whatever stale copy the lookup happened to see.
func TestSLOIgnoresLocalRepliesThatServeNoEntry(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"10s","stale_if_error":"1h",
	  "freshness_slo":{"max_age":"30s","max_fraction":0.05,"window":"1m","min_samples":10}}]}`
	hs := newHarness(t, cfg)
	for k := 0; k < 5; k++ {
		hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", k)))
	}
	hs.clock.Advance(5 * time.Minute) // stale (kept for stale-if-error)
	for r := 0; r < 2; r++ {
		for i := 0; i < 20; i++ {
			res := hs.post(i%2, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", i%5)), "cache-control", "only-if-cached")
			if res.Status != 504 {
				t.Fatalf("status %d, want 504 (%s)", res.Status, hdr(res, "cache-status"))
			}
		}
		hs.h.AdvanceAndTick(2 * time.Second)
	}
	if got := hs.counter("modelcache_route.chat.slo.breaches"); got != 0 {
		g, _ := hs.h.Gauge("modelcache_route.chat.slo.stale_rate_ppm")
		t.Fatalf("40 answers of 504 (nothing served from cache) breached the stale-serving SLO: breaches %d, stale_rate_ppm %d", got, g)
	}
}

// A partly cached embeddings batch answers with cached vectors merged into
// the model's: its answer is as old as its oldest cached item. Batches
// whose every answer holds 5-minute-old vectors must breach an SLO of
// max_age 30 s, as the same vectors served in whole-batch hits do.
func TestSLOCountsCachedItemsOfPartialBatches(t *testing.T) {
	cfg := `{"routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h",
	  "freshness_slo":{"max_age":"30s","max_fraction":0.05,"window":"1m","min_samples":10}}]}`
	hs := newHarness(t, cfg)
	old := chunks(0, 20)
	hs.post(0, "/v1/embeddings", embReq(old, ""))
	hs.clock.Advance(5 * time.Minute)
	for r := 0; r < 2; r++ {
		for i := 0; i < 10; i++ {
			k := r*10 + i
			res := hs.post(k%2, "/v1/embeddings", embReq([]string{old[k], fmt.Sprint("new item ", k)}, ""))
			expectCacheStatus(t, res, "fwd=partial")
		}
		hs.h.AdvanceAndTick(2 * time.Second)
	}
	g, _ := hs.h.Gauge("modelcache_route.emb.slo.stale_rate_ppm")
	if got := hs.counter("modelcache_route.emb.slo.breaches"); got != 1 {
		t.Fatalf("20 answers each holding a 5-minute-old cached vector (max_age 30s): breaches %d, stale_rate_ppm %d", got, g)
	}
}

// sloBreach breaches route chat's SLO (max_age 10s, min_samples 10, window
// 1m): 60 hits on 20-second-old entries over three flushes.
func sloBreach(t *testing.T, hs *harness) {
	t.Helper()
	for k := 0; k < 5; k++ {
		hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("idle ", k)))
	}
	hs.clock.Advance(20 * time.Second)
	for r := 0; r < 3; r++ {
		for i := 0; i < 20; i++ {
			hs.post(i%2, "/v1/chat/completions", chatBody(fmt.Sprint("idle ", i%5)))
		}
		hs.h.AdvanceAndTick(2 * time.Second)
	}
	if g, _ := hs.h.Gauge("modelcache_route.chat.slo.breached"); g != 1 {
		t.Fatalf("setup: breached gauge = %d", g)
	}
}

// A route that stops serving empties its window: neither gauge may go on
// claiming that every response in it is stale and the objective breached
// (the alert would fire for good on an idle route). The empty window
// clears the breach, with one recovery line.
func TestSLOBreachClearsOnIdleRoute(t *testing.T) {
	hs := newHarness(t, sloConfig)
	sloBreach(t, hs)
	// No traffic at all for 30 minutes (30 windows), ticking throughout.
	for i := 0; i < 900; i++ {
		hs.h.AdvanceAndTick(2 * time.Second)
	}
	ppm, _ := hs.h.Gauge("modelcache_route.chat.slo.stale_rate_ppm")
	br, _ := hs.h.Gauge("modelcache_route.chat.slo.breached")
	if br != 0 || ppm != 0 {
		t.Fatalf("30 minutes (30 windows of 1m) without a single response: slo.breached = %d, slo.stale_rate_ppm = %d", br, ppm)
	}
	if n := len(hs.h.LogsContaining("stale-serving SLO recovered on route chat")); n != 1 {
		t.Fatalf("%d recovery lines, want 1", n)
	}
}

// Under min_samples responses in the window the verdict stands while any
// of them is stale (a few requests do not flap the alert), and clears once
// a whole window holds none: more responses could not have shown a breach
// that those few do not.
func TestSLOBreachUnderMinSamplesHoldsOnlyWhileStale(t *testing.T) {
	hs := newHarness(t, sloConfig)
	sloBreach(t, hs)
	// One stale hit every 10 s: 6 in a window, under min_samples.
	for i := 0; i < 18; i++ {
		hs.post(i%2, "/v1/chat/completions", chatBody(fmt.Sprint("idle ", i%5)))
		hs.h.AdvanceAndTick(10 * time.Second)
	}
	if br, _ := hs.h.Gauge("modelcache_route.chat.slo.breached"); br != 1 {
		t.Fatalf("a few stale responses a window cleared the breach: breached = %d", br)
	}
	// One fresh miss every 10 s: still under min_samples, none stale.
	for i := 0; i < 18; i++ {
		hs.post(i%2, "/v1/chat/completions", chatBody(fmt.Sprint("fresh ", i)))
		hs.h.AdvanceAndTick(10 * time.Second)
	}
	ppm, _ := hs.h.Gauge("modelcache_route.chat.slo.stale_rate_ppm")
	br, _ := hs.h.Gauge("modelcache_route.chat.slo.breached")
	if br != 0 || ppm != 0 {
		t.Fatalf("3 windows of fresh answers only (6 a window): slo.breached = %d, slo.stale_rate_ppm = %d", br, ppm)
	}
}

const sloConfig = `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
  "freshness_slo":{"max_age":"10s","max_fraction":0.05,"window":"1m","min_samples":10}}]}`
