package cachecore

import "testing"

// Review Z91: the signs review Z86's mend reads next to a digit, written
// another way the mend does not read. Each pair needs another answer and
// every guard lets it through (vetoes returns 0 both ways), so a confirmed
// near match serves one question the other's answer.

func z91Vetoed(t *testing.T, pairs [][2]string) {
	t.Helper()
	for _, c := range pairs {
		if vetoes(&allGuards, c[0], c[1]) == 0 || vetoes(&allGuards, c[1], c[0]) == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}

// README (numbers): "-40" ≠ "40" ("any dash next to a digit is a minus")
// and ".5 mg" ≠ "5 mg" (= "0.5 mg"). A minus before a decimal point is
// next to the point, not the digit: tokenize drops it, and "-.5" reads
// ".5" (the point still opens the number "0.5").
func TestGuardsZ91VetoMinusBeforeADecimalPoint(t *testing.T) {
	z91Vetoed(t, [][2]string{
		{"What is -.5 + 1?", "What is .5 + 1?"},
		{"What is –.5 + 1?", "What is .5 + 1?"},
		{"What is x if x = -.75 * 4?", "What is x if x = .75 * 4?"},
		{"What is 2 to the power -.5?", "What is 2 to the power .5?"},
	})
}

// README (numbers): "~5" ≠ "!5" ≠ "5". unaryRun reads a run of "!" and
// "~" as signs only when a digit follows it at once; a sign between the
// run and the digit ("!-1", "~-5", "!.5") drops the run, and a "-"
// before the run ("-~5") is dropped too: JavaScript's !-1 is false, ~-5
// is 4, -~5 is 6.
func TestGuardsZ91VetoUnarySignsBeforeASignedNumber(t *testing.T) {
	z91Vetoed(t, [][2]string{
		{"What does !-1 return in JavaScript?", "What does -1 return in JavaScript?"},
		{"In JavaScript, what is ~-5?", "In JavaScript, what is -5?"},
		{"In JavaScript, what is -~5?", "In JavaScript, what is ~5?"},
		{"In C, what is !!-1?", "In C, what is -1?"},
		{"What is !.5 in JavaScript?", "What is .5 in JavaScript?"},
	})
}

// README (numbers): "5! + 3" ≠ "5 + 3" and a full-width sign reads as its
// ASCII one ("＊" is "*"). The full-width "！" a CJK keyboard types is
// Terminal_Punctuation, so prosePunct drops it even when it closes no
// sentence: "5！+ 3" (123) reads "5 + 3" (8).
func TestGuardsZ91VetoFullWidthFactorial(t *testing.T) {
	z91Vetoed(t, [][2]string{
		{"What is 5！+ 3?", "What is 5 + 3?"},
		{"What is 3！ + 1?", "What is 3 + 1?"},
		{"What is 10！/ 5！?", "What is 10 / 5?"},
	})
}

// README (numbers): "any sign alone in quotes or backticks: "`:`" ≠
// "`;`", "'.'" ≠ "','"". quoteMark knows only " ' ` “ ” ‘ ’ « »: a sign
// in German „…“ or ‚…‘, CJK 「…」 or 『…』, or French « … » (with the
// spaces French typography puts inside) is dropped as prose.
func TestGuardsZ91VetoSignAloneInOtherQuoteMarks(t *testing.T) {
	z91Vetoed(t, [][2]string{
		{"Was bedeutet „:“ in Python?", "Was bedeutet „;“ in Python?"},
		{"What does ‚.‘ match in a regex?", "What does ‚,‘ match in a regex?"},
		{"What does 「:」 mean in Python?", "What does 「;」 mean in Python?"},
		{"What does 『:』 mean in Python?", "What does 『;』 mean in Python?"},
		{"What does « : » mean in Python?", "What does « ; » mean in Python?"},
	})
}

// The mission (never a wrong answer) past README's letter, which reads
// these signs only next to a digit: the same signs after or between
// one-letter variables are dropped, "n! + 1" reads "n + 1" (121 against
// 6 for n = 5) and "x·y" (a product, 18) reads "x:y" (a ratio, 2).
func TestGuardsZ91VetoSignsNextToAVariable(t *testing.T) {
	z91Vetoed(t, [][2]string{
		{"If n = 5, what is n! + 1?", "If n = 5, what is n + 1?"},
		{"If x = 6 and y = 3, what is x·y?", "If x = 6 and y = 3, what is x:y?"},
	})
}
