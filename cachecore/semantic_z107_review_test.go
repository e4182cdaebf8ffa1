package cachecore

import (
	"fmt"
	"strings"
	"testing"
)

// README (semantic): "min_similarity | 0.90 | cosine (0.5–1) a stored turn
// must reach", and the config accepts 1. Two turns the embeddings server
// gives the very same vector have cosine 1, so at min_similarity 1 the
// paraphrase must be a near hit. The search computes the cosine as
// dot / (float32(√n) · float32(√n)): for about half of all norms the
// float32 rounding makes that 0.99999994 (here: the env's 16-dimension
// vector), below 1, so a route configured with the strictest threshold
// (identical embeddings only) never serves any near hit at all for those
// vectors, though the configuration was accepted and documented.
func TestSemanticMinSimilarityOneMatchesIdenticalVectors(t *testing.T) {
	e := newSemEnv(t, `,"min_similarity":1,"confirm":{"exact_hits":0}`)
	f, _ := e.ask(alice, "How do I reset my password?", nil)
	if got := e.answer(f, "Click 'forgot password'."); !strings.Contains(got, "semantic.indexed") {
		t.Fatalf("setup: store: %q", got)
	}
	// The same vector for the paraphrase (the env's vector is the same
	// for every text): cosine 1, at the configured 1.
	if _, got := e.ask(alice, "How can I reset my password?", nil); !strings.Contains(got, "semantic.hits serve") {
		t.Fatalf("an identical embedding at min_similarity 1 is no near hit: %q", got)
	}
}

// README: "An identity longer than 512 bytes (the server's reported model
// and version are untrusted)…", "a route's index holds at most 3 ×
// max_entries turns however the model flaps", and (Index and memory) the
// index's keys, "which shared data cannot delete", are bounded by its
// slots: "a model's index has at most 2 + S × (2 + 2 × (max_entries/64 +
// 2)) keys". The namespace, though, is a hash of what the embeddings
// server reports, and every new namespace makes keys of its own
// (modelcache/sem2/<ns>/n, parts, and a slot's h, g, r0, s0) that a
// reclaim only empties. An embeddings server whose reported model (or
// x-model-version) changes from answer to answer — a hostile one, or one
// that puts a replica id or build stamp there — makes the index's
// shared-data keys grow without bound, one namespace's worth per answer,
// though never more than 3 namespaces hold turns.
func TestSemanticFlappingEmbeddingIdentityKeepsKeysBounded(t *testing.T) {
	const cfg = `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
	  "ttl":"1m","semantic":{"embedding":{"cluster":"embeddings","model":"e5"},"max_entries":64}}]}`
	mem := NewMemStore()
	clock := newFakeClock()
	e := newSemEnv(t, "")
	e.testEnv = &testEnv{t: t, store: mem, clock: clock,
		cache: New(mustParse(t, cfg), Options{Store: mem, Now: clock.Now, Rand: seededRand(1)})}
	const slots = 64 // max_entries 64
	bound := semMaxNamespaces * (2 + slots*(2+2*semMaxSegments(64)))
	const n = 1500
	for i := 0; i < n; i++ {
		e.model = fmt.Sprintf("e5-small-build-%d", i) // what the server reports this time
		turn := fmt.Sprintf("tell me about topic %d", i)
		f, _ := e.ask(alice, turn, nil)
		e.answer(f, "a")
	}
	if keys := semKeysHeld(mem); keys > bound {
		t.Fatalf("after %d answers of a server reporting a new identity each time: %d shared-data keys of the semantic index, more than the %d that %d namespaces of %d slots allow",
			n, keys, bound, semMaxNamespaces, slots)
	}
}

// Past the 64 namespaces a route's index may make, a new identity's turn
// is neither searched nor indexed (semantic.models_full), and the request
// goes on as an exact miss; an identity whose namespace was made before
// (its keys exist) is listed and used again, after the fourth one took it
// off the list.
func TestSemanticIdentityPastTheMadeBoundIsNotIndexed(t *testing.T) {
	e := newSemEnv(t, "")
	turn := 0
	ask := func(model string) (asked, answered string) {
		e.model = model
		turn++
		f, got := e.ask(alice, fmt.Sprintf("tell me about topic %d", turn), nil)
		return got, e.answer(f, "a")
	}
	for i := 0; i < semMaxNamespacesMade; i++ {
		if _, got := ask(fmt.Sprintf("e5-build-%d", i)); !strings.Contains(got, "semantic.indexed") {
			t.Fatalf("identity %d of %d: not indexed: %q", i, semMaxNamespacesMade, got)
		}
	}
	asked, got := ask("e5-build-one-more")
	if !strings.Contains(asked, "semantic.models_full") || strings.Contains(asked, "semantic.misses") || strings.Contains(got, "semantic.indexed") {
		t.Fatalf("identity %d: asked %q, answered %q: want models_full, neither searched nor indexed", semMaxNamespacesMade+1, asked, got)
	}
	if _, got := ask("e5-build-0"); !strings.Contains(got, "semantic.indexed") {
		t.Fatalf("an identity made before is indexed again: %q", got)
	}
}
