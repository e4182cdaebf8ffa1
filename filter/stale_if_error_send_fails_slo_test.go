//go:build !wasip1

package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// README freshness_slo: the stale-serving rate is the share of responses
// "older than max_age" ("a miss is age 0, and so is a reply of the cache's
// own that serves no entry"). A stale entry within stale_if_error that the
// host cannot send (Stream.SendFailed, review Z67's branch) lets the model's
// 503 pass as a miss (Cache-Status fwd=miss): no cached content reached the
// client, yet the response is counted stale in the SLO, because the
// ActServeEntry's s.aged stays set (the old SendFailed path reset it
// through ActForward). 20 such misses breach the objective.
func TestSendFailedStaleIfErrorIsNotCountedStaleInSLO(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"10s","stale_if_error":"1h",
	  "freshness_slo":{"max_age":"30s","max_fraction":0.05,"window":"1m","min_samples":10}}]}`
	f := &faultPlan{}
	hs := newHarness(t, cfg, withFaults(f), withWorkers(1))
	for k := 0; k < 5; k++ {
		if r := hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("slo sf ", k))); r.Status != 200 {
			t.Fatalf("setup %d", r.Status)
		}
	}
	hs.clock.Advance(5 * time.Minute) // stale, within stale_if_error
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		u.Respond(503, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":"overloaded"}`))
		return true
	}
	f.set(failSendLocalResponse)
	for r := 0; r < 2; r++ {
		for i := 0; i < 10; i++ {
			res := hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("slo sf ", i%5)))
			if res.Status != 503 {
				t.Fatalf("status %d, want the model's 503 (fail open) (%s)", res.Status, hdr(res, "cache-status"))
			}
			expectCacheStatus(t, res, "fwd=miss", "fwd-status=503")
		}
		hs.h.AdvanceAndTick(2 * time.Second)
	}
	f.set(nil)
	if f.failed() == 0 {
		t.Fatal("setup: no local reply was attempted")
	}
	g, _ := hs.h.Gauge("modelcache_route.chat.slo.stale_rate_ppm")
	br := hs.counter("modelcache_route.chat.slo.breaches")
	if g != 0 || br != 0 {
		t.Fatalf("20 responses that were the model's own 503 (Cache-Status fwd=miss, no cached content) count stale: slo.stale_rate_ppm %d, slo.breaches %d (want 0, 0)", g, br)
	}
}
