package cachecore

import (
	"testing"
	"time"
)

// Review Z205 (background refreshes, second pass).

// README: "within stale_while_revalidate after expiry an entry is served
// at once ... and exactly one background request refreshes it". Refresh
// tells "someone refreshed this entry already" (review Z137) by the key's
// index listing a stale time past the served entry's: listedAfter(fp,
// e.StaleUntil). An answer that says must-revalidate is stored with no
// stale window (review Z197), so the renewed entry's stale time (now +
// ttl) lies before the old one's (old expiry + stale_while_revalidate):
// a second worker that served the old stale entry a moment before the
// first refresh stored its answer dispatches a second model call for the
// same expiry, and its answer replaces the one just stored. Expected: a
// refresh whose key was stored again since its entry was served makes no
// call, whatever the new entry's stale window.
func TestZ205StaleEntryRenewedWithMustRevalidateIsNotRefreshedAgain(t *testing.T) {
	env := newEnv(t, backgroundSWRConfig)
	c := env.cache
	body := chatRequest("q")
	env.fill(env.request("chat", alice, body), jsonCT, chatResponse("old"), 10)
	env.clock.Advance(20 * time.Second) // stale, within stale_while_revalidate (1m)
	first, d1 := env.lookup("chat", alice, body)
	second, d2 := env.lookup("chat", alice, body)
	if d1 != Serve || d2 != Serve || first.Status != StatusStale || second.Status != StatusStale ||
		!c.WantsRefresh(first) || !c.WantsRefresh(second) {
		t.Fatalf("setup: %v %s, %v %s", d1, first.Status, d2, second.Status)
	}
	acts := c.Refresh(first, backgroundAliceHeaders, 1)
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("setup: first refresh %+v", acts)
	}
	env.clock.Advance(200 * time.Millisecond)
	mustRevalidate := hdr("content-type", "application/json", "cache-control", "max-age=10, must-revalidate")
	done := acts[0].Call.Done(CallResult{Status: 200, Headers: mustRevalidate, Body: []byte(chatResponse("new"))})
	if done[0].Event != EvRefreshStored {
		t.Fatalf("setup: the first refresh: %s", EventNames[done[0].Event])
	}
	if r, d := env.lookup("chat", alice, body); d != Serve || r.Status != StatusHit || string(r.Entry.Body) != chatResponse("new") {
		t.Fatalf("setup: after the first refresh: %v %s", d, r.Status)
	}
	// The second request's Served comes now (another worker).
	for _, a := range c.Refresh(second, backgroundAliceHeaders, 2) {
		if a.Kind == ActDispatch {
			t.Errorf("a second background refresh was dispatched for a stale entry another refresh renewed 200 ms before " +
				"(its answer said must-revalidate, so the new entry has no stale window and listedAfter misses it): one expiry, two model calls")
		}
	}
}

// README: "only a slot whose ways are all live leaders makes a request go
// upstream uncoalesced (coalesce.collisions)"; the background counters
// say "joined" for a refresh skipped because another refresh of the key
// is in flight. A refresh whose key's lease slot is full of other keys'
// live leaders (or whose lease read failed: tryLeadAs says RoleCollision
// for both) makes no call and none is in flight for the key, yet it is
// counted background.joined — the miscount review Z174 fixed for a
// hit-for-miss mark. The stale entry is then served out its window with
// no refresh while the stats say one is running. Expected: a refresh that
// met a collision is not counted joined (it is counted as the collision
// it is, or makes its call uncoalesced as a request does).
func TestZ205RefreshThatMeetsAFullLeaseSlotIsNotCountedJoined(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","store":{"lease_slots":1},"routes":[{"name":"chat","kind":"chat",
	  "path_prefix":"/v1/chat/completions","ttl":"10s","stale_while_revalidate":"1m"}]}`)
	c := env.cache
	body := chatRequest("q")
	env.fill(env.request("chat", alice, body), jsonCT, chatResponse("old"), 10)
	env.clock.Advance(20 * time.Second)
	req, d := env.lookup("chat", alice, body)
	if d != Serve || req.Status != StatusStale || !c.WantsRefresh(req) {
		t.Fatalf("setup: %v %s", d, req.Status)
	}
	// Other tenants' keys lead in every way of the one lease slot.
	now := c.nowMs()
	for i := 0; i < LeaseWays; i++ {
		role, err := c.leases.Acquire(uint64(100+i), uint64(10+i), 7, uint32(i+1), now, now+10_000, true)
		if err != nil || role != RoleLeader {
			t.Fatalf("setup: lease %d: %v %v", i, role, err)
		}
	}
	if l, _ := c.leases.Peek(req.LeaseFP()); l.State != LeaseFree {
		t.Fatalf("setup: the key is led: %+v", l)
	}
	acts := c.Refresh(req, backgroundAliceHeaders, 1)
	dispatched := false
	for _, a := range acts {
		if a.Kind == ActDispatch {
			dispatched = true
		}
	}
	for _, a := range acts {
		if a.Kind == ActCount && a.Event == EvRefreshJoined && !dispatched {
			t.Errorf("a refresh that met a full lease slot made no call and none is in flight for its key, yet it is counted %s", EventNames[a.Event])
		}
	}
}
