package cachecore

import (
	"fmt"
	"strings"
	"testing"
)

// A near hit whose shadow comparison diverged demotes its entry: "never a
// near match again" (README). The demotion lives in a confirmation slot
// that any other answer's exact hit takes over; the demoted entry is then
// merely unconfirmed, and one more exact hit makes it reachable by near
// matches again.
func TestSemanticDemotionSurvivesConfirmSlotReuse(t *testing.T) {
	e := newSemEnv(t, "")
	q, para := "How do I reset my password?", "How can I reset my password?"
	f, _ := e.ask(alice, q, nil)
	e.answer(f, "Click 'forgot password'.")
	e.ask(alice, q, nil) // exact hit: confirmed
	f, got := e.ask(alice, para, nil)
	if !strings.HasSuffix(got, "serve") {
		t.Fatalf("near hit: %q", got)
	}
	if acts := e.cache.semanticShadow(f.Request(), false); actionKinds(acts) != "semantic.demoted" {
		t.Fatalf("demotion: %q", actionKinds(acts))
	}
	if _, got := e.ask(alice, "How could I reset my password?", nil); strings.HasSuffix(got, "serve") {
		t.Fatalf("demoted entry served right away: %q", got)
	}
	// Another answer (any tenant, any question) whose slot is the demoted
	// one's (one in 16,384: a client asking many questions finds it) is
	// stored and hit exactly.
	fpOf := func(h [][2]string, prompt string) uint64 {
		req := e.cache.Begin(e.route("chat"), "POST", "/v1/chat/completions", h)
		e.cache.SetBody(req, []byte(chatRequest(prompt)))
		e.cache.Lookup(req)
		return req.FP
	}
	slot := fpOf(alice, q) % semConfirmSlots
	other := ""
	for i := 0; other == ""; i++ {
		if p := fmt.Sprintf("question number %d", i); fpOf(bob, p)%semConfirmSlots == slot {
			other = p
		}
	}
	f, _ = e.ask(bob, other, nil)
	e.answer(f, "a")
	e.ask(bob, other, nil)
	// The demoted answer is asked exactly once more...
	e.ask(alice, q, nil)
	// ...and answers near matches again.
	if _, got := e.ask(alice, "How might I reset my password?", nil); strings.HasSuffix(got, "serve") {
		t.Fatalf("a demoted entry answered a near match again after its slot was reused: %q", got)
	}
}

// A demotion holds its slot against other answers' records only while
// its entry lives, and never against its own entry's.
func TestSemanticDemotionHoldsItsSlotWhileItsEntryLives(t *testing.T) {
	v := semConfirm{demoted: true, storedAt: 10, until: 5000}.encodeFor(7)
	for _, c := range []struct {
		fp   uint64
		now  int64
		held bool
	}{{8, 4999, true}, {8, 5000, false}, {7, 4999, false}} {
		if got := heldFrom(v, c.fp, c.now); got != c.held {
			t.Errorf("fp %d at %d: held %v, want %v", c.fp, c.now, got, c.held)
		}
	}
	if heldFrom(semConfirm{agreed: true, until: 5000}.encodeFor(7), 8, 0) {
		t.Error("a record that is not a demotion holds its slot")
	}
}
