package cachecore

import (
	"strings"
	"testing"
)

// Review Z271: near matches the guards let through although the two turns
// need different answers, and a semantic counter that counts entries no
// near match can ever reach.

func z271Vetoed(t *testing.T, pairs [][2]string) {
	t.Helper()
	for _, c := range pairs {
		if vetoes(&allGuards, c[0], c[1]) == 0 || vetoes(&allGuards, c[1], c[0]) == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// README (entities): "the same persons ("who are you" ≠ "who am I", "your
// name" ≠ "my name"; the "I" or "you" of "how do I", … "am I allowed"
// with no other pronoun is anyone …)". The "I" after a modal is anyone,
// but a "he" or "she" is never generic: it names someone the conversation
// (the partition: the earlier turns are equal) introduced. otherPersons
// compares persons only when each side names one; a side whose only
// pronoun is a generic "I" names none (persons returns ""), and
// outside(pb, "") is false, so any third person on the other side
// passes. In a conversation that began "I'm a US citizen; my husband has
// an Indian passport", "Does he need a visa for Japan?" is served the
// answer to "Do I need a visa for Japan?" (no), and so on.
func TestGuardsZ271VetoAThirdPersonAgainstAGenericOne(t *testing.T) {
	z271Vetoed(t, [][2]string{
		{"Do I need a visa for Japan?", "Does he need a visa for Japan?"},
		{"Am I allowed to vote?", "Is he allowed to vote?"},
		{"Should I take the job offer?", "Should she take the job offer?"},
		{"How much tax do I owe?", "How much tax does she owe?"},
	})
}

// README (entities): "no rare content word on one side only … a word is
// framing by its stem only if it inflects a framing word, "explaining" as
// "explain"; a noun in -ing that names another thing than its verb's …
// is not cut to its stem". stem cuts "-ed" and "-ing" alike, so a
// participle in -ed (the one who feels, or the one acted on) and its
// participle in -ing (the one who causes, or who acts) are one word for
// rareDifference and contentOrder: "How do I stop being annoyed?" (how to
// cope) is served the answer to "How do I stop being annoying?" (how to
// change one's behaviour), "Who is the man being followed?" the answer to
// "Who is the man following?" — the roles reversed.
func TestGuardsZ271VetoParticiplesInEdAgainstIng(t *testing.T) {
	z271Vetoed(t, [][2]string{
		{"How do I stop being annoying?", "How do I stop being annoyed?"},
		{"Why am I so bored?", "Why am I so boring?"},
		{"Why is my girlfriend so confused?", "Why is my girlfriend so confusing?"},
		{"Who is the man being followed?", "Who is the man following?"},
		{"Why is my cat scared of me?", "Why is my cat scaring me?"},
	})
}

// README (entities): "framing words … may differ, but not the common
// words that carry the ask when each side has another ("give feedback" ≠
// "get feedback", …)". askWords has "make" but "let" is only a framing
// verb ("let me know"), so a "let" swapped for a "make" — permitting
// against forcing — is taken for framing: "Should I let my son quit
// football?" is served the answer to "Should I make my son quit
// football?".
func TestGuardsZ271VetoLetAgainstMake(t *testing.T) {
	z271Vetoed(t, [][2]string{
		{"Should I let my son quit football?", "Should I make my son quit football?"},
		{"Should I let him drive?", "Should I make him drive?"},
	})
}

// README Stats: semantic.confirmed; events.go: "an entry became reachable
// by near matches". semanticExactHit counts an exact hit towards
// confirmation on every entry of a semantic route, whether or not its
// request has a turn the semantic step embeds and indexes: an entry whose
// last user message is not text (content parts), or a completion with
// echo, is never indexed nor reached by a near match (semanticQuery
// refuses it), yet its first exact hit counts semantic.confirmed and
// writes a confirmation record — which takes the slot of an answer near
// matches do reach (16,384 slots; "an answer whose slot another answer
// took is unconfirmed again").
func TestSemanticZ271ExactHitOfAnUnindexableEntryConfirmsNothing(t *testing.T) {
	e := newSemEnv(t, "")
	body := `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"How do I reset my password?"}]}]}`
	f, got := e.semAskBody("chat", "/v1/chat/completions", alice, body, "")
	if strings.Contains(got, "embed") || strings.HasSuffix(got, "serve") {
		t.Fatalf("first ask: %q", got)
	}
	f.ResponseHeaders(200, jsonCT, OriginUpstream, false)
	if acts := actionKinds(mustComplete(f, jsonCT, []byte(chatResponse("Click 'forgot password'.")))); strings.Contains(acts, "semantic.indexed") {
		t.Fatalf("content parts indexed: %q", acts)
	}
	f, got = e.semAskBody("chat", "/v1/chat/completions", alice, body, "")
	if !strings.HasSuffix(got, "serve") {
		t.Fatalf("exact hit: %q", got)
	}
	if strings.Contains(got, "semantic.confirmed") {
		t.Errorf("an entry no near match can reach counted semantic.confirmed: %q", got)
	}
	if v, _, err := e.cache.store.Get(semConfirmKey(f.Request().FP)); err == nil && len(v) > 0 {
		t.Errorf("an entry no near match can reach took a confirmation slot: % x", v)
	}
}

func mustComplete(f *Flight, ct [][2]string, body []byte) []Action {
	_, acts := f.Complete(ct, body, 5, alice)
	return acts
}
