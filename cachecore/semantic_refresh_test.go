package cachecore

import (
	"strings"
	"testing"
	"time"
)

// A near match needs the turn's index record to be fresh, and a record
// carries the fresh-until of the answer stored when the turn was indexed.
// A background refresh (stale_while_revalidate, early_refresh) stores a
// new answer under the same key but does not index its turn again, so
// once the first answer's ttl has passed the record is skipped as stale
// for good: an entry that refreshes keep fresh (a hot question, the case
// those options are for) is never reached by a near match again, even
// confirmed anew — only a miss on that exact turn would index it again,
// and the refreshes prevent that miss.
func TestSemanticRefreshedEntryStaysReachableByNearMatches(t *testing.T) {
	const cfg = `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
	  "ttl":"10s","stale_while_revalidate":"1m","semantic":{"embedding":{"cluster":"embeddings","model":"e5"}}}]}`
	e := newSemEnv(t, "")
	e.testEnv = newEnv(t, cfg)
	stored, para := "How do I reset my password?", "How can I reset my password?"
	f, _ := e.ask(alice, stored, nil)
	e.answer(f, "Click 'forgot password'.")

	e.clock.Advance(11 * time.Second) // past the ttl, in the stale window
	f, got := e.ask(alice, stored, nil)
	if f.Request().Status != StatusStale {
		t.Fatalf("setup: the stored turn past its ttl: %s (%q)", f.Request().Status, got)
	}
	acts := e.cache.Refresh(f.Request(), hdr(":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer sk-alice"), 1)
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("setup: refresh: %s", actionKinds(acts))
	}
	acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("Click 'forgot password' on the sign-in page."))})
	if f, got := e.ask(alice, stored, nil); f.Request().Status != StatusHit {
		t.Fatalf("setup: the refreshed answer: %s (%q)", f.Request().Status, got) // and this exact hit confirms it
	}
	// (No semantic.unconfirmed in the kinds: the turn is no candidate.)
	if _, got := e.ask(alice, para, nil); !strings.HasSuffix(got, "serve") {
		t.Fatalf("a paraphrase of a refreshed, fresh and confirmed answer is not a near hit: %q", got)
	}
}
