//go:build !wasip1

package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z164 (observability). README (Staleness you can see): "With fewer
// than min_samples responses in the window the last verdict (and rate)
// stands while any of them is stale", and "a configuration that ends (a
// reload) zeroes its routes' gauges, which one that keeps the SLO sets
// again within a second". The new configuration sets slo.breached at
// every flush, but slo.stale_rate_ppm only when the window is settled: a
// reload while a breach stands on a thin window leaves the route with
// slo.breached = 1 and slo.stale_rate_ppm = 0 until the window holds
// min_samples again. The shipped alert ModelcacheStaleServingSLOBreached
// then fires with "0 ppm of responses are older than ...", and the
// dashboard's "stale share" reads 0 next to "breached" 1. Expected: the
// new configuration shows the rate that stands (not 0) once it sets the
// verdict. (The reload is two hosts sharing the process's shared data:
// the new configuration's gauges start at 0, as the ended one's
// OnPluginDone leaves them.)
func TestSLORateGaugeIsSetAgainAfterAReloadDuringAStandingBreach(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"720h",
	  "freshness_slo":{"max_age":"10s","max_fraction":0.2,"window":"1m","min_samples":50}}]}`
	old := newHarness(t, cfg)
	start := old.clock.Now()
	for k := 0; k < 5; k++ {
		old.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", k)))
	}
	old.clock.Advance(20 * time.Second)
	for r := 0; r < 3; r++ {
		for i := 0; i < 25; i++ {
			old.post(i%2, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", i%5)))
		}
		old.h.AdvanceAndTick(2 * time.Second)
	}
	if g, _ := old.h.Gauge("modelcache_route.chat.slo.breached"); g != 1 {
		t.Fatalf("setup: breached gauge = %d", g)
	}
	// The burst leaves the window; a trickle of stale hits keeps it under
	// min_samples with stale responses: the verdict and the rate stand.
	for i := 0; i < 16; i++ {
		old.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", i%5)))
		old.h.AdvanceAndTick(5 * time.Second)
	}
	oldBr, _ := old.h.Gauge("modelcache_route.chat.slo.breached")
	oldPPM, _ := old.h.Gauge("modelcache_route.chat.slo.stale_rate_ppm")
	if oldBr != 1 || oldPPM == 0 {
		t.Fatalf("setup: before the reload breached = %d, stale_rate_ppm = %d; want a standing breach with its rate", oldBr, oldPPM)
	}
	// The reload: a configuration with the same SLO, on the same shared data.
	seed := map[string][]byte{}
	for _, k := range old.h.SharedDataKeys() {
		seed[k], _, _ = old.h.SharedData(k)
	}
	nw := newHarness(t, cfg, func(_ *harness, c *wasmhost.Config) { c.SharedData = seed })
	nw.clock.Advance(old.clock.Now().Sub(start))
	nw.h.AdvanceAndTick(2 * time.Second)
	br, _ := nw.h.Gauge("modelcache_route.chat.slo.breached")
	ppm, _ := nw.h.Gauge("modelcache_route.chat.slo.stale_rate_ppm")
	if br != 1 {
		t.Fatalf("setup: after the reload breached = %d (before: %d)", br, oldBr)
	}
	if ppm == 0 {
		t.Fatalf("after a reload that keeps the SLO: slo.breached = 1 but slo.stale_rate_ppm = 0 (before the reload: %d ppm); "+
			"the alert fires with \"0 ppm\" and the dashboard's stale share reads 0 while breached; want the standing rate", oldPPM)
	}
}
