package cachecore

import (
	"testing"
	"time"
)

// Review Z98. README, Purge API: a model's invalidation (the purge API's
// {"route","model"}, or the same invalidation made by shadow comparison:
// "The same invalidation is reachable by the purge API") leaves "an answer
// in flight ... not stored either". A fresh hit that XFetch chose for an
// early refresh and that was also sampled for a shadow comparison lends
// the same Request to both calls (Stream.Served). When the shadow's answer
// comes first and its divergence invalidates the model, PrepareShadowStore
// rekeys that Request under the new generation; the refresh's answer,
// asked for before the invalidation, then passes the store under the new
// generation and replaces the shadow's replacement. A refresh of the same
// key on any other Request is refused (invalidated).
func TestZ98RefreshInFlightAcrossShadowInvalidationIsNotStored(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"10s",
	  "early_refresh":{"enabled":true,"beta":1},
	  "shadow":{"sample":1,"max_concurrent":2,"min_samples":1,"max_divergence":0,"min_tenants":1}}]}`)
	c := env.cache
	body := chatRequest("q")
	// δ = 1000 s against a 10 s ttl: XFetch picks nearly every hit.
	env.fill(env.request("chat", alice, body), jsonCT, chatResponse("old"), 1_000_000)
	env.clock.Advance(9 * time.Second)
	var req *Request
	for i := 0; i < 50; i++ {
		r, d := env.lookup("chat", alice, body)
		if d != Serve || r.Status != StatusHit {
			t.Fatalf("setup: %v %s", d, r.Status)
		}
		if c.WantsRefresh(r) && c.WantsShadow(r) {
			req = r
			break
		}
	}
	if req == nil {
		t.Fatal("setup: no hit chose both an early refresh and a shadow comparison")
	}
	// As Stream.Served: the refresh first, then the shadow, on one Request.
	refresh := c.Refresh(req, backgroundAliceHeaders, 1)
	shadow := c.Shadow(req, backgroundAliceHeaders)
	if len(refresh) != 1 || refresh[0].Kind != ActDispatch || len(shadow) != 1 || shadow[0].Kind != ActDispatch {
		t.Fatalf("setup: refresh %+v shadow %+v", refresh, shadow)
	}
	env.clock.Advance(100 * time.Millisecond)
	// The shadow's answer diverges: the model is invalidated, and the
	// shadow's answer replaces the entry under the new generation.
	var invalidated bool
	for _, a := range shadow[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("shadow"))}) {
		if a.Kind == ActCount && a.Event == EvInvalidation {
			invalidated = true
		}
	}
	if !invalidated {
		t.Fatal("setup: the shadow's divergence did not invalidate the model")
	}
	if r, d := env.lookup("chat", alice, body); d != Serve || string(r.Entry.Body) != chatResponse("shadow") {
		t.Fatalf("setup: after the invalidation: %v %q", d, r.Entry.Body)
	}
	// The refresh's answer, asked for before the invalidation, arrives.
	env.clock.Advance(100 * time.Millisecond)
	done := refresh[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("refresh, sent before the invalidation"))})
	ev := "none"
	if len(done) > 0 && done[0].Kind == ActCount {
		ev = EventNames[done[0].Event]
	}
	if r, d := env.lookup("chat", alice, body); d == Serve && string(r.Entry.Body) == chatResponse("refresh, sent before the invalidation") {
		t.Errorf("a refresh in flight when the model was invalidated was stored under the new generation (event %s) and is served: %q", ev, r.Entry.Body)
	}
}

// Review Z98. README, "Cache-Status and request directives": "An entry is
// kept past its ttl only for the route's stale windows ..., so max-stale
// can be served only within them: on a route with neither ... an expired
// entry is gone, and max-stale gets a miss." freshness judges a client's
// max-stale by the entry's own StaleUntil (the windows of the
// configuration that stored it), never by the route's: after a reload
// that drops the stale windows (the old configuration's entries live on in
// shared data), a max-stale client is served an entry 30 s past expiry on
// a route with no stale window, while a client without max-stale on the
// same route misses (stale_while_revalidate is read from the route).
func TestZ98MaxStaleServedOnlyWithinTheRoutesWindowsAfterReload(t *testing.T) {
	store := NewMemStore()
	clock := newFakeClock()
	mk := func(cfg string, seed uint64) *testEnv {
		return &testEnv{t: t, cache: New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(seed)}), store: store, clock: clock}
	}
	body := chatRequest("q")
	old := mk(backgroundSWRConfig, 1) // ttl 10s, stale_while_revalidate 1m
	old.fill(old.request("chat", alice, body), jsonCT, chatResponse("old"), 10)
	// The reload: the same route, no stale window.
	now := mk(`{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"10s"}]}`, 2)
	clock.Advance(40 * time.Second) // 30 s past expiry
	if _, d := now.lookup("chat", alice, body); d == Serve {
		t.Fatal("setup: the entry is served stale without max-stale")
	}
	r, d := now.lookup("chat", append(hdr("cache-control", "max-stale"), alice...), body)
	if d == Serve {
		_, headers, _ := now.cache.HitResponse(r)
		t.Errorf("max-stale served an entry 30 s past expiry on a route with no stale window (reloaded from one with stale_while_revalidate 1m): %s, Cache-Status %q",
			r.Status, headerValue(headers, "cache-status"))
	}
}
