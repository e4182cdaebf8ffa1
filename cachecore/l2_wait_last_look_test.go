package cachecore

import (
	"strings"
	"testing"
	"time"
)

// tickHolding ticks f and returns what it counted, with the L2 call it
// dispatched (not carried out) if any.
func (m *l2Mesh) tickHolding(f *Flight) (string, *Call) {
	var held *Call
	var rest []Action
	for _, a := range f.Tick() {
		if a.Kind == ActDispatch && held == nil {
			held = a.Call
			continue
		}
		rest = append(rest, a)
	}
	got, _ := m.step(rest)
	return got, held
}

// a6c4d93: "One last look at max_wait, which decides as a poll under way
// at it does: an answer that reached L2 since the last poll is served, not
// asked of the model again". When the poll under way at max_wait comes
// back (leased) after max_wait, the last look is sent on the next tick,
// but l2Tick still ends the wait at max_wait + l2.timeout counted from
// max_wait, not from that look: the look, answered well within its own
// l2.timeout with the answer L2 had before max_wait, is thrown away and
// the model is asked a second time. (l2.timeout 250ms, ticks of 100ms; L2
// answering in 150-220 ms.)
func TestL2LastLookGetsItsOwnTimeout(t *testing.T) {
	m := newL2Mesh(t, `,"timeout":"250ms"`)
	a, b := m.leadAndWait(t)
	maxWait := b.Request().Route.Coalesce.MaxWait
	tick := m.p[1].cfg.TickPeriod
	var waited time.Duration
	var held *Call
	for waited < maxWait-tick {
		m.clock.Advance(tick)
		waited += tick
		m.step(a.KeepLease())
		got, call := m.tickHolding(b)
		if got != "" {
			t.Fatalf("setup: B at %v: %q", waited, got)
		}
		if call == nil {
			continue
		}
		if waited < maxWait-tick {
			m.step(call.Done(m.wd.do(call)))
			continue
		}
		held = call
	}
	if held == nil {
		t.Fatal("setup: B did not poll at max_wait - tick")
	}
	pollRes := m.wd.do(held) // L2 reads it now: A still leads; the reply is slow
	m.clock.Advance(50 * time.Millisecond)
	m.answer(a, 200, "the answer") // in L2 at max_wait - 50ms, lease released
	m.clock.Advance(50 * time.Millisecond)
	if got, call := m.tickHolding(b); got != "" || call != nil { // max_wait: the poll is under way
		t.Fatalf("setup: B at max_wait: %q %v", got, call)
	}
	m.clock.Advance(50 * time.Millisecond)
	if got, _ := m.step(held.Done(pollRes)); got != "" { // 150 ms: A still leading, as L2 read it
		t.Fatalf("setup: B's poll under way at max_wait: %q", got)
	}
	m.clock.Advance(50 * time.Millisecond) // max_wait + 100ms
	got, last := m.tickHolding(b)
	if got != "" || last == nil {
		t.Fatalf("setup: B's last look at max_wait+100ms: %q %v", got, last)
	}
	lastRes := m.wd.do(last) // L2 has A's answer
	m.clock.Advance(tick)    // max_wait + 200ms
	if got, _ := m.step(b.Tick()); got != "" {
		t.Fatalf("max_wait+200ms, B's last look out 100ms (l2.timeout 250ms): %q", got)
	}
	m.clock.Advance(tick) // max_wait + 300ms: the look has been out 200 ms
	got, _ = m.step(b.Tick())
	m.clock.Advance(20 * time.Millisecond) // the look answers, 220 ms after it was sent
	if got2, _ := m.step(last.Done(lastRes)); got == "" {
		got = got2
	}
	if strings.Contains(got, "forward") || !strings.Contains(got, "serve") {
		t.Fatalf("B's last look, sent at max_wait+100ms and answered 220ms later (l2.timeout 250ms) with the answer L2 had since max_wait-50ms: %q; model calls: 2", got)
	}
}

// Until a6c4d93 a proxy waiting on another's lease that reached
// coalesce.max_wait counted coalesce.timeouts as it went upstream (as a
// local follower does, and as the last look does when it fails or finds
// the lease held). A last look that cannot be sent (the host refuses the
// dispatch: NotStarted) sends the request upstream at max_wait without
// counting it.
func TestL2LastLookNotStartedCountsTheTimeout(t *testing.T) {
	m := newL2Mesh(t, "")
	_, b := m.leadAndWait(t)
	maxWait := b.Request().Route.Coalesce.MaxWait
	tick := m.p[1].cfg.TickPeriod
	var waited time.Duration
	for waited < maxWait-tick {
		m.clock.Advance(tick)
		waited += tick
		if got, _ := m.step(b.Tick()); got != "" {
			t.Fatalf("setup: B at %v: %q", waited, got)
		}
	}
	m.clock.Advance(tick) // max_wait
	got, last := m.tickHolding(b)
	if got != "" || last == nil {
		t.Fatalf("setup: B at max_wait: %q %v", got, last)
	}
	got, _ = m.step(last.Done(CallResult{NotStarted: true}))
	if !strings.Contains(got, "forward") {
		t.Fatalf("setup: B after its last look could not start: %q", got)
	}
	if !strings.Contains(got, "coalesce.timeouts") {
		t.Fatalf("B went upstream at max_wait (%v) without counting coalesce.timeouts: %q", maxWait, got)
	}
}
