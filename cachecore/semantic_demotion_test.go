package cachecore

import (
	"strings"
	"testing"
	"time"
)

const semShadowCfg = `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
  "ttl":"1h","shadow":{"sample":1.0,"max_concurrent":4,"min_samples":1,"max_divergence":0.1,"min_tenants":1},
  "semantic":{"embedding":{"cluster":"embeddings","model":"e5"}}}]}`

func newSemShadowEnv(t *testing.T) *semEnv {
	e := newSemEnv(t, "")
	e.testEnv = newEnv(t, semShadowCfg)
	return e
}

// nearHit stores q's answer, confirms it, and returns the flight of a near hit on para.
func (e *semEnv) nearHit(t *testing.T, h [][2]string, q, para, answer string) *Flight {
	t.Helper()
	f, _ := e.ask(h, q, nil)
	e.answer(f, answer)
	e.ask(h, q, nil) // exact hit: confirms (and is itself not shadowed here)
	f, got := e.ask(h, para, nil)
	if !strings.HasSuffix(got, "serve") {
		t.Fatalf("setup: near hit: %q", got)
	}
	return f
}

// shadowStart starts the shadow comparison of near hit f (as Stream.Served
// does when it is served); diverge answers it with a fresh answer that
// diverges and returns the action kinds of the result.
func (e *semEnv) shadowStart(t *testing.T, f *Flight, h [][2]string) *Call {
	t.Helper()
	acts := e.cache.Shadow(f.Request(), append(hdr(":method", "POST", ":path", "/v1/chat/completions"), h...))
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("setup: shadow: %s", actionKinds(acts))
	}
	return acts[0].Call
}

func diverge(c *Call) string {
	return actionKinds(c.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("a different answer"))}))
}

func (e *semEnv) shadowDiverge(t *testing.T, f *Flight, h [][2]string) string {
	return diverge(e.shadowStart(t, f, h))
}

// README (semantic): "a near hit whose fresh answer diverges demotes its
// entry (never a near match again while that answer lives; exact hits
// still reach it)". A demotion is written into the entry's confirmation
// slot (one of 16,384, shared by every tenant's answers); semUpdate
// refuses to write while another entry's demotion holds that slot, so the
// second demotion was silently dropped (review Z6, stop 72): no
// semantic.demoted, and once the first demoted entry died, one exact hit
// re-confirmed the answer whose near hit the model contradicted, and it
// spread to paraphrases again. A demotion is now also marked in the entry
// itself (FlagDemoted), which a near match reads.
// (semConfirmSlots is 1 here to make the two answers share a slot, which
// happens in production with probability 1/16,384 per pair — and with
// every slot a tenant's own demoted answers hold: one tenant asking for
// random answers can hold many.)
func TestDemotionHoldsWhenItsSlotIsAnotherAnswersDemotion(t *testing.T) {
	old := semConfirmSlots
	semConfirmSlots = 1
	t.Cleanup(func() { semConfirmSlots = old })
	e := newSemShadowEnv(t)
	// D: stored first, confirmed, near hit served (its shadow call out).
	fD := e.nearHit(t, bob, "How do I reset my password?", "How can I reset my password?", "Click 'forgot password'.")
	callD := e.shadowStart(t, fD, bob)
	e.clock.Advance(30 * time.Minute)
	// E: stored 30 min later, confirmed (its record replaces D's
	// confirmation in the shared slot), near hit served.
	fE := e.nearHit(t, alice, "What is the capital of France?", "Tell me the capital of France?", "Paris")
	callE := e.shadowStart(t, fE, alice)
	// Both comparisons come back divergent: D's first, then E's.
	if got := diverge(callD); got != "shadow.diverge semantic.demoted" {
		t.Fatalf("setup: D's comparison: %q", got)
	}
	gotE := diverge(callE)
	if gotE != "shadow.diverge semantic.demoted" {
		t.Fatalf("E's comparison, its record's slot held by D's demotion: %q", gotE)
	}
	// D's answer dies (ttl 1h from its store); E's lives 30 min more.
	e.clock.Advance(31 * time.Minute)
	if f, got := e.ask(alice, "What is the capital of France?", nil); f.Request().Status != StatusHit {
		t.Fatalf("setup: E is alive and hit exactly: %q", got)
	}
	if f, got := e.ask(alice, "Please tell me the capital of France?", nil); strings.HasSuffix(got, "serve") {
		t.Fatalf("an answer whose near hit diverged (%q) answers a near match again while it lives: %q (served %s)",
			gotE, got, f.Request().Entry.Body)
	}
}

// The same with confirm.exact_hits 0 ("0: at once"): no confirmation is
// needed, so the entry whose demotion was dropped keeps answering near
// matches right away.
func TestDemotionHoldsWithExactHitsZeroWhenItsSlotIsHeld(t *testing.T) {
	old := semConfirmSlots
	semConfirmSlots = 1
	t.Cleanup(func() { semConfirmSlots = old })
	e := newSemShadowEnv(t)
	e.testEnv = newEnv(t, strings.Replace(semShadowCfg, `"model":"e5"}`, `"model":"e5"},"confirm":{"exact_hits":0}`, 1))
	fD := e.nearHit(t, bob, "How do I reset my password?", "How can I reset my password?", "Click 'forgot password'.")
	if got := e.shadowDiverge(t, fD, bob); got != "shadow.diverge semantic.demoted" {
		t.Fatalf("setup: D's comparison: %q", got)
	}
	fE := e.nearHit(t, alice, "What is the capital of France?", "Tell me the capital of France?", "Paris")
	gotE := e.shadowDiverge(t, fE, alice)
	if f, got := e.ask(alice, "Please tell me the capital of France?", nil); strings.HasSuffix(got, "serve") {
		t.Fatalf("an answer whose near hit diverged (%q) answers the next near match: %q (served %s)", gotE, got, f.Request().Entry.Body)
	}
}
