package cachecore

import "testing"

// README: "a closing preposition against none ("how is cheese made" ≠
// "what is cheese made of")" vetoes. A phrasal verb's particle after its
// object is no stranded preposition: "turn Bluetooth on" is "turn on
// Bluetooth". asks sets its closing bit for any "on", "in" … that ends
// the sentence, so the same question with the particle moved vetoes.
// These passed before the closing-preposition rule; cosines with the
// shipped model 0.993-0.998.
func TestGuardsPassPhrasalVerbParticleMoved(t *testing.T) {
	g := Guards{Numbers: true, Negation: true, Entities: true}
	for _, c := range []struct {
		name string
		a, b string
	}{
		{"turn on (0.994)", "How do I turn Bluetooth on?", "How do I turn on Bluetooth?"},
		{"plug in (0.998)", "How do I plug a microphone in?", "How do I plug in a microphone?"},
		{"fill in (0.993)", "How do I fill this form in?", "How do I fill in this form?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&g, c.a, c.b); v != 0 {
				t.Errorf("%q / %q: vetoed (%v), a paraphrase", c.a, c.b, v)
			}
		})
	}
}
