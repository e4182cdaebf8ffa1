package cachecore

import "testing"

// Issue 13 item 8: a number written as an integer and the same value
// written with a fraction or an exponent are different requests to typed
// model servers ("n": 2.0 is rejected where "n": 2 is accepted), so they
// must never share a canonical form; spellings of one float may.
func TestCanonicalNumberTypes(t *testing.T) {
	same := [][]string{
		{`2`},
		{`2.0`, `20e-1`, `0.2e1`, `2E0`, `2.00`, `200e-2`},
		{`100.0`, `1e2`, `1E+2`, `0.1e3`},
		{`0.5`, `5e-1`, `0.50`},
		{`0`},
		{`-0`}, // zero's sign reaches a model that reads floats (review Z31)
		{`0.0`, `0e5`, `0.000e-3`},
		{`-0.0`, `-0e5`, `-0.000e-3`},
		{`-3`},
		{`-3.0`, `-30e-1`},
		{`12345678901234567890`},
		{`1e30`, `1.0e30`, `10e29`},
		{`1000000000000000000000000000000`},
	}
	forms := map[string]int{}
	for gi, group := range same {
		var first string
		for _, in := range group {
			got := mustCanon(t, in, nil)
			if first == "" {
				first = got
			} else if got != first {
				t.Errorf("%s -> %s, but %s -> %s: one value, one type, should share a form", group[0], first, in, got)
			}
		}
		if prev, ok := forms[first]; ok {
			t.Errorf("%v and %v share the form %s", same[prev], group, first)
		}
		forms[first] = gi
	}
	// Inside documents too: the n of a chat request, a token array.
	a := mustCanon(t, `{"n":2,"input":[1,2,3]}`, nil)
	for _, b := range []string{`{"n":2.0,"input":[1,2,3]}`, `{"n":2,"input":[1.0,2,3]}`, `{"n":20e-1,"input":[1,2,3]}`} {
		if mustCanon(t, b, nil) == a {
			t.Errorf("%s shares the form of %s", b, a)
		}
	}
}

// Numbers the cache reads itself (token ids, dimensions) must be integers
// as written; a float spelling is a request the cache does not split.
func TestEmbeddingsIntegerSpelling(t *testing.T) {
	c, r := newEmbCache(t)
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"model":"e","input":[1,2,3]}`, true},
		{`{"model":"e","input":[[1,2],[3]]}`, true},
		{`{"model":"e","input":"x","dimensions":4}`, true},
		{`{"model":"e","input":[1.0,2,3]}`, false},
		{`{"model":"e","input":[[1,2],[3e0]]}`, false},
		{`{"model":"e","input":"x","dimensions":4.0}`, false},
		{`{"model":"e","input":"x","dimensions":40e-1}`, false},
	} {
		req := embRequest(c, r, tc.body)
		if req.Bypassed() == tc.ok {
			t.Errorf("%s: bypassed %v (%s), want %v", tc.body, req.Bypassed(), req.Reason, !tc.ok)
		}
		if !tc.ok && req.Reason != ReasonEmbeddingInput {
			t.Errorf("%s: reason %s", tc.body, req.Reason)
		}
	}
}
