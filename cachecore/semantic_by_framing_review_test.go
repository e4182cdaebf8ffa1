package cachecore

import "testing"

// README: "the agent a "by" names ("who killed Caesar" ≠ "who was killed
// by Caesar")", and framing words may differ. A "by" in a fixed framing
// phrase names no agent: "step by step" (the most common request suffix)
// and "by the way". direction marks the common word after such a "by"
// ("⇐step", "⇐way") and markedWord puts it in the content order, so a
// turn that adds the phrase vetoes against the same question without it.
// These passed before the "by" roles; cosines with the shipped model
// 0.93-0.98.
func TestGuardsPassByInFramingPhrases(t *testing.T) {
	g := Guards{Numbers: true, Negation: true, Entities: true}
	for _, c := range []struct {
		name string
		a, b string
	}{
		{"step by step at the end (0.965)", "How do I make pancakes step by step?", "How do I make pancakes?"},
		{"step by step first (0.965)", "Explain step by step how to reset my router", "How do I reset my router?"},
		{"walk me through step by step (0.928)", "Can you walk me through installing Python step by step?", "How do I install Python?"},
		{"by the way (0.979)", "By the way, how do I boil an egg?", "How do I boil an egg?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&g, c.a, c.b); v != 0 {
				t.Errorf("%q / %q: vetoed (%v), a paraphrase", c.a, c.b, v)
			}
		})
	}
}
