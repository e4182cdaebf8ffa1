package main

import "testing"

// S4's rows are judged at the median of their rounds, and a round over the
// target is said beside the verdict, never dropped.
func TestS4VerdictJudgesTheMedianAndNamesARoundOver(t *testing.T) {
	for _, c := range []struct {
		name          string
		med, hi       float64
		verdict, note string
	}{
		{"every round within", 4.0, 9.5, "yes", ""},
		{"the median within, a round over", 4.3, 20.7, "yes", "at the median; a round at +20.7 µs"},
		{"the median at the target", 10.0, 12.0, "yes", "at the median; a round at +12.0 µs"},
		{"the median over", 13.0, 21.2, "NO", "3.0 µs over the target (median)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, n := s4Verdict(c.med, c.hi)
			if v != c.verdict || n != c.note {
				t.Errorf("s4Verdict(%v, %v) = %q, %q; want %q, %q", c.med, c.hi, v, n, c.verdict, c.note)
			}
		})
	}
}
