package cachecore

import "testing"

// Review Z96: the signs reviews Z86 and Z91 made the numbers guard read,
// written another way the mends do not read. Each pair needs another
// answer and every guard lets it through (vetoes returns 0 both ways), so
// a confirmed near match serves one question the other's answer.

func z96Vetoed(t *testing.T, pairs [][2]string) {
	t.Helper()
	for _, c := range pairs {
		if vetoes(&allGuards, c[0], c[1]) == 0 || vetoes(&allGuards, c[1], c[0]) == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// README (numbers): "-~5" ≠ "~5", "-.5" ≠ ".5", and "- 5" ≠ "5" is
// vetoed (digitAfter skips spaces). The minus rule of review Z91 looks
// only at rs[i+1]: with a space before the "~", "!" or "." the minus
// is dropped, so "- ~5" (6 in JavaScript) reads "~5" (-6), "- !!5" (-1)
// reads "!!5" (true) and "- .5" reads ".5".
func TestGuardsZ96VetoSpacedMinusBeforeAUnarySignOrAPoint(t *testing.T) {
	z96Vetoed(t, [][2]string{
		{"In JavaScript, what is - ~5?", "In JavaScript, what is ~5?"},
		{"In JavaScript, what is - !!5?", "In JavaScript, what is !!5?"},
		{"What is - .5 + 1?", "What is .5 + 1?"},
		{"What is – .5 + 1?", "What is .5 + 1?"},
	})
}

// The mission (never a wrong answer), the same sign as "-40" ≠ "40": a
// minus before a bracket is next to no digit and dropped, so "-(3 + 2) *
// 4" (-20) reads "(3 + 2) * 4" (20).
func TestGuardsZ96VetoMinusBeforeABracket(t *testing.T) {
	z96Vetoed(t, [][2]string{
		{"What is -(3 + 2) * 4?", "What is (3 + 2) * 4?"},
		{"In JavaScript, what is -(~5)?", "In JavaScript, what is (~5)?"},
		{"What is 2^-(1)?", "What is 2^(1)?"},
	})
}

// README (numbers): "x·y" ≠ "x:y" ("the same signs next to a one-letter
// variable"), and "6 · 3" ≠ "6 : 3" is vetoed with spaces. Between
// variables the Po and colon rules look only at the adjacent runes
// (variableAt(rs, i±1), operandAt(rs, i±1)): spaced as a formula is
// usually typed, "x · y" (18) and "x : y" (2) both drop their sign.
func TestGuardsZ96VetoSpacedSignsBetweenVariables(t *testing.T) {
	z96Vetoed(t, [][2]string{
		{"If x = 6 and y = 3, what is x · y?", "If x = 6 and y = 3, what is x : y?"},
		{"If a = 6 and b = 3, what is a · b?", "If a = 6 and b = 3, what is a : b?"},
	})
}

// README (numbers): "5‰" ≠ "5‱" and "the same signs next to a one-letter
// variable". The Po rule reads a sign after a digit, but after a variable
// only when another variable follows: "x‰" and "x‱" are both dropped.
func TestGuardsZ96VetoPoSignAfterAVariable(t *testing.T) {
	z96Vetoed(t, [][2]string{
		{"If x = 3, what is x‰ of 200?", "If x = 3, what is x‱ of 200?"},
	})
}

// README (numbers): "any sign alone in quotes of any kind": „:“, 「:」.
// quotedAlone wants a space, a "(" or the turn's start before the opening
// mark, or a CJK corner bracket; Chinese and Japanese put no space before
// the curly quotes they write: "Python中的“:”" / "…“;”" are both dropped.
func TestGuardsZ96VetoSignInQuotesAfterACJKWord(t *testing.T) {
	z96Vetoed(t, [][2]string{
		{"Python中的“:”是什么意思？", "Python中的“;”是什么意思？"},
		{"Python中的‘.’是什么意思？", "Python中的‘,’是什么意思？"},
		{"Pythonの“:”とは何ですか？", "Pythonの“;”とは何ですか？"},
	})
}

// README (numbers): "～5" reads "~5" (a full-width sign is its ASCII one),
// "~5" ≠ "-5". The WAVE DASH "〜" (U+301C) is the tilde a Japanese IME on
// macOS types; it is of category Pd, so the dash rule reads it as a
// minus: "〜5" (C: -6) reads "-5".
func TestGuardsZ96VetoWaveDashIsNoMinus(t *testing.T) {
	z96Vetoed(t, [][2]string{
		{"In C, what is 〜5?", "In C, what is -5?"},
	})
}
