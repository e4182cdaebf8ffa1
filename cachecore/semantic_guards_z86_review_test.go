package cachecore

import "testing"

// Review Z86: hostile near-duplicate pairs — the same words with one
// detail changed, each needing another answer — that every guard lets
// through (vetoes returns 0), so a confirmed near match would serve one
// question the other's answer.

func z86Vetoed(t *testing.T, pairs [][2]string) {
	t.Helper()
	g := Guards{Numbers: true, Negation: true, Entities: true}
	for _, c := range pairs {
		if vetoes(&g, c[0], c[1]) == 0 || vetoes(&g, c[1], c[0]) == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// README (numbers): "the operators and signs next to a digit, in order".
// A factorial's "!", a bitwise or logical "~"/"!" before a digit are
// dropped by tokenize: "5! + 3" (123) reads as "5 + 3" (8).
func TestGuardsZ86VetoFactorialAndUnarySigns(t *testing.T) {
	z86Vetoed(t, [][2]string{
		{"What is 5! + 3?", "What is 5 + 3?"},
		{"How many digits does 10! have?", "How many digits does 10 have?"},
		{"In JavaScript, what is ~5?", "In JavaScript, what is !5?"},
		{"What does !!0 return in JavaScript?", "What does !0 return in JavaScript?"},
	})
}

// Operators and signs of category Po next to a digit are dropped: the
// full-width "＊" and "／" a CJK keyboard types, per mille "‰" against per
// ten thousand "‱", and the German division colon against the
// multiplication dot ("15:3" is 5, "15·3" is 45).
func TestGuardsZ86VetoPunctuationOperatorsNextToDigits(t *testing.T) {
	z86Vetoed(t, [][2]string{
		{"What is 12＊3?", "What is 12／3?"},
		{"Convert 5‰ to percent", "Convert 5‱ to percent"},
		{"Was ist 15:3?", "Was ist 15·3?"},
		{"What is 5·3?", "What is 5:3?"},
	})
}

// quantities trims every leading zero (strings.TrimLeft(w, "0")), so a
// number's written form with a leading zero is the number without: an
// octal literal (0777 is 511), a string of digits, a literal Python 3
// rejects.
func TestGuardsZ86VetoLeadingZeros(t *testing.T) {
	z86Vetoed(t, [][2]string{
		{"What is 0777 in decimal?", "What is 777 in decimal?"},
		{"In JavaScript, what is 010 + 1?", "In JavaScript, what is 10 + 1?"},
		{"How many digits does 007 have?", "How many digits does 7 have?"},
		{"Is 0123 a valid integer literal in Python 3?", "Is 123 a valid integer literal in Python 3?"},
	})
}

// README (entities): "the same persons ("who are you" ≠ "who am I" …);
// the "I" or "you" of "how do I", "can you explain", "if I", "am I
// allowed" with no other pronoun is anyone". persons takes any subject
// pronoun after any modal as anyone, "did" included, so a past question
// about one person passes for the same question about another.
func TestGuardsZ86VetoOtherPersonsAfterDid(t *testing.T) {
	z86Vetoed(t, [][2]string{
		{"Why did I fail the exam?", "Why did you fail the exam?"},
		{"What did I say?", "What did you say?"},
		{"Did they win the match?", "Did we win the match?"},
		{"Where did we park?", "Where did they park?"},
	})
}

// A punctuation sign quoted or in backticks is what the turn asks about
// (README: a quoted or backticked word is a name; code's signs standing as
// words are compared), but a lone ".", ",", ":" or ";" is dropped as prose
// even so.
func TestGuardsZ86VetoQuotedPunctuationSigns(t *testing.T) {
	z86Vetoed(t, [][2]string{
		{"What does the `:` mean in Python slicing?", "What does the `;` mean in Python slicing?"},
		{"How do I escape '.' in a regex?", "How do I escape ',' in a regex?"},
	})
}
