package cachecore

import (
	"fmt"
	"testing"
	"time"
)

// background.max_concurrent bounds the background calls of the whole Envoy
// process (README, "Stampedes, stale answers and refreshes"). Shared data
// outlives a configuration change, and the VMs (root contexts) of the old
// configuration keep serving and refreshing while the new one's start: two
// configurations of the limiter share the one mc:bg value. Whatever each
// says, the calls in flight must never exceed the larger of the two
// limits; here the operator lowers it from 2 to 1 to protect the model.
func TestBackgroundLimitHoldsAcrossMaxConcurrentReload(t *testing.T) {
	const route = `"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"10s","stale_while_revalidate":"1m"}]}`
	store := NewMemStore()
	clock := newFakeClock()
	oldC := New(mustParse(t, `{"upstream_cluster":"model","background":{"max_concurrent":2},`+route), Options{Store: store, Now: clock.Now, Rand: seededRand(1)})
	newC := New(mustParse(t, `{"upstream_cluster":"model","background":{"max_concurrent":1},`+route), Options{Store: store, Now: clock.Now, Rand: seededRand(2)})
	oldEnv := &testEnv{t: t, cache: oldC, store: store, clock: clock}
	newEnv := &testEnv{t: t, cache: newC, store: store, clock: clock}
	hs := hdr(":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer sk-alice")
	for i := 0; i < 4; i++ {
		oldEnv.fill(oldEnv.request("chat", alice, chatRequest(fmt.Sprint("q", i))), jsonCT, chatResponse("a"), 10)
	}
	clock.Advance(12 * time.Second) // all four stale, within stale_while_revalidate
	inFlight := 0
	refresh := func(env *testEnv, i int, vm uint64) {
		req, _ := env.lookup("chat", alice, chatRequest(fmt.Sprint("q", i)))
		if req.Status != StatusStale {
			t.Fatalf("setup: q%d %s", i, req.Status)
		}
		for _, a := range env.cache.Refresh(req, hs, vm) {
			if a.Kind == ActDispatch {
				inFlight++
			}
		}
	}
	refresh(oldEnv, 0, 1) // old configuration: 2 allowed
	refresh(oldEnv, 1, 1)
	if inFlight != 2 {
		t.Fatalf("setup: %d refreshes dispatched by the old configuration, want 2", inFlight)
	}
	refresh(newEnv, 2, 2) // new configuration (limit 1): 2 already in flight
	refresh(oldEnv, 3, 1) // old configuration again: its limit is used up
	if inFlight > 2 {
		t.Fatalf("%d background calls in flight at once across a reload of background.max_concurrent 2 -> 1 (neither limit allows more than 2)", inFlight)
	}
}
