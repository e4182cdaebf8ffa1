//go:build !wasip1

package main

import (
	"fmt"
	"testing"
	"time"
)

// Review Z28. README (freshness_slo): the breach is the share of a
// route's responses older than max_age "over a sliding window"; RATIONALE /
// cachecore.SLOStatus: "an idle route's empty window" clears the verdict,
// and only a window under min_samples *with* a stale response keeps the
// last one. A proxy suspended (VM paused, host asleep) runs no tick while
// the route is idle for days: the empty window is never evaluated. After
// the resume, the first flush carries the new requests' counts, and a
// breach measured three days earlier is kept by a window of 10 responses
// whose stale rate (10%) is under the objective (20%): the breached gauge
// says 1 although no window since the breach's has held a breach. With
// one tick during the idle days, the same burst leaves it 0. (After a
// resume every VM's timer is overdue and their order is arbitrary: the
// verdict depends on whether a VM without counts happens to flush first;
// here the VM that served the burst does.)
func TestSLOBreachFromDaysAgoIsNotKeptAfterASuspension(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"720h",
	  "freshness_slo":{"max_age":"10s","max_fraction":0.2,"window":"1m","min_samples":50}}]}`
	run := func(tickWhileIdle bool) int64 {
		hs := newHarness(t, cfg)
		for k := 0; k < 5; k++ {
			hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", k)))
		}
		hs.clock.Advance(20 * time.Second)
		for r := 0; r < 3; r++ {
			for i := 0; i < 25; i++ {
				hs.post(i%2, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", i%5)))
			}
			hs.h.AdvanceAndTick(2 * time.Second)
		}
		if g, _ := hs.h.Gauge("modelcache_route.chat.slo.breached"); g != 1 {
			t.Fatalf("setup: breached gauge = %d", g)
		}
		// The proxy is suspended for three days: no tick (or, for the
		// control, one tick in the middle of the idle time).
		if tickWhileIdle {
			hs.h.AdvanceAndTick(36 * time.Hour)
			hs.clock.Advance(36 * time.Hour)
		} else {
			hs.clock.Advance(72 * time.Hour)
		}
		// Resumed: a burst before the first tick, 1 stale hit and 9
		// fresh answers (10% stale, objective 20%).
		hs.post(0, "/v1/chat/completions", chatBody("slo 0"))
		for i := 0; i < 9; i++ {
			hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("new ", i)))
		}
		// Worker 0, which served the burst, ticks first after the resume.
		hs.clock.Advance(2 * time.Second)
		hs.h.Tick(0)
		hs.h.Drain()
		g, _ := hs.h.Gauge("modelcache_route.chat.slo.breached")
		ppm, _ := hs.h.Gauge("modelcache_route.chat.slo.stale_rate_ppm")
		t.Logf("idle tick %v: breached %d ppm %d logs %q", tickWhileIdle, g, ppm, hs.h.LogsContaining("stale-serving SLO"))
		return g
	}
	control := run(true)
	got := run(false)
	if got != control || got != 0 {
		t.Fatalf("breached gauge after 3 idle days and a burst of 10 responses, 1 stale (10%%, objective 20%%): %d without a tick while idle, %d with one; "+
			"a breach measured 3 days ago, 4320 windows of 1m before, is kept", got, control)
	}
}
