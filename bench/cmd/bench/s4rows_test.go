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
