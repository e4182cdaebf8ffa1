package cachecore

import (
	"strings"
	"testing"
	"time"
)

// Review Z42 (1). RATIONALE ("A reload overlaps two configurations"): a
// purge by replay also removes the key "under the layout this
// configuration replaced". Only the one Cache whose noteLayout swapped
// mc:layout knows that layout (layoutWas); every other VM of the new
// configuration finds mc:layout already its own and has layoutWas "".
// In Envoy the first New of a configuration is the throw-away canary VM
// (wasmhost/doc.go; filter/layout_test.go: the layout warning is logged
// once, not per VM), so no VM that serves the new configuration purges
// under the old layout: the purge answers 200 and the old configuration,
// still serving its draining connections, serves the purged answer.
func TestPurgeByAnyVMOfTheNewConfigurationReachesTheOldLayout(t *testing.T) {
	for _, tc := range []struct{ name, to string }{
		{"buckets", `"buckets": 32, "ways": 4`},
		{"ways", `"buckets": 16, "ways": 8`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := NewMemStore()
			clock := newFakeClock()
			mk := func(cfg string, seed uint64) *testEnv {
				c := New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(seed)})
				return &testEnv{t: t, cache: c, store: store, clock: clock}
			}
			cfgB := strings.Replace(testConfig, `"buckets": 16, "ways": 4`, tc.to, 1)
			a := mk(testConfig, 1) // the old configuration, still serving
			clock.Advance(time.Second)
			first := mk(cfgB, 2) // the new configuration's first New (Envoy: the canary VM)
			if first.cache.LayoutReplaced() != "16x4" {
				t.Fatalf("setup: layout replaced %q", first.cache.LayoutReplaced())
			}
			worker := mk(cfgB, 3) // a worker VM of the new configuration
			served := 0
			for i := range 8 {
				q := chatRequest("poisoned question " + itoa(int64(i)))
				req, d := a.lookup("chat", alice, q)
				if d == Serve {
					t.Fatal("setup: served before stored")
				}
				a.fill(req, jsonCT, chatResponse("poisoned answer"), 10)
				if r, d := a.lookup("chat", alice, q); d != Serve {
					t.Fatalf("setup: not stored (%s)", r.Status)
				}
				purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + q + `}`
				res, err := worker.cache.Purge([]byte(purge), "")
				if err != nil || res.Scope != "entry" {
					t.Fatalf("purge: %+v %v", res, err)
				}
				clock.Advance(100 * time.Millisecond)
				if _, d := a.lookup("chat", alice, q); d == Serve {
					served++
				}
			}
			if served > 0 {
				t.Fatalf("%d of 8 entries purged by replay through a worker VM of the new configuration (purge answered, freed 0) are still served by the old configuration; the worker's LayoutReplaced() = %q", served, worker.cache.LayoutReplaced())
			}
		})
	}
}

// Review Z42 (2). Reloads A -> B -> A (store.ways 4 -> 8 -> 4), each
// configuration still serving its draining connections. Even with every
// Cache made by New in the order a test chooses (no canary), the VM of
// the first A finds mc:layout its own again and never knew B's layout
// (layoutWas ""): a purge sent to it answers 200 and B, still draining,
// serves the purged answer.
func TestPurgeAfterABAReachesTheDrainingMiddleLayout(t *testing.T) {
	store := NewMemStore()
	clock := newFakeClock()
	mk := func(cfg string, seed uint64) *testEnv {
		c := New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(seed)})
		return &testEnv{t: t, cache: c, store: store, clock: clock}
	}
	cfgB := strings.Replace(testConfig, `"buckets": 16, "ways": 4`, `"buckets": 16, "ways": 8`, 1)
	a := mk(testConfig, 1)
	clock.Advance(time.Second)
	b := mk(cfgB, 2)
	clock.Advance(time.Second)
	a2 := mk(testConfig, 3)
	if b.cache.LayoutReplaced() != "16x4" || a2.cache.LayoutReplaced() != "16x8" {
		t.Fatalf("setup: %q %q", b.cache.LayoutReplaced(), a2.cache.LayoutReplaced())
	}
	served := 0
	for i := range 8 {
		q := chatRequest("poisoned question " + itoa(int64(i)))
		req, _ := b.lookup("chat", alice, q)
		b.fill(req, jsonCT, chatResponse("poisoned answer"), 10)
		if r, d := b.lookup("chat", alice, q); d != Serve {
			t.Fatalf("setup: not stored (%s)", r.Status)
		}
		purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + q + `}`
		if res, err := a.cache.Purge([]byte(purge), ""); err != nil || res.Scope != "entry" {
			t.Fatalf("purge: %+v %v", res, err)
		}
		clock.Advance(100 * time.Millisecond)
		if _, d := b.lookup("chat", alice, q); d == Serve {
			served++
		}
	}
	if served > 0 {
		t.Fatalf("%d of 8 entries purged by replay through the first configuration's VM (A -> B -> A) are still served by B, still draining", served)
	}
}
