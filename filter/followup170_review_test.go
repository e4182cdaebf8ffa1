//go:build !wasip1

package main

import (
	"fmt"
	"testing"
	"time"
)

// Review Z170 (follow-up of Z164's mend). After a suspension longer than
// the window, the lapse flush shows the new window's rate (Z136), but the
// very next flush of the same thin window (under min_samples, one stale
// response: not Settled) sets stale_rate_ppm to SLOStatus.Standing — the
// last settled rate in shared data, which is the lapsed breach's 93.75%
// measured three days before. slo.breached stays 0, so the gauge pair
// contradicts itself again one second after the recovery line. Expected:
// a lapsed breach's rate is never shown again (at most the current
// window's 10%).
func TestSLORateGaugeDoesNotReturnToALapsedBreachsRateAtTheNextFlush(t *testing.T) {
	hs := fiveAgedAnswers(t)
	for r := 0; r < 3; r++ {
		for i := 0; i < 25; i++ {
			hs.post(i%2, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", i%5)))
		}
		hs.h.AdvanceAndTick(2 * time.Second)
	}
	if g, _ := hs.h.Gauge("modelcache_route.chat.slo.breached"); g != 1 {
		t.Fatalf("setup: breached gauge = %d", g)
	}
	hs.clock.Advance(72 * time.Hour) // suspended: no tick
	hs.post(0, "/v1/chat/completions", chatBody("slo 0"))
	for i := 0; i < 9; i++ {
		hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("new ", i)))
	}
	hs.clock.Advance(2 * time.Second)
	hs.h.Tick(0)
	hs.h.Drain()
	if br, _ := hs.h.Gauge("modelcache_route.chat.slo.breached"); br != 0 {
		t.Fatalf("setup: breached gauge = %d after the lapsed breach", br)
	}
	first, _ := hs.h.Gauge("modelcache_route.chat.slo.stale_rate_ppm")
	// The next flushes: no new response, the same thin window.
	for i := 0; i < 3; i++ {
		hs.h.AdvanceAndTick(2 * time.Second)
		br, _ := hs.h.Gauge("modelcache_route.chat.slo.breached")
		ppm, _ := hs.h.Gauge("modelcache_route.chat.slo.stale_rate_ppm")
		if ppm > 100_000 {
			t.Fatalf("flush %d after the lapse flush (which showed %d ppm): slo.breached = %d but slo.stale_rate_ppm = %d, "+
				"the rate of the breach that lapsed 3 days ago; want at most 100000 (the current window's 10%%)", i+1, first, br, ppm)
		}
	}
}

// Review Z170 (follow-up of Z164's mend). SLOStatus.Standing is the rate
// of the last flush that *wrote* the window (one with counts), not of the
// last settled evaluation: an idle route's flushes are read-only, settle
// the empty window at 0 (the gauge reads 0), and write no rate. The first
// few responses after the idle time, one of them stale, make a window
// under min_samples that is not settled, and every VM then shows the rate
// measured before the idle time (8.3% here, three minutes old), though the
// last rate shown — and README's "the last verdict (and rate) stands" —
// was 0. Before the mend the gauge stayed at 0. Expected: not the rate of
// a window that emptied since (0, the last settled; or the current one).
func TestSLORateGaugeDoesNotShowARateFromBeforeAnIdleWindow(t *testing.T) {
	hs := fiveAgedAnswers(t)
	for k := 0; k < 5; k++ {
		hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", k))) // stale hits
	}
	for i := 0; i < 50; i++ {
		hs.post(i%2, "/v1/chat/completions", chatBody(fmt.Sprint("fresh ", i)))
	}
	hs.h.AdvanceAndTick(2 * time.Second)
	before, _ := hs.h.Gauge("modelcache_route.chat.slo.stale_rate_ppm")
	if br, _ := hs.h.Gauge("modelcache_route.chat.slo.breached"); br != 0 || before == 0 {
		t.Fatalf("setup: breached = %d, stale_rate_ppm = %d; want a settled rate under the objective", br, before)
	}
	// Idle for three minutes: the window empties, and the flushes show 0.
	hs.h.AdvanceAndTick(3 * time.Minute)
	if idle, _ := hs.h.Gauge("modelcache_route.chat.slo.stale_rate_ppm"); idle != 0 {
		t.Fatalf("setup: after an idle window stale_rate_ppm = %d, want 0", idle)
	}
	// Two responses, one stale: under min_samples with a stale one.
	hs.post(0, "/v1/chat/completions", chatBody("slo 0"))
	hs.post(0, "/v1/chat/completions", chatBody("after idle"))
	hs.h.AdvanceAndTick(2 * time.Second)
	ppm, _ := hs.h.Gauge("modelcache_route.chat.slo.stale_rate_ppm")
	if ppm == before {
		t.Fatalf("after a window that emptied (the gauge read 0), stale_rate_ppm = %d: the rate measured 3 minutes before, "+
			"of responses no longer in the window; want the last settled rate (0) or the current window's", ppm)
	}
}

// fiveAgedAnswers is a harness whose chat route has a freshness SLO
// (max_age 10s, max_fraction 0.2, window 1m, min_samples 50), with five
// answers stored ("slo 0" … "slo 4") and aged 20 s: stale from now on.
func fiveAgedAnswers(t *testing.T) *harness {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"720h",
	  "freshness_slo":{"max_age":"10s","max_fraction":0.2,"window":"1m","min_samples":50}}]}`
	hs := newHarness(t, cfg)
	for k := 0; k < 5; k++ {
		hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("slo ", k)))
	}
	hs.clock.Advance(20 * time.Second)
	return hs
}
