package cachecore

import (
	"strings"
	"testing"
)

// Review Z196: the numbers guard compares the numbers and the operators
// next to a digit in order, but drops every bracket (only an empty pair
// "()" and a minus right before "(" are read). Two formulas that group
// the same numbers and operators differently read alike, yet have
// different values: "(2 + 3) * 4" is 20, "2 + (3 * 4)" is 14. A small
// encoder scores such turns as near duplicates (they share every word and
// number), so a confirmed near match serves one the other's answer.

func z196Vetoed(t *testing.T, pairs [][2]string) {
	t.Helper()
	for _, c := range pairs {
		if vetoes(&allGuards, c[0], c[1]) == 0 || vetoes(&allGuards, c[1], c[0]) == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// Grouping changes the value: each pair needs another answer, and every
// guard lets it through. Expected: vetoed (veto.numbers), as "7+5" ≠ "7*5".
func TestGuardsZ196VetoGroupingBrackets(t *testing.T) {
	z196Vetoed(t, [][2]string{
		{"What is (2 + 3) * 4?", "What is 2 + (3 * 4)?"},   // 20 / 14
		{"What is (2+3)*4?", "What is 2+(3*4)?"},           // unspaced
		{"What is 2 * (3 + 4)?", "What is 2 * 3 + 4?"},     // 14 / 10
		{"What is 100 / (5 * 2)?", "What is 100 / 5 * 2?"}, // 10 / 40
		{"Evaluate 8 - (3 - 2)", "Evaluate 8 - 3 - 2"},     // 7 / 3
		{"What is (-3)^2?", "What is -3^2?"},               // 9 / -9
		{"What is √(9 + 16)?", "What is √9 + 16?"},         // 5 / 19
		{"Solve (x + 2) / 3 = 4", "Solve x + 2 / 3 = 4"},   // 10 / 10/3
	})
}

// Brackets of another kind are another object: a closed interval is not
// an open one ("[0, 1]" is compact, "(0, 1)" is not), a Python set is not
// a list (len({1, 1, 2}) is 2, len([1, 1, 2]) is 3). Expected: vetoed, as
// code's empty brackets are ("()" ≠ "[]", README).
func TestGuardsZ196VetoBracketKinds(t *testing.T) {
	z196Vetoed(t, [][2]string{
		{"Is the interval [0, 1] compact?", "Is the interval (0, 1) compact?"},
		{"Is 3 in the interval [2, 3]?", "Is 3 in the interval (2, 3)?"},
		{"In Python what is the length of {1, 1, 2}?", "In Python what is the length of [1, 1, 2]?"},
	})
}

// README (entities): "so is every word with a code sign in it, compared as
// written". In backticks a regex's "?" quantifier is code, but
// codeFragments trims a trailing "?" (and tokenize reads it as a
// sentence's end), so "`ab?`" (matches "a" or "ab") reads "`ab`"
// (matches "ab" only). Expected: vetoed, as "`sorted()`" ≠ "`sort()`".
func TestGuardsZ196VetoRegexQuantifierInBackticks(t *testing.T) {
	z196Vetoed(t, [][2]string{
		{"In regex, what does `ab?` match?", "In regex, what does `ab` match?"},
	})
}

// README (numbers): "1,5 kg" (a decimal comma) ≠ "15 kg", numbers compared
// as written. numberText drops a comma before exactly three digits as an
// English thousands separator, in every language: in a German or Italian
// turn (no English word: english() is false) "1,250 kg" is 1.25 kg, yet it
// reads "1250", equal to the other turn's 1250 kg, a thousandfold. Expected:
// vetoed (a turn that is not English keeps its comma; the guards err
// towards a miss).
func TestGuardsZ196VetoDecimalCommaBeforeThreeDigitsOutsideEnglish(t *testing.T) {
	z196Vetoed(t, [][2]string{
		{"Wie viele Gramm sind 1,250 kg?", "Wie viele Gramm sind 1250 kg?"},
		{"Quanto fa 1,500 per 2?", "Quanto fa 1500 per 2?"},
	})
}

// The same through the cache: the confirmed answer to "(2 + 3) * 4" (20)
// is served, as a near hit, to "2 + (3 * 4)" (14). Expected: a miss that
// goes upstream (semantic.veto.numbers), never the other formula's answer.
func TestSemanticZ196NearHitNeverAnswersAnotherGrouping(t *testing.T) {
	e := newSemEnv(t, "")
	q := "What is (2 + 3) * 4?"
	f, _ := e.ask(alice, q, nil)
	e.answer(f, "(2 + 3) * 4 = 20")
	e.ask(alice, q, nil) // exact hit: confirmed
	f, got := e.ask(alice, "What is 2 + (3 * 4)?", nil)
	if strings.HasSuffix(got, "serve") {
		_, _, body := e.cache.HitResponse(f.Request())
		t.Fatalf("\"2 + (3 * 4)\" (14) was answered with the answer to \"(2 + 3) * 4\" (%q): %s", got, body)
	}
}
