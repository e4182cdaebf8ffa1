package cachecore

import (
	"strings"
	"testing"
	"time"
)

// Review Z23. README (Limitations): changing store.buckets with the same
// vm_id starts the cache empty "so an entry purged under one layout never
// returns under the one before it". A new configuration does not stop the
// old one: Envoy keeps the old filter chain (and its plugin configuration)
// on the connections it drains, so the old layout's VMs keep storing and
// serving beside the new one's. Both name a bucket's index "mc:i:<n>"
// whatever the layout, and place a key in bucket fp % buckets: a purge by
// replay sent to a VM of the new layout (32 buckets) looks for the key in
// bucket fp%32, tombstones it there and answers 200, while the old
// layout's VM (16 buckets) still holds it, and serves it, in bucket fp%16.
func TestEntryPurgedUnderNewLayoutIsNotServedByTheOldLayoutStillServing(t *testing.T) {
	for _, tc := range []struct{ name, to, was string }{
		{"buckets", `"buckets": 32`, "16x4"},
		{"ways", `"buckets": 16, "ways": 8`, "16x4"},
	} {
		t.Run(tc.name, func(t *testing.T) { purgedUnderNewLayout(t, tc.to, tc.was, false) })
		// And the other way: the old configuration's VM purges what the
		// new one stored (it reads the layout recorded since).
		t.Run(tc.name+"-old-purges-new", func(t *testing.T) { purgedUnderNewLayout(t, tc.to, tc.was, true) })
	}
}

func purgedUnderNewLayout(t *testing.T, to, was string, oldPurges bool) {
	cfgA := testConfig
	cfgB := strings.Replace(testConfig, `"buckets": 16, "ways": 4`, to, 1)
	if cfgA == cfgB {
		t.Fatal("setup: config not changed")
	}
	store := NewMemStore()
	clock := newFakeClock()
	mk := func(cfg string, seed uint64) *testEnv {
		c := New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(seed)})
		return &testEnv{t: t, cache: c, store: store, clock: clock}
	}
	a := mk(cfgA, 1) // the old configuration's VM, still serving
	clock.Advance(time.Second)
	b := mk(cfgB, 2) // the new configuration's VM: store.buckets 16 -> 32
	if b.cache.LayoutReplaced() != was {
		t.Fatalf("setup: layout replaced %q", b.cache.LayoutReplaced())
	}
	if oldPurges {
		a, b = b, a
	}
	var served, purged int
	for i := range 8 {
		q := chatRequest("poisoned question " + itoa(int64(i)))
		req, d := a.lookup("chat", alice, q)
		if d == Serve {
			t.Fatalf("setup: %s served before it was stored", q)
		}
		a.fill(req, jsonCT, chatResponse("poisoned answer"), 10)
		if r, d := a.lookup("chat", alice, q); d != Serve {
			t.Fatalf("setup: %s not stored by the old configuration (%s)", q, r.Status)
		}
		purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + q + `}`
		res, err := b.cache.Purge([]byte(purge), "")
		if err != nil {
			t.Fatal(err)
		}
		purged++
		clock.Advance(100 * time.Millisecond)
		if r, d := a.lookup("chat", alice, q); d == Serve {
			_, _, body := a.cache.HitResponse(r)
			t.Logf("purge answered freed=%d; the old layout's VM still serves %s -> %s", res.Freed, q, body)
			served++
		}
	}
	if served > 0 {
		t.Fatalf("%d of %d entries purged by replay (each purge answered without error) are still served by the VMs of the configuration before the layout change", served, purged)
	}
}
