package cachecore

import (
	"strings"
	"testing"
	"time"
)

// A turn's answer stored again in the same context while its first record
// is still fresh (a client's Cache-Control: no-cache, an early refresh, a
// shadow replacement) is indexed again: the index keeps one record per
// store, all of the same turn in the same context, so all of them name
// the same entry (candidateKey). A search returns them as separate
// candidates: the same entry is judged up to four times, each veto or
// "unconfirmed" counted again for one request (semantic.veto.* no longer
// counts near matches refused), and the copies take every one of the four
// tries, so another stored paraphrase that would answer is never tried.
// Expected: one try (and at most one counted veto) per stored answer, and
// the paraphrase behind it served.
func TestSemanticDuplicateRecordsOfOneTurnTakeEveryTryZ240(t *testing.T) {
	e := newSemEnv(t, `,"confirm":{"exact_hits":0}`) // every text the same vector: ties, in index order
	noCache := hdr("authorization", "Bearer sk-alice", "cache-control", "no-cache")
	neg := "How do I not reset my password?"
	f, _ := e.ask(alice, neg, nil)
	if got := e.answer(f, "Then leave it."); !strings.Contains(got, "semantic.indexed") {
		t.Fatalf("setup: store: %q", got)
	}
	for i := 0; i < 3; i++ { // the client asks for a fresh answer
		e.clock.Advance(time.Second)
		f, got := e.ask(noCache, neg, nil)
		if f.Request().Status != StatusRevalidate {
			t.Fatalf("setup: no-cache: %s (%q)", f.Request().Status, got)
		}
		e.answer(f, "Then leave it.")
	}
	e.clock.Advance(time.Second)
	f, _ = e.ask(alice, "How do I reset my password?", nil)
	if got := e.answer(f, "Click 'forgot password'."); !strings.Contains(got, "semantic.indexed") {
		t.Fatalf("setup: store: %q", got)
	}
	e.clock.Advance(time.Second)
	_, got := e.ask(alice, "How can I reset my password?", nil)
	if n := strings.Count(got, "semantic.veto.negation"); n != 1 || !strings.HasSuffix(got, "serve") {
		t.Fatalf("one stored answer vetoed %d times, its copies took every try and the stored paraphrase was not served: %q", n, got)
	}
}

// RFC 9211 §2.2: fwd=request means the cache could select a fresh
// response for the request but the request's directives forbade its use
// (README: a miss whose client's max-age or min-fresh refused a fresh
// entry says fwd=request). The semantic search judges each candidate's
// freshness with the request's Cache-Control before any guard
// (semSearch → freshness), and freshness marks the request refusedFresh
// for whatever entry it is handed: another question's answer ("convert 10
// km to miles" for "convert 100 km to miles", which the numbers guard
// refuses) makes the miss of a question nothing was stored for say
// fwd=request. Expected: fwd=miss, as without the other question stored.
func TestSemanticOtherQuestionsEntryMakesMissSayFwdRequestZ240(t *testing.T) {
	e := newSemEnv(t, `,"confirm":{"exact_hits":0}`)
	f, _ := e.ask(alice, "convert 10 km to miles", nil)
	e.answer(f, "6.2 miles")
	e.clock.Advance(10 * time.Second)
	maxAge := hdr("authorization", "Bearer sk-alice", "cache-control", "max-age=5")
	f, got := e.ask(maxAge, "convert 100 km to miles", nil)
	if strings.Contains(got, "serve") {
		t.Fatalf("setup: %q", got)
	}
	e.answer(f, "62 miles")
	if cs := f.CacheStatusValue(); strings.Contains(cs, "fwd=request") {
		t.Fatalf("a question nothing was stored for says %q (%q): another question's entry was taken for its own", cs, got)
	}
}
