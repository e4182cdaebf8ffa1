package cachecore

import (
	"strings"
	"testing"
	"time"
)

// README (semantic, "Index and memory"): a record is fresh while the
// answer it was indexed with is; a background refresh indexes its turn
// again with the new answer's fresh-until, "so does a store whose request
// embedded nothing of its own". A shadow comparison of an exact hit that
// diverges replaces the entry with the fresh answer (AdmitAndStore in
// Cache.Shadow) but does not index the turn again: the record keeps the
// replaced answer's fresh-until, so once that passes every search skips
// it, and the fresh, confirmed replacement is out of reach of every
// paraphrase for the rest of its life (its exact hits prevent the miss
// that would index it again).
func TestSemanticShadowReplacedEntryStaysReachableByNearMatches(t *testing.T) {
	const cfg = `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
	  "ttl":"10s","shadow":{"sample":1.0,"max_concurrent":4},"semantic":{"embedding":{"cluster":"embeddings","model":"e5"}}}]}`
	e := newSemEnv(t, "")
	e.testEnv = newEnv(t, cfg)
	stored, para := "How do I reset my password?", "How can I reset my password?"
	f, _ := e.ask(alice, stored, nil)
	e.answer(f, "Click 'forgot password'.")

	e.clock.Advance(5 * time.Second)
	f, got := e.ask(alice, stored, nil) // an exact hit, sampled for a shadow comparison
	if f.Request().Status != StatusHit {
		t.Fatalf("setup: exact hit: %s (%q)", f.Request().Status, got)
	}
	acts := e.cache.Shadow(f.Request(), hdr(":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer sk-alice"))
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("setup: shadow: %s", actionKinds(acts))
	}
	// The model now answers otherwise: the entry is replaced (fresh for 10 s from now).
	done := acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("Open Settings, then Security, then Reset password."))})
	t.Logf("shadow result: %s", actionKinds(done))

	e.clock.Advance(time.Second)
	if f, got := e.ask(alice, stored, nil); f.Request().Status != StatusHit || !strings.Contains(string(f.Request().Entry.Body), "Settings") ||
		!strings.Contains(got, "semantic.confirmed") {
		t.Fatalf("setup: the replacement answer: %s (%q)", f.Request().Status, got) // this exact hit confirms it
	}
	// Control: while the first answer's ttl lasts, the paraphrase reaches the replacement.
	if f, got := e.ask(alice, para, nil); !strings.HasSuffix(got, "serve") || !strings.Contains(string(f.Request().Entry.Body), "Settings") {
		t.Fatalf("setup: a paraphrase at t=6s: %q", got)
	}
	e.clock.Advance(5 * time.Second) // t=11s: past the first answer's ttl, the replacement fresh until 15s
	if f, got := e.ask(alice, stored, nil); f.Request().Status != StatusHit {
		t.Fatalf("setup: the replacement is fresh and served exactly: %s (%q)", f.Request().Status, got)
	}
	if _, got := e.ask(alice, para, nil); !strings.HasSuffix(got, "serve") {
		t.Fatalf("a paraphrase of a fresh, confirmed answer a shadow comparison stored is not a near hit: %q", got)
	}
}
