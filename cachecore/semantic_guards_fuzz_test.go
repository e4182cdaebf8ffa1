package cachecore

import "testing"

// FuzzVetoes: the guards read hostile turns without panicking, and a turn
// never vetoes itself (every rule compares the two sides).
func FuzzVetoes(f *testing.F) {
	for _, s := range []string{
		"How do I turn Bluetooth on?", "What does x>y mean?", "a&&b || c", "Solve x ≤ 5 ∪ ∩",
		"By the way, step by step", "C++17 and C#", "x² + ½", "लड़के", "1,500 km to miles", `"quoted" (x==y)`,
		"==", "&", "<<", "=>", "?!", "…", "\u0301a",
	} {
		f.Add(s, "How can I turn on Bluetooth?")
	}
	g := Guards{Numbers: true, Negation: true, Entities: true}
	f.Fuzz(func(t *testing.T, a, b string) {
		if len(a) > 4096 || len(b) > 4096 {
			return
		}
		vetoes(&g, a, b)
		if v := vetoes(&g, a, a); v != 0 {
			t.Fatalf("%q vetoes itself (%d)", a, v)
		}
	})
}
