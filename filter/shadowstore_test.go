//go:build !wasip1

package main

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/modelcache/modelcache/e2e/modelsim"
)

// A shadow answer is admitted like any other: by the route's statuses, not
// by a hard-coded 200. Here the route caches 203 answers, the model moves on
// and answers 203: the comparison happens and the diverged entry is
// replaced.
func TestShadowHonorsRouteStatuses(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "statuses":[200,203],
	  "shadow":{"sample":1.0,"max_concurrent":4,"min_samples":100,"max_divergence":0.5,"window":"10m"}}]}`
	hs := newHarness(t, cfg, withHTTPCalls())
	body := chatBody("non-authoritative")
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "miss", "stored")
	want, _ := modelsim.ExpectedBody("other", "/v1/chat/completions", []byte(body))
	hs.sim.SetScript(func(w http.ResponseWriter, _ *http.Request, _ []byte) bool {
		w.Header().Set("content-type", "application/json")
		w.WriteHeader(203)
		_, _ = w.Write(want)
		return true
	})
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", body), "hit")
	hs.h.Drain()
	if hs.counter("modelcache_route.chat.shadow.errors") != 0 || hs.counter("modelcache_route.chat.shadow.diverge") != 1 {
		t.Fatalf("shadow errors = %d, diverge = %d; a 203 the route caches was not compared",
			hs.counter("modelcache_route.chat.shadow.errors"), hs.counter("modelcache_route.chat.shadow.diverge"))
	}
	hs.sim.SetScript(nil)
	res := hs.post(0, "/v1/chat/completions", body)
	if !bytes.Equal(res.Body, want) || res.Status != 203 {
		t.Fatalf("diverged entry not replaced by the 203 answer: %d %s", res.Status, hdr(res, "cache-status"))
	}
}

// The entry a shadow comparison stores keeps the time the model took to
// answer (XFetch's δ): without it, early refresh can never refresh that
// entry before it expires.
func TestShadowReplacementKeepsComputeTime(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"60s",
	  "early_refresh":{"enabled":true,"beta":1},
	  "shadow":{"sample":1.0,"max_concurrent":4,"min_samples":100,"max_divergence":0.5,"window":"10m"}}]}`
	hs := newHarness(t, cfg, withHTTPCalls())
	body := chatBody("shadow-xfetch")
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "miss", "stored")
	if err := hs.sim.UpdateKnobs(func(k *modelsim.Knobs) { k.ModelVersion = "other" }); err != nil {
		t.Fatal(err)
	}
	hs.holdCalls = true
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", body), "hit")
	calls := hs.h.PendingHTTPCalls()
	if len(calls) != 1 {
		t.Fatalf("%d background calls, want the one shadow call", len(calls))
	}
	// The model takes 2 s to answer the shadow call: δ = 2000 ms.
	hs.clock.Advance(2 * time.Second)
	hs.answerCall(calls[0])
	hs.h.Drain()
	if hs.counter("modelcache_route.chat.shadow.diverge") != 1 {
		t.Fatalf("diverge = %d", hs.counter("modelcache_route.chat.shadow.diverge"))
	}
	// 100 ms before the replaced entry expires, P(refresh) ≈ 0.95 per hit
	// with δ = 2 s, and 0 with δ = 0.
	hs.clock.Advance(59900 * time.Millisecond)
	for i := 0; i < 10; i++ {
		expectCacheStatus(t, hs.post(i%2, "/v1/chat/completions", body), "hit")
	}
	if n := hs.counter("modelcache_route.chat.background.started"); n != 1 {
		t.Fatalf("early refreshes of the replaced entry = %d, want 1", n)
	}
}
