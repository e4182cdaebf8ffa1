package cachecore

import (
	"strings"
	"testing"
	"time"
)

// 86e1368 (review Z79) bounds the last look at max_wait by l2.timeout from
// when it was sent (req.l2.lastAt): "now - max(waitSince+maxWait, lastAt)
// >= l2.timeout". RATIONALE "The wall clock may step back": every measure
// of elapsed time is "bounded by the step's start, not its length: an
// elapsed time whose start lies ahead restarts at now (sinceOrNow)". lastAt
// is compared raw: after a step back while the last look is out, it lies
// ahead of now, and the wait is bounded by the step's length (an hour
// here) instead: the tick never ends it. waitSince, restarted by
// sinceOrNow, ends it at max_wait + l2.timeout after the step, as it did
// before 86e1368.
func TestL2LastLookBoundedAfterClockStepBack(t *testing.T) {
	m := newL2Mesh(t, "")
	a, b := m.leadAndWait(t)
	maxWait := b.Request().Route.Coalesce.MaxWait
	tick := m.p[1].cfg.TickPeriod
	timeout := m.p[1].cfg.L2.Timeout
	var waited time.Duration
	for waited < maxWait-tick {
		m.clock.Advance(tick)
		waited += tick
		m.step(a.KeepLease())
		if got, _ := m.step(b.Tick()); got != "" {
			t.Fatalf("setup: B at %v: %q", waited, got)
		}
	}
	m.clock.Advance(tick) // max_wait
	got, last := m.tickHolding(b)
	if got != "" || last == nil {
		t.Fatalf("setup: B at max_wait: %q %v", got, last)
	}
	// NTP steps the wall clock back an hour while the last look is out.
	m.clock.Set(m.clock.Now().Add(-time.Hour))
	var after time.Duration
	for after < 3*maxWait {
		m.clock.Advance(tick)
		after += tick
		m.step(a.KeepLease())
		got, held := m.tickHolding(b)
		if held != nil {
			t.Fatalf("B dispatched another look while its last one is out (%v after the step back)", after)
		}
		if strings.Contains(got, "forward") {
			return
		}
	}
	t.Fatalf("B's wait, with its last look out (l2.timeout %v), not ended %v after a 1h wall-clock step back (max_wait %v): bounded by the step's length", timeout, after, maxWait)
}
