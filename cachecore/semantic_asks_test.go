package cachecore

import (
	"strings"
	"testing"
)

// Different questions whose turns differ only in a sign, an operator, a
// decimal comma or a question word: each needs a different answer, so a
// near match between them must be vetoed.
func TestGuardsVetoAsksThatDifferInASymbolOrQuestionWord(t *testing.T) {
	g := Guards{Numbers: true, Negation: true, Entities: true}
	for _, c := range [][2]string{
		{"What is 7+5?", "What is 7*5?"},                                          // operator dropped
		{"Convert -40 celsius to fahrenheit", "Convert 40 celsius to fahrenheit"}, // minus sign dropped
		{"What time is it in UTC+5?", "What time is it in UTC-5?"},                // sign of an offset
		{"How many grams is 1,5 kg?", "How many grams is 15 kg?"},                 // decimal comma read as a thousands separator
		{"When was Albert Einstein born?", "Where was Albert Einstein born?"},     // question word
		{"How do I get to Paris?", "How do I get from Paris?"},                    // direction
	} {
		if v := vetoes(&g, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// The same through the cache: with the answer to "What is 7+5?" stored
// and confirmed (asked twice), "What is 7*5?" — close by any small
// encoder, here identical vectors — is answered "12" as a near hit.
func TestSemanticNearHitNeverAnswersAnotherArithmetic(t *testing.T) {
	e := newSemEnv(t, "")
	f, _ := e.ask(alice, "What is 7+5?", nil)
	e.answer(f, "12")
	e.ask(alice, "What is 7+5?", nil) // exact hit: confirmed
	f, got := e.ask(alice, "What is 7*5?", nil)
	if strings.HasSuffix(got, "serve") {
		_, _, body := e.cache.HitResponse(f.Request())
		t.Fatalf("\"What is 7*5?\" answered from \"What is 7+5?\" (%q): %s", got, body)
	}
}
