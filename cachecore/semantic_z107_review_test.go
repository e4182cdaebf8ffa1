package cachecore

import (
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
