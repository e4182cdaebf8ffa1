package cachecore

import (
	"testing"
	"time"
)

// A slot is held until the call's deadline, which is also when a call
// that timed out ends: its release may come after another call took the
// slot. It frees its own holding only, never the next one's.
func TestBackgroundReleaseFreesOnlyItsOwnSlot(t *testing.T) {
	b := NewBackgroundSlots(NewMemStore(), 1)
	const timeout = 30_000
	a, ok, err := b.Acquire(0, timeout) // refresh A
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	// A's timeout fires at 30 s; before its callback runs, worker 2 starts
	// refresh B: A's slot is past its deadline.
	if _, ok, _ := b.Acquire(timeout, 2*timeout); !ok {
		t.Fatal("B: slot not free at A's deadline")
	}
	_ = b.Release(a, timeout) // A's callback
	if _, ok, _ := b.Acquire(timeout+1, 2*timeout+1); ok {
		t.Fatalf("a third background call started while B is in flight: max_concurrent 1, Busy %d", b.Busy(timeout+1))
	}
}

// Background calls (refreshes, shadow comparisons) share one process-wide
// limit, background.max_concurrent (README): with that one slot held by a
// refresh, a shadow comparison starts no other upstream call.
func TestShadowCallsShareTheBackgroundLimit(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","background":{"max_concurrent":1},"routes":[{"name":"chat","kind":"chat",
	  "path_prefix":"/v1/chat/completions","ttl":"10s","stale_while_revalidate":"1m",
	  "shadow":{"sample":1.0,"max_concurrent":4}}]}`)
	c := env.cache
	hs := hdr(":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer sk-alice")
	env.fill(env.request("chat", alice, chatRequest("old")), jsonCT, chatResponse("a"), 10)
	env.fill(env.request("chat", alice, chatRequest("fresh")), jsonCT, chatResponse("b"), 10)
	env.clock.Advance(8 * time.Second)
	env.fill(env.request("chat", alice, chatRequest("fresh")), jsonCT, chatResponse("b"), 10)
	env.clock.Advance(4 * time.Second)
	stale, _ := env.lookup("chat", alice, chatRequest("old"))
	if stale.Status != StatusStale {
		t.Fatalf("setup: %s", stale.Status)
	}
	if acts := c.Refresh(stale, hs, 1); len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("refresh: %+v", acts)
	}
	hit, _ := env.lookup("chat", alice, chatRequest("fresh"))
	if hit.Status != StatusHit {
		t.Fatalf("setup: %s", hit.Status)
	}
	if acts := c.Shadow(hit, hs); len(acts) == 1 && acts[0].Kind == ActDispatch {
		t.Fatalf("a shadow call started while the one background slot (background.max_concurrent 1) is held by a refresh: %d background slots busy", c.bg.Busy(c.nowMs()))
	}
}
