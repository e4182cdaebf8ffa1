//go:build !wasip1

package main

import (
	"fmt"
	"testing"
	"time"
)

// README freshness_slo: "With fewer than min_samples responses in the
// window the last verdict (and rate) stands while any of them is stale,
// so a few requests do not flap the alert". Review Z70's mend clears every
// shared bucket that starts beyond now+10 s; after a wall-clock step back
// (2 min here) that is the whole last minute of a route whose every
// response is stale, and the flush that clears them takes the window for
// lapsed (windowEmpty before its own counts): the breach is reported
// recovered while every response is still served stale, then breached
// again a few seconds later — a false recovery and a second breach.
func TestSLOContinuousBreachHoldsOverClockStepBack(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "freshness_slo":{"max_age":"10s","max_fraction":0.05,"window":"1m","min_samples":10}}]}`
	hs := newHarness(t, cfg)
	for k := 0; k < 5; k++ {
		hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("step ", k)))
	}
	hs.clock.Advance(5 * time.Minute) // every answer from now on is 3-5 min old: stale for the SLO
	second := func(s int) {
		for i := 0; i < 4; i++ {
			hs.post(i%2, "/v1/chat/completions", chatBody(fmt.Sprint("step ", (s+i)%5)))
		}
		hs.h.AdvanceAndTick(time.Second)
	}
	for s := 0; s < 60; s++ {
		second(s)
	}
	if g, _ := hs.h.Gauge("modelcache_route.chat.slo.breached"); g != 1 {
		t.Fatalf("setup: breached gauge = %d", g)
	}
	if got := hs.counter("modelcache_route.chat.slo.breaches"); got != 1 {
		t.Fatalf("setup: breaches = %d", got)
	}
	// NTP steps the wall clock back 2 minutes; the same stale traffic goes on.
	hs.clock.Set(hs.clock.Now().Add(-2 * time.Minute))
	for s := 0; s < 30; s++ {
		second(s)
		if g, _ := hs.h.Gauge("modelcache_route.chat.slo.breached"); g != 1 {
			ppm, _ := hs.h.Gauge("modelcache_route.chat.slo.stale_rate_ppm")
			t.Errorf("%d s after the step back, every response still stale: slo.breached = %d (stale_rate_ppm %d)", s+1, g, ppm)
		}
	}
	if got := hs.counter("modelcache_route.chat.slo.breaches"); got != 1 {
		t.Errorf("one continuous breach counted %d times (slo.breaches)", got)
	}
}
