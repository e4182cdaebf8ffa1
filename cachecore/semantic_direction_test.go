package cachecore

import "testing"

// "get to Paris" ≠ "get from Paris" is vetoed; the same with an article or
// a possessive between the direction and its word is not.
func TestGuardsVetoDirectionPastAnArticle(t *testing.T) {
	g := Guards{Numbers: true, Negation: true, Entities: true}
	for _, c := range [][2]string{
		{"How do I get to the airport?", "How do I get from the airport?"},
		{"How do I get to the Louvre?", "How do I get from the Louvre?"},
		{"Move files to my laptop", "Move files from my laptop"},
	} {
		if v := vetoes(&g, c[0], c[1]); v == 0 {
			t.Errorf("%q / %q: not vetoed", c[0], c[1])
		}
	}
}
