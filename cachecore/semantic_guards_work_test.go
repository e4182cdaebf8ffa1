package cachecore

import (
	"strings"
	"testing"
	"time"
)

// The guards' work grows with the turns' length, not with its square.
// Both turns are a client's: one indexed with its answer, the other asked
// near it, each up to max_text_bytes (16 KiB at most), and the guards
// compare the query with each of up to semTries candidates inside the
// worker's callback. A run of determiners ("the the the …") made each
// word look back over all of them for a "to" or "from" before it, and a
// word before a word of time ("x day x day …", against "x of day …")
// searched the other turn whole for the same phrase, building a string
// at each of its words: 16 KiB turns took 20 to 40 times as long as
// turns of as many plain words (over 100 ms natively, per candidate).
func TestGuardsWorkIsLinearInTheTurn(t *testing.T) {
	const n = 16 << 10
	g := &Guards{Numbers: true, Negation: true, Entities: true}
	turns := func(a, b string) (string, string) {
		k := n / max(len(a), len(b))
		return strings.Repeat(a, k), strings.Repeat(b, k)
	}
	best := func(a, b string) time.Duration {
		var d time.Duration
		for i := 0; i < 3; i++ {
			t0 := time.Now()
			vetoes(g, a, b)
			if e := time.Since(t0); i == 0 || e < d {
				d = e
			}
		}
		return d
	}
	plain := best(turns("x ", "x "))
	for _, c := range []struct{ name, a, b string }{
		{"determiners", "the ", "the "},
		{"phrases of time", "x day ", "x of day "},
	} {
		a, b := turns(c.a, c.b)
		if got := best(a, b); got > 4*plain {
			t.Errorf("%s: %v for two turns of %d bytes, over 4 × %v (as many plain words)", c.name, got, n, plain)
		}
	}
}

// A run of "!" or "~" is read once for the digit that may follow it
// (review Z86: "!!0", "~5" are signs): a 16 KiB run that no digit ends
// costs no more than as many plain words. So is one in full width, or
// after a minus that reads it for a number (review Z91: "5！", "-~5"),
// past spaces or a bracket (review Z96: "- ~5", "-(~5"; each run of
// spaces is skipped once, by the one minus before it), a wave dash read as
// "~" and signs between spaced variables ("〜5", "x · y").
func TestGuardsWorkIsLinearInARunOfSigns(t *testing.T) {
	const n = 16 << 10
	g := &Guards{Numbers: true, Negation: true, Entities: true}
	best := func(s string) time.Duration {
		var d time.Duration
		for i := 0; i < 3; i++ {
			t0 := time.Now()
			vetoes(g, s, s)
			if e := time.Since(t0); i == 0 || e < d {
				d = e
			}
		}
		return d
	}
	plain := best(strings.Repeat("x ", n/2))
	for _, run := range []string{"!", "~", "!~", "！～", "-~", "-!-~", "- ", "- ~", "-(", "-(~", "〜", "-〜", "x · ", "x : ", "x‰"} {
		s := "a" + strings.Repeat(run, n/len(run)) + "a"
		if got := best(s); got > 4*plain {
			t.Errorf("a run of %q: %v for a turn of %d bytes, over 4 × %v (as many plain words)", run, got, n, plain)
		}
	}
}
