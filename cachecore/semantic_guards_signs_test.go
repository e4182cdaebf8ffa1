package cachecore

import (
	"strings"
	"testing"
)

// Review R5 (stop 71; the stop-71 mend of the numbers guard). README numbers guard:
// "the operators and signs next to a digit" ("-40" ≠ "40"); the mend reads
// − – — ‒ － as a minus, but the other dashes that autocorrect and
// keyboards type for a minus (U+2010 hyphen, U+2011 non-breaking hyphen,
// U+FE63 small hyphen-minus) are still dropped: "‐40 °F" reads "40 °F".
func TestGuardsVetoOtherMinusDashes(t *testing.T) {
	for _, c := range []struct{ name, a, b string }{
		{"U+2010 hyphen", "What is ‐40 °F in Celsius?", "What is 40 °F in Celsius?"},
		{"U+2011 non-breaking hyphen", "What is ‑40 °F in Celsius?", "What is 40 °F in Celsius?"},
		{"U+FE63 small hyphen-minus", "What is ﹣40 °F in Celsius?", "What is 40 °F in Celsius?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&allGuards, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed (quantities %v / %v)", c.a, c.b, quantities(tokenize(c.a)), quantities(tokenize(c.b)))
			}
		})
	}
}

// The mend reads ′ ″ and ' " after a digit as feet and inches, but not the
// other ways inches are written: two apostrophes ("5”", the usual ASCII
// double prime) read as one, feet; ′′ likewise; and the typographic quotes
// autocorrect puts there (’ ”) are dropped, so 5 ft reads as 5 in.
func TestGuardsVetoOtherPrimeForms(t *testing.T) {
	for _, c := range []struct{ name, a, b string }{
		{"' vs ''", "How many cm is 5'?", "How many cm is 5''?"},
		{"′ vs ′′", "How many cm is 5′?", "How many cm is 5′′?"},
		{"’ vs ” (autocorrected)", "How many cm is 5’?", "How many cm is 5”?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&allGuards, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed (quantities %v / %v)", c.a, c.b, quantities(tokenize(c.a)), quantities(tokenize(c.b)))
			}
		})
	}
}

// casedUnits lists MHz but not mHz, and mA/MA, GiB/Gib not at all: the
// unit fold reads millihertz as megahertz (both "MHz"), and milliamps as
// megaamps; the entities guard folds the case too.
func TestGuardsVetoOtherCasedUnits(t *testing.T) {
	for _, c := range []struct{ name, a, b string }{
		{"mHz vs MHz", "What is the period of a 100 mHz signal?", "What is the period of a 100 MHz signal?"},
		{"mA vs MA", "Is a 5 mA current dangerous?", "Is a 5 MA current dangerous?"},
		{"GiB vs Gib", "How many bytes is 10 GiB?", "How many bytes is 10 Gib?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&allGuards, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed (quantities %v / %v)", c.a, c.b, quantities(tokenize(c.a)), quantities(tokenize(c.b)))
			}
		})
	}
}

// Through the cache: the confirmed answer for 40 °F is served to the
// question about −40 °F typed with a hyphen (U+2010).
func TestNearHitNeverAnswersMinusFortyWithForty(t *testing.T) {
	e := newSemEnv(t, "")
	q := "What is 40 °F in Celsius?"
	f, _ := e.ask(alice, q, nil)
	e.answer(f, "40 °F is about 4.4 °C.")
	e.ask(alice, q, nil) // exact hit: confirmed
	f, got := e.ask(alice, "What is ‐40 °F in Celsius?", nil)
	if strings.HasSuffix(got, "serve") {
		_, _, body := e.cache.HitResponse(f.Request())
		t.Fatalf("the ‐40 °F question was answered with the 40 °F answer (%q): %s", got, body)
	}
}
