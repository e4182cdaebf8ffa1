package cachecore

import (
	"fmt"
	"testing"
	"time"
)

// README "Failure": "After breaker.failures consecutive failures a VM
// skips L2 for breaker.cool_down (l2.breaker_open), then tries again."
// The breaker's end is a wall-clock instant (openUntil, unix ms): after
// NTP steps the clock back an hour, the VM skips L2 for an hour and its
// cool_down, every request going upstream though webdis is up again — the
// same class of fault as the hit-for-miss mark and the background
// limiter's slot (clock_back_test.go, review Z118).
func TestL2BreakerClosesAfterCoolDownWhenClockStepsBack(t *testing.T) {
	m := breakerOpenThenClockBack(t, "1s")
	m.clock.Advance(2 * time.Second) // the whole cool_down has passed
	calls := m.wd.calls
	cs, _ := m.ask(0, "after the cool-down", "a")
	if m.wd.calls == calls {
		t.Fatalf("2s after a 1s breaker opened (the clock stepped back 1h meanwhile), L2 is still skipped: %q, no webdis call (breaker open for %v more)",
			cs, time.Duration(m.p[0].l2b.openUntil-m.p[0].nowMs())*time.Millisecond)
	}
}

// breakerOpenThenClockBack is an L2 mesh whose proxy 0 opened its breaker
// (cool_down coolDown) after two failures, with webdis up again and the
// wall clock then stepped back an hour (NTP).
func breakerOpenThenClockBack(t *testing.T, coolDown string) *l2Mesh {
	t.Helper()
	m := newL2Mesh(t, `,"breaker":{"failures":2,"cool_down":"`+coolDown+`"}`)
	m.wd.down = true
	for i := 0; i < 2; i++ {
		m.ask(0, fmt.Sprint("p", i), "a")
	}
	if m.p[0].l2Allowed() {
		t.Fatal("the breaker did not open after 2 failures")
	}
	m.wd.down = false
	m.clock.Set(m.clock.Now().Add(-time.Hour))
	return m
}
