//go:build !wasip1

package main

import (
	"fmt"
	"testing"
	"time"
)

// Review Z136 (slo_age). README (freshness_slo): a window that holds no
// response clears the verdict "also when no worker ran in that window (a
// proxy suspended): the first responses after it start from no verdict";
// the gauges stale_rate_ppm and slo.breached are "for alerting". After a
// suspension longer than the window, the first flush finds the breach
// lapsed and logs the recovery ("1 of 10 responses (10.0%)"), and
// slo.breached goes to 0 — but the window is under min_samples with a
// stale response, so the flush is not Settled and stale_rate_ppm is left
// as it was three days earlier (93.75%): an alert on the rate keeps
// firing on a measurement 4,320 windows old, contradicting the recovery
// line and the breached gauge. With one tick during the idle time the
// same burst leaves the gauge at 0. Expected: after a lapsed breach the
// gauge no longer shows the old window's rate (at most the current
// window's 10%).
func TestSLORateGaugeDoesNotKeepALapsedBreachsRate(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"720h",
	  "freshness_slo":{"max_age":"10s","max_fraction":0.2,"window":"1m","min_samples":50}}]}`
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
	// Suspended for three days: no tick.
	hs.clock.Advance(72 * time.Hour)
	// Resumed: 1 stale hit and 9 fresh answers (10% stale, objective 20%).
	hs.post(0, "/v1/chat/completions", chatBody("slo 0"))
	for i := 0; i < 9; i++ {
		hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("new ", i)))
	}
	hs.clock.Advance(2 * time.Second)
	hs.h.Tick(0)
	hs.h.Drain()
	br, _ := hs.h.Gauge("modelcache_route.chat.slo.breached")
	ppm, _ := hs.h.Gauge("modelcache_route.chat.slo.stale_rate_ppm")
	if br != 0 {
		t.Fatalf("setup: breached gauge = %d after the lapsed breach", br)
	}
	if ppm > 100_000 {
		t.Fatalf("after a 3-day suspension and a burst of 10 responses, 1 stale (the recovery line: %q): slo.breached = 0 but slo.stale_rate_ppm = %d, "+
			"the rate of the window 3 days ago; want at most 100000 (the current window's 10%%)", hs.h.LogsContaining("recovered"), ppm)
	}
}
