package main

import "testing"

// BENCH_S4_ROWS picks S4's rows by words of their labels; a word that
// names no row is refused, so a typo does not run a scenario of nothing
// (or everything) under the name of the row asked for.
func TestS4RowsPicksRowsByLabelAndRefusesAWordThatNamesNone(t *testing.T) {
	all, err := s4Rows(nil)
	if err != nil || len(all) != len(s4Variants) {
		t.Fatalf("no words: %d rows, %v; want all %d", len(all), err, len(s4Variants))
	}
	got, err := s4Rows([]string{"uncacheable", " bypass ", "uncacheable"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].label != "pass uncacheable" || got[1].label != "pass bypass" {
		var labels []string
		for _, v := range got {
			labels = append(labels, v.label)
		}
		t.Fatalf("uncacheable, bypass: rows %q; want [pass uncacheable, pass bypass]", labels)
	}
	for _, bad := range [][]string{{"uncachable"}, {"bypass", ""}} {
		if rows, err := s4Rows(bad); err == nil {
			t.Errorf("%q: %d rows and no error; want a word that names no row refused", bad, len(rows))
		}
	}
}

// The rows judged against a floor get more rounds than S4's others in a
// full run (their distance moves by about 14 µs a round); a quick run
// keeps its 4, and BENCH_S4_ROUNDS sets every row's.
func TestS4JudgedRowsGetMoreRounds(t *testing.T) {
	for _, c := range []struct {
		judged, quick bool
		set, want     int
	}{
		{true, false, 0, s4JudgedRounds}, {false, false, 0, 6},
		{true, true, 0, 4}, {false, true, 0, 4},
		{true, false, 20, 20}, {false, true, 3, 3},
	} {
		if got := s4Rounds(c.judged, c.quick, c.set); got != c.want {
			t.Errorf("judged %v, quick %v, BENCH_S4_ROUNDS %d: %d rounds, want %d", c.judged, c.quick, c.set, got, c.want)
		}
	}
	if s4JudgedRounds <= 6 {
		t.Errorf("judged rows get %d rounds, no more than the others' 6", s4JudgedRounds)
	}
}
