package cachecore

import (
	"strings"
	"testing"
	"time"
)

// README "Purge API": a purge by replay answers success once the
// entry can no longer be served; README (Limitations): "While the
// configuration before it still serves the connections it drains, a purge
// by replay sent to either removes the entry". A reload that changes a
// route's selection (here ignore_fields, which README "Keys" puts in the
// key's digest) leaves the old configuration serving its entries on the
// connections it drains; a replay under the new configuration computes the
// new digest's key only, answers 200, and the old configuration goes on
// serving the purged answer (a purge by model, keyed by the route's name,
// reaches both).
func TestEntryPurgedUnderNewSelectionIsNotServedByTheOldConfigurationStillServing(t *testing.T) {
	cfgA := testConfig
	cfgB := strings.Replace(testConfig, `"path_exact": "/v1/chat/completions",`,
		`"path_exact": "/v1/chat/completions", "ignore_fields": ["user"],`, 1)
	if cfgA == cfgB {
		t.Fatal("setup: config not changed")
	}
	store := NewMemStore()
	clock := newFakeClock()
	mk := func(cfg string, seed uint64) *testEnv {
		c := New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(seed)})
		return &testEnv{t: t, cache: c, store: store, clock: clock}
	}
	a := mk(cfgA, 1) // the old configuration's VM, still serving its connections
	clock.Advance(time.Second)
	b := mk(cfgB, 2) // the new configuration's VM, same layout
	q := chatRequest("poisoned question")
	req, d := a.lookup("chat", alice, q)
	if d == Serve {
		t.Fatal("setup: served before it was stored")
	}
	a.fill(req, jsonCT, chatResponse("poisoned answer"), 10)
	if r, d := a.lookup("chat", alice, q); d != Serve {
		t.Fatalf("setup: not stored by the old configuration (%s)", r.Status)
	}
	purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + q + `}`
	res, err := b.cache.Purge([]byte(purge), "")
	if err != nil {
		t.Fatalf("purge refused: %v", err)
	}
	clock.Advance(100 * time.Millisecond)
	if r, d := a.lookup("chat", alice, q); d == Serve {
		_, _, body := a.cache.HitResponse(r)
		t.Fatalf("purge by replay answered success (scope %s, freed %d), and the configuration before the reload still serves the purged answer: %s",
			res.Scope, res.Freed, body)
	}
}
