package cachecore

import (
	"testing"
	"time"
)

// Review Z137 (early refresh). README, model_version: "a switch back to an
// older version during a rollout does not bring that version's earlier
// entries back ..., and an answer keyed before a switch is not stored";
// admitstore.go: "a late answer of a replaced version changes nothing".
// A fresh hit that XFetch chose for an early refresh and that was also
// sampled for a shadow comparison lends one Request to both calls
// (Stream.Served). When the refresh's answer comes first and reports a new
// version, prepareStore moves that Request onto the new version's state.
// The shadow's answer, asked for at the same moment (before the switch),
// then reads req.state as the state it was "keyed" under: an answer of the
// old version (a lagging replica) passes as a switch back, renews the
// generation, makes every entry of the new version unreachable (the
// refresh's included) and is stored and served. Review Z98 made the
// refresh restore the state it was sent under; the shadow does not.
// Expected: the shadow's old-version answer, asked for before the switch,
// is not stored and switches nothing; the refresh's answer stays served.
func TestZ137ShadowAnswerSentBeforeARefreshsVersionSwitchDoesNotSwitchBack(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"10s",
	  "model_version":{"header":"x-model-version"},
	  "early_refresh":{"enabled":true,"beta":1},
	  "shadow":{"sample":1,"max_concurrent":2,"min_samples":100}}]}`)
	c := env.cache
	body := chatRequest("q")
	v1 := append(hdr("x-model-version", "v1"), jsonCT...)
	v2 := append(hdr("x-model-version", "v2"), jsonCT...)
	// δ = 1000 s against a 10 s ttl: XFetch picks nearly every hit.
	env.fill(env.request("chat", alice, body), v1, chatResponse("old"), 1_000_000)
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
	// The refresh reaches an upgraded replica: v2, stored.
	var stored bool
	for _, a := range refresh[0].Call.Done(CallResult{Status: 200, Headers: v2, Body: []byte(chatResponse("refreshed by v2"))}) {
		if a.Kind == ActCount && a.Event == EvRefreshStored {
			stored = true
		}
	}
	if r, d := env.lookup("chat", alice, body); !stored || d != Serve || string(r.Entry.Body) != chatResponse("refreshed by v2") {
		t.Fatalf("setup: the refresh's v2 answer is not served (stored %v): %v", stored, d)
	}
	// The shadow, sent with the refresh, reached a lagging v1 replica.
	env.clock.Advance(100 * time.Millisecond)
	shadow[0].Call.Done(CallResult{Status: 200, Headers: v1, Body: []byte(chatResponse("lagging v1 replica"))})
	r, d := env.lookup("chat", alice, body)
	if d != Serve || string(r.Entry.Body) != chatResponse("refreshed by v2") {
		got := "nothing"
		if d == Serve {
			got = string(r.Entry.Body)
		}
		t.Errorf("a shadow answer of the old version, asked for before the refresh's switch to v2, switched the model back: served %s, want the refresh's v2 answer", got)
	}
}

// Review Z137 (stale-while-revalidate). README: "within
// stale_while_revalidate after expiry an entry is served at once ... and
// exactly one background request refreshes it". A refresh takes the key's
// lease and nothing more: it never looks whether the entry it was started
// for is still the one in the table. Two requests served the same stale
// entry (two workers, a moment apart): the first one's refresh stores a
// fresh answer and releases the lease, then the second one's refresh wins
// the free lease and asks the model again for an entry renewed a moment
// ago — a second upstream call for one expiry, and the fresh answer
// replaced by yet another. (A request's leader looks again after winning
// the lease for exactly this reason: leaderLookup.) Expected: a refresh
// whose entry was stored again since it was served makes no call (it is
// joined, as when another refresh is still running).
func TestZ137StaleEntryAlreadyRefreshedIsNotRefreshedAgain(t *testing.T) {
	env := newEnv(t, backgroundSWRConfig)
	c := env.cache
	body := chatRequest("q")
	env.fill(env.request("chat", alice, body), jsonCT, chatResponse("old"), 10)
	env.clock.Advance(20 * time.Second) // stale, within stale_while_revalidate
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
	acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("new"))})
	if r, d := env.lookup("chat", alice, body); d != Serve || r.Status != StatusHit {
		t.Fatalf("setup: after the first refresh: %v %s", d, r.Status)
	}
	// The second request's Served comes now (another worker).
	for _, a := range c.Refresh(second, hdr(":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer sk-alice"), 2) {
		if a.Kind == ActDispatch {
			t.Errorf("a second background refresh was dispatched for a stale entry another refresh renewed 200 ms before (one expiry, two model calls)")
		}
	}
}
