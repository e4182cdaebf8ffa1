package cachecore

import (
	"testing"
	"time"
)

// Review Z23. One request per key reaches the model across a reload
// (RATIONALE "The wall clock may step back": a horizon of the new
// configuration alone "led its key twice", fixed because leases outlive a
// reload and the old configuration's plugin keeps serving its draining
// connections). A lease sits in slot fp % store.lease_slots, and the slot
// count is not part of anything the configurations share: a reload that
// changes store.lease_slots (1024 -> 4096) puts the same key's lease in
// another slot under each configuration. The old configuration's leader is
// invisible to the new one, which leads the key a second time.
func TestReloadChangingLeaseSlotsNewConfigFollowsOldLeader(t *testing.T) {
	cfg := func(slots string) string {
		return `{"upstream_cluster": "models", "store": {"lease_slots": ` + slots + `}, "routes": [{"name": "chat", "kind": "chat", "path_exact": "/v1/chat/completions"}]}`
	}
	store := NewMemStore()
	clock := newFakeClock()
	old := &testEnv{t: t, cache: New(mustParse(t, cfg("1024")), Options{Store: store, Now: clock.Now, Rand: seededRand(1)}), store: store, clock: clock}
	clock.Advance(time.Second) // the reload: the new configuration's plugin starts
	cur := &testEnv{t: t, cache: New(mustParse(t, cfg("4096")), Options{Store: store, Now: clock.Now, Rand: seededRand(2)}), store: store, clock: clock}
	var twice int
	for i := range 8 {
		body := chatRequest("a slow answer across a reload of lease_slots " + itoa(int64(i)))
		req, _ := old.lookup("chat", alice, body)
		if role := old.cache.Join(req, 1, uint32(10+i)); role != RoleLeader {
			t.Fatalf("setup: old configuration's Join = %v, want leader", role)
		}
		clock.Advance(10 * time.Millisecond)
		req, _ = cur.lookup("chat", alice, body)
		if role := cur.cache.Join(req, 2, uint32(10+i)); role != RoleFollower {
			t.Logf("key %d: Join under the new configuration = %v while the old configuration's leader is 10ms into its call", i, role)
			twice++
		}
	}
	if twice > 0 {
		t.Fatalf("%d of 8 keys led by both configurations across a reload of store.lease_slots 1024 -> 4096: each goes to the model twice (want one leader per key)", twice)
	}
}

// The process's first configuration records its lease slot count; a
// later one with another count uses the recorded one and says so
// (LeaseSlotsKept, which the filter logs), one with the same count uses
// its own.
func TestLeaseSlotsAreTheProcesssFirstConfigurations(t *testing.T) {
	cfg := func(slots string) *Config {
		return mustParse(t, `{"upstream_cluster": "models", "store": {"lease_slots": `+slots+`}, "routes": [{"name": "chat", "kind": "chat", "path_exact": "/v1/chat/completions"}]}`)
	}
	store := NewMemStore()
	first := New(cfg("1024"), Options{Store: store, Rand: seededRand(1)})
	if first.LeaseSlotsKept() != 0 || first.leases.slots != 1024 {
		t.Fatalf("first configuration: kept %d, slots %d", first.LeaseSlotsKept(), first.leases.slots)
	}
	again := New(cfg("4096"), Options{Store: store, Rand: seededRand(1)})
	if again.LeaseSlotsKept() != 1024 || again.leases.slots != 1024 {
		t.Fatalf("a reload to 4096: kept %d, slots %d; want the process's 1024", again.LeaseSlotsKept(), again.leases.slots)
	}
	same := New(cfg("1024"), Options{Store: store, Rand: seededRand(1)})
	if same.LeaseSlotsKept() != 0 || same.leases.slots != 1024 {
		t.Fatalf("a reload to the same count: kept %d, slots %d", same.LeaseSlotsKept(), same.leases.slots)
	}
	fresh := New(cfg("4096"), Options{Store: NewMemStore(), Rand: seededRand(1)})
	if fresh.LeaseSlotsKept() != 0 || fresh.leases.slots != 4096 {
		t.Fatalf("a new process: kept %d, slots %d", fresh.LeaseSlotsKept(), fresh.leases.slots)
	}
}
