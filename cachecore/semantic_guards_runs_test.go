package cachecore

import (
	"strings"
	"testing"
	"time"
)

// The semantic guards' work is linear in the turn
// (TestGuardsWorkIsLinearInTheTurn), but two rules still walk the turn
// once per word of a run a client chooses.

// bestVetoes is the least of five timings of vetoes(g, a, a): the query
// compared with its own earlier turn, so that every guard runs.
func bestVetoes(g *Guards, a string) time.Duration {
	var d time.Duration
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		vetoes(g, a, a)
		if e := time.Since(t0); i == 0 || e < d {
			d = e
		}
	}
	return d
}

// persons calls onlyPerson for every "am I <permission word>", and
// onlyPerson scans the turn from its start for another pronoun: a turn of
// plain words and then a run of "am i able" walks the plain words once per
// "am i able" (the square of the turn's length).
func TestGuardsPermissionRunIsLinear(t *testing.T) {
	const n = 16 << 10
	g := &Guards{Numbers: true, Negation: true, Entities: true}
	plain := bestVetoes(g, strings.Repeat("x ", n/2))
	turn := strings.Repeat("x ", n/4) + strings.Repeat("am i able ", n/2/10)
	if got := bestVetoes(g, turn); got > 4*plain {
		t.Errorf("plain words then \"am i able\" …: %v for a turn of %d bytes, over 4 × %v (as many plain words)", got, len(turn), plain)
	}
}

// askClasses calls describing for every "like", and describing walks back
// to the turn's start when no "do" or "be" comes before: a run of "like"
// costs the square of its length.
func TestGuardsLikeRunIsLinear(t *testing.T) {
	work := func(n int) time.Duration {
		ts := tokenize(strings.Repeat("like ", n/5))
		var d time.Duration
		for i := 0; i < 20; i++ { // the least of 20: a loaded machine's noise is not the work's
			t0 := time.Now()
			askClasses(ts)
			if e := time.Since(t0); i == 0 || e < d {
				d = e
			}
		}
		return d
	}
	small, large := work(4<<10), work(16<<10)
	if large > 8*small { // linear: about 4 ×
		t.Errorf("askClasses on a run of \"like\": %v for 16 KiB, %v for 4 KiB (× %.1f; linear work is about × 4)",
			large, small, float64(large)/float64(small))
	}
}

// tokenize tries, at each rune of a run of operator runes ("=!<>/&|?.:+-
// −*×÷%^~"), whether an operator starts there (operatorEnd); when none
// does, it moves on by one rune, and attachedOperator has scanned the run
// to its end (opRunEnd) and copied it to a string (strings.ContainsAny):
// a run written against a word ("a....a", "x----y") costs the square of
// its length. A turn of 4 KiB of dots takes tens of times as long as one
// of plain words; one of 16 KiB (max_text_bytes' bound) seconds per
// candidate, inside the worker's callback.
func TestGuardsOperatorRunIsLinear(t *testing.T) {
	const n = 4 << 10
	g := &Guards{Numbers: true, Negation: true, Entities: true}
	plain := bestVetoes(g, strings.Repeat("x ", n/2))
	for _, sign := range []string{".", "-", "/", "~"} {
		a := "a" + strings.Repeat(sign, n-2) + "a"
		b := "a" + strings.Repeat(sign, n-2) + "b" // the stored turn: another, near it
		var got time.Duration
		for i := 0; i < 3; i++ {
			t0 := time.Now()
			vetoes(g, a, b)
			if e := time.Since(t0); i == 0 || e < got {
				got = e
			}
		}
		if got > 4*plain {
			t.Errorf("a run of %q: %v for two turns of %d bytes, over 4 × %v (as many plain words)", sign, got, n, plain)
		}
	}
}
