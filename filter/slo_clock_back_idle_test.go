//go:build !wasip1

package main

import (
	"testing"
	"time"
)

// README (freshness_slo): "a window with no stale response
// clears it and reads 0, so a route that goes idle recovers one window
// after its last response". After the wall clock steps back (NTP), the
// shared window's buckets carry starts in the future; they are summed as
// "inside the window" (start > now - window) and only a flush that adds
// counts rewrites a bucket. An idle route therefore keeps the breach, and
// stale_rate_ppm 1,000,000, until the clock catches up with the step —
// an hour here, sixty windows.
func TestSLOIdleRouteRecoversAfterClockStepBack(t *testing.T) {
	hs := newHarness(t, sloConfig)
	sloBreach(t, hs)
	// NTP steps the wall clock back by an hour; the route goes idle.
	hs.clock.Set(hs.clock.Now().Add(-time.Hour))
	for i := 0; i < 90; i++ { // three windows of 1m, ticking
		hs.h.AdvanceAndTick(2 * time.Second)
	}
	ppm, _ := hs.h.Gauge("modelcache_route.chat.slo.stale_rate_ppm")
	br, _ := hs.h.Gauge("modelcache_route.chat.slo.breached")
	if br != 0 || ppm != 0 {
		t.Fatalf("3 windows without a response after a 1h wall-clock step back: slo.breached = %d, slo.stale_rate_ppm = %d (want 0, 0)", br, ppm)
	}
}
