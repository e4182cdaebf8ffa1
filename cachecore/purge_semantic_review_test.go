package cachecore

import (
	"strings"
	"testing"
)

// purgeReplay purges by replay alice's chat request for prompt.
func (e *semEnv) purgeReplay(prompt string) {
	e.t.Helper()
	res, err := e.cache.Purge([]byte(`{"method":"POST","path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":`+
		chatRequest(prompt)+`}`), "")
	if err != nil || res.Freed != 1 {
		e.t.Fatalf("setup: purge of %q: freed %d, %v", prompt, res.Freed, err)
	}
	if _, got := e.ask(alice, prompt, nil); strings.HasSuffix(got, "serve") {
		e.t.Fatalf("setup: %q still served after its purge: %q", prompt, got)
	}
}

// Review Z204. A purge by replay takes the entry out of the table, but its
// turn's record stays in the semantic index, counted against max_entries
// and "fresh" (it carries the purged answer's fresh-until), so no sweep
// drops it: an index whose turns were all purged this way stays full, and
// every new answer's turn is refused (semantic.index_full) until the
// purged answers' ttl (here 1 h) has passed. A purge of the model or of
// everything frees them at once (TestSemanticSweepDropsPurgedTurns); the
// records of answers purged one by one can never be served again either
// (a near match needs the entry in the table) and must not keep the index
// full. Expected: the third question's turn is indexed.
func TestSemanticSweepDropsTurnsPurgedByReplay(t *testing.T) {
	e := newSemEnv(t, "")
	e.testEnv = newEnv(t, semPurgeConfig) // max_entries 2, ttl 1h
	store := func(q string) string { f, _ := e.ask(alice, q, nil); return e.answer(f, "a") }
	for _, q := range []string{"question number one", "question number two"} {
		if got := store(q); !strings.Contains(got, "semantic.indexed") {
			t.Fatalf("setup: %q not indexed: %q", q, got)
		}
	}
	e.purgeReplay("question number one")
	e.purgeReplay("question number two")
	if got := store("question number three"); !strings.Contains(got, "semantic.indexed") {
		t.Fatalf("after both indexed answers were purged by replay, a new answer's turn is not indexed: %q", got)
	}
}
