package cachecore

import (
	"testing"
	"time"
)

// Review Z118 (background refreshes).
//
// RATIONALE "The wall clock may step back": every measure of elapsed time
// is "bounded by the step's start, not its length"; a lease record that
// "ends further ahead than any configuration of the process writes (...
// the background timeout, plus a minute: SetHorizon) is dead". The
// background limiter (mc:bg, background.max_concurrent deadline slots,
// "self-healing if a VM dies": RATIONALE "Background work is bounded") has
// no such bound: a slot taken by a call whose VM went away (its result
// never comes, so nothing releases it) before the wall clock stepped back
// an hour stays busy for that hour, not for the call's 30 s timeout. With
// max_concurrent 1 no stale-while-revalidate refresh, early refresh or
// shadow comparison runs for the whole step: every stale hit counts
// background.saturated and the entries expire under their users.
func TestZ118BackgroundSlotOfADeadCallIsFreedAfterAClockStepBack(t *testing.T) {
	const cfg = `{"upstream_cluster":"model","background":{"max_concurrent":1,"timeout":"30s"},"routes":[{"name":"chat","kind":"chat",
	  "path_prefix":"/v1/chat/completions","ttl":"10s","stale_while_revalidate":"1m"}]}`
	store := NewMemStore()
	clock := newFakeClock()
	mk := func(seed uint64) *testEnv {
		return &testEnv{t: t, cache: New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(seed)}), store: store, clock: clock}
	}
	dead, live := mk(1), mk(2) // two worker VMs of one proxy

	// Worker 1 refreshes a stale entry, then its VM goes away: the call's
	// result never comes back to release the slot.
	dead.fill(dead.request("chat", alice, chatRequest("one")), jsonCT, chatResponse("a"), 10)
	clock.Advance(12 * time.Second)
	r1, d := dead.lookup("chat", alice, chatRequest("one"))
	if d != Serve || r1.Status != StatusStale {
		t.Fatalf("setup: %v %s", d, r1.Status)
	}
	if acts := dead.cache.Refresh(r1, backgroundAliceHeaders, 1); len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("setup: first refresh: %+v", acts)
	}

	// NTP steps the wall clock back an hour; two minutes later (four
	// times the call's timeout, past any horizon) worker 2 serves another
	// key stale.
	clock.Advance(-time.Hour)
	clock.Advance(2 * time.Minute)
	live.fill(live.request("chat", alice, chatRequest("two")), jsonCT, chatResponse("b"), 10)
	clock.Advance(12 * time.Second)
	r2, d := live.lookup("chat", alice, chatRequest("two"))
	if d != Serve || r2.Status != StatusStale || !live.cache.WantsRefresh(r2) {
		t.Fatalf("setup: %v %s", d, r2.Status)
	}
	acts := live.cache.Refresh(r2, backgroundAliceHeaders, 2)
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		ev := "?"
		if len(acts) > 0 && acts[0].Kind == ActCount {
			ev = EventNames[acts[0].Event]
		}
		t.Errorf("a stale hit 2m after a dead call's 30s slot (the clock stepped back 1h meanwhile) started no refresh (event %s, busy %d of 1): the slot is held for the step's length, not the call's timeout",
			ev, live.cache.bg.Busy(live.cache.nowMs()))
	}
}
