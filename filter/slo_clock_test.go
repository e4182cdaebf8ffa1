//go:build !wasip1

package main

import (
	"fmt"
	"testing"
	"time"
)

func TestSLORecoversAfterWallClockStepsBack(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "freshness_slo":{"max_age":"10s","max_fraction":0.05,"window":"1m","min_samples":10}}]}`
	hs := newHarness(t, cfg)
	for k := 0; k < 5; k++ {
		hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", k)))
	}
	hs.clock.Advance(20 * time.Second)
	for r := 0; r < 2; r++ {
		for i := 0; i < 20; i++ {
			hs.post(i%2, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", i%5)))
		}
		hs.h.AdvanceAndTick(2 * time.Second)
	}
	if g, _ := hs.h.Gauge("modelcache_route.chat.slo.breached"); g != 1 {
		t.Fatalf("setup: breached gauge = %d", g)
	}
	// NTP steps the wall clock back by an hour.
	hs.clock.Set(hs.clock.Now().Add(-time.Hour))
	// Fresh answers only, for three windows.
	for round := 0; round < 90; round++ {
		hs.post(round%2, "/v1/chat/completions", chatBody(fmt.Sprint("new ", round)))
		hs.h.AdvanceAndTick(2 * time.Second)
	}
	g, _ := hs.h.Gauge("modelcache_route.chat.slo.breached")
	if n := len(hs.h.LogsContaining("stale-serving SLO recovered on route chat")); n != 1 || g != 0 {
		t.Fatalf("after 3 minutes of fresh answers following a 1h wall-clock step back: %d recovery lines, breached gauge %d (want 1, 0)", n, g)
	}
}
