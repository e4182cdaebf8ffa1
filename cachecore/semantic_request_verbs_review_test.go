package cachecore

import "testing"

// README: framing words may differ; "give feedback" ≠ "get feedback"
// because "give" and "get" carry the ask. "share", "give" and "provide"
// are all framing verbs of a request (framingVerbs) and say the same in
// "can you share / give me / provide an example", but askWords puts
// "share" in a class of its own, so each such pair is a substitution and
// vetoes: a request framed with "share" never reaches an answer asked
// with "give" or "provide". These passed before the ask classes; cosines
// with the shipped model 0.98-0.998.
func TestGuardsPassRequestsFramedWithShareOrGive(t *testing.T) {
	g := Guards{Numbers: true, Negation: true, Entities: true}
	for _, c := range []struct {
		name string
		a, b string
	}{
		{"tips (0.993)", "Can you share some tips for improving sleep?", "Can you give me some tips for improving sleep?"},
		{"an example (0.998)", "Can you share an example of a haiku?", "Can you give an example of a haiku?"},
		{"provide (0.987)", "Please provide an example of a haiku", "Can you share an example of a haiku?"},
		{"a recipe (0.987)", "Share a recipe for pancakes", "Give me a recipe for pancakes"},
		{"a summary (0.991)", "Can you give me a summary of the French Revolution?", "Can you share a summary of the French Revolution?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&g, c.a, c.b); v != 0 {
				t.Errorf("%q / %q: vetoed (%v), a paraphrase", c.a, c.b, v)
			}
		})
	}
}
