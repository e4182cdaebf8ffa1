package cachecore

import "testing"

// TestVersionIDSame: same, the two-word comparison leaderLookup uses,
// agrees with == on the array, a difference in either word included.
func TestVersionIDSame(t *testing.T) {
	a := versionID("v1")
	cases := []VersionID{a, versionID("v2"), {}}
	first, second := a, a
	first[3] ^= 1
	second[12] ^= 1
	cases = append(cases, first, second)
	for _, b := range cases {
		if got, want := a.same(&b), a == b; got != want {
			t.Errorf("same(%x, %x) = %v, want %v", a, b, got, want)
		}
	}
}
