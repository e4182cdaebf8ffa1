package cachecore

import (
	"strings"
	"testing"
	"time"
)

// README (Cross-proxy single flight): "At max_wait they look once more, so
// an answer that landed since the last poll is still served (the wait then
// ends within two l2.timeouts and a tick past max_wait)". A poll under way
// at max_wait that finds the lease free takes it (SET NX, one l2.timeout),
// loses it to another proxy's new leader, and l2Wait puts the request back
// to wait with lastPoll still unset: on the next tick l2Tick sends the
// "last look" — a third L2 call past max_wait, with a third l2.timeout —
// although the race just lost says a new leader only started. The wait
// ends past max_wait + 2 × l2.timeout + a tick. (l2.timeout 250ms, ticks
// of 100ms; L2 answering in 240 ms.)
func TestL2WaitEndsWithinTwoTimeoutsAfterLeaseRaceLostPastMaxWait(t *testing.T) {
	m := newL2Mesh(t, `,"timeout":"250ms"`)
	a1, b := m.leadAndWait(t)
	maxWait := b.Request().Route.Coalesce.MaxWait
	tick := m.p[1].cfg.TickPeriod
	timeout := m.p[1].cfg.L2.Timeout
	bound := maxWait + 2*timeout + tick
	var waited time.Duration
	var held *Call
	for waited < maxWait-tick {
		m.clock.Advance(tick)
		waited += tick
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
	m.answer(a1, 503, "overloaded") // A's leader fails: its lease is released
	pollRes := m.wd.do(held)        // L2 reads it now: lease free, no answer
	advanceTo := func(d time.Duration) {
		m.clock.Advance(d - waited)
		waited = d
	}
	advanceTo(maxWait)
	if got, call := m.tickHolding(b); got != "" || call != nil {
		t.Fatalf("setup: B at max_wait with its poll out: %q %v", got, call)
	}
	advanceTo(maxWait + tick)
	if got, call := m.tickHolding(b); got != "" || call != nil {
		t.Fatalf("setup: B at max_wait+tick with its poll out: %q %v", got, call)
	}
	advanceTo(maxWait + 140*time.Millisecond) // the poll answers, 240 ms after it was sent
	var lease *Call
	var rest []Action
	for _, a := range held.Done(pollRes) {
		if a.Kind == ActDispatch && lease == nil {
			lease = a.Call
			continue
		}
		rest = append(rest, a)
	}
	if got, _ := m.step(rest); got != "" || lease == nil {
		t.Fatalf("setup: B's poll finding the lease free: %q, lease call %v", got, lease)
	}
	if _, got := m.begin(0, 2, "q"); got != "coalesce.leaders l2.miss l2.lease_won forward" {
		t.Fatalf("setup: A2: %q", got) // A's next request takes the lease first
	}
	leaseRes := m.wd.do(lease)
	advanceTo(maxWait + 200*time.Millisecond)
	if got, _ := m.step(b.Tick()); got != "" {
		t.Fatalf("setup: B with its lease call out: %q", got)
	}
	advanceTo(maxWait + 300*time.Millisecond)
	m.step(b.Tick())
	advanceTo(maxWait + 380*time.Millisecond) // the lease call answers, 240 ms after it was sent
	switch got, _ := m.step(lease.Done(leaseRes)); got {
	case "l2.lease_lost coalesce.timeouts forward":
		return // the wait ends with the lost race, at max_wait+380ms: within the bound
	case "l2.lease_lost wait":
	default:
		t.Fatalf("setup: B's lease call: %q", got)
	}
	var out []*Call
	for d := maxWait + 400*time.Millisecond; d <= bound+5*tick; d += tick {
		advanceTo(d)
		got, call := m.tickHolding(b)
		if call != nil {
			out = append(out, call)
			t.Logf("B sends another L2 lookup at max_wait+%v", d-maxWait)
		}
		if strings.Contains(got, "forward") || strings.Contains(got, "serve") {
			if d > bound {
				t.Fatalf("B's wait on another proxy ended at max_wait+%v: %q; README bounds it by two l2.timeouts and a tick past max_wait (+%v)", d-maxWait, got, bound-maxWait)
			}
			return
		}
		if d == bound {
			t.Fatalf("B still waiting at max_wait+%v (= 2 × l2.timeout %v + tick %v past max_wait %v), with %d more L2 lookup(s) sent after its lease race was lost past max_wait", d-maxWait, timeout, tick, maxWait, len(out))
		}
	}
}
