//go:build !wasip1

package main

import (
	"fmt"
	"testing"
	"time"
)

// README freshness_slo: "With fewer than min_samples responses in the
// window the last verdict (and rate) stands while any of them is stale,
// so a few requests do not flap the alert". Review Z77's mend keeps a
// breach over a wall-clock step back only when the flush that clears the
// future buckets adds stale counts itself. With two workers, the one that
// flushes first after the step back may have served nothing that second
// (its clients are on the other worker): its flush clears the future
// buckets, finds the window empty, and reports a recovery; the other
// worker's stale responses then breach again. Every response is stale
// throughout: a false recovery and a second breach.
func TestSLOContinuousBreachHoldsOverClockStepBackOnOneWorker(t *testing.T) {
	for _, w := range []int{0, 1} {
		t.Run(fmt.Sprint("traffic on worker ", w), func(t *testing.T) {
			cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
			  "freshness_slo":{"max_age":"10s","max_fraction":0.05,"window":"1m","min_samples":10}}]}`
			hs := newHarness(t, cfg)
			for k := 0; k < 5; k++ {
				hs.post(w, "/v1/chat/completions", chatBody(fmt.Sprint("step ", k)))
			}
			hs.clock.Advance(5 * time.Minute) // every answer from now on is stale for the SLO
			second := func(s int) {
				for i := 0; i < 4; i++ {
					hs.post(w, "/v1/chat/completions", chatBody(fmt.Sprint("step ", (s+i)%5)))
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
			hs.clock.Set(hs.clock.Now().Add(-2 * time.Minute)) // NTP steps back; the same stale traffic goes on
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
		})
	}
}
