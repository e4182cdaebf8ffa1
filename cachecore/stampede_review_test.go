package cachecore

import (
	"testing"
	"time"
)

// Review Z53. RATIONALE "The wall clock may step back": a lease written
// before a step back ends past the horizon and is taken for dead (ownLive),
// so one new request may take the key over — one extra upstream call. But
// Acquire's takeover keeps that old record in the slot (copyLive drops only
// records dead by recordLive, and the old one is still "live" by its
// deadline) and appends the new leader's lease after it. scanSlot's own is
// the first record of the key: the old one again. So every later request
// of the key also finds "a dead lease" and leads: a burst of identical
// requests after an NTP step all go upstream at once, while the first
// new leader is still in flight (README: "one request per key upstream").
func TestLeaseTakenOverAfterClockStepBackStillCoalesces(t *testing.T) {
	e := newProtoEnv(t, 1, "fail")
	_, got := e.start(0, 1, "q")
	expectActs(t, "A miss", got, "coalesce.leaders forward")

	// NTP steps the wall clock back an hour while A is upstream.
	e.clock.Set(e.clock.Now().Add(-time.Hour))

	// B takes the key over (A's lease now ends past the horizon): allowed,
	// one extra call.
	_, got = e.start(1, 2, "q")
	expectActs(t, "B miss", got, "coalesce.leaders forward")

	// C arrives a moment later, while B is upstream: it must follow B.
	e.clock.Advance(10 * time.Millisecond)
	_, got = e.start(0, 3, "q")
	_, got2 := e.start(1, 4, "q")
	if got != "coalesce.followers wait" || got2 != "coalesce.followers wait" {
		t.Fatalf("after the step back B leads the key; C: %q, D: %q, want both to follow B (slot: %+v)",
			got, got2, slotLeases(t, e))
	}
}

// slotLeases decodes the leases of "q"'s slot, for the failure message.
func slotLeases(t *testing.T, e *protoEnv) []Lease {
	c := e.w[0]
	req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
	c.SetBody(req, []byte(chatRequest("q")))
	raw, _, err := c.store.Get(c.leases.key(req.LeaseFP()))
	if err != nil {
		t.Logf("slot: %v", err)
		return nil
	}
	var at [LeaseWays + 1]int
	s := scanSlot(raw, &at, req.LeaseFP(), 0, 0)
	var out []Lease
	for i := 0; i < s.n; i++ {
		r := leaseRecord(raw, at[i])
		out = append(out, Lease{FP: le.Uint64(r[0:8]), State: LeaseState(r[8]), Owner: le.Uint64(r[9:17]),
			Stream: le.Uint32(r[17:21]), Deadline: int64(le.Uint64(r[21:29]))})
	}
	return out
}
