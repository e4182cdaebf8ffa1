package cachecore

import "testing"

// README "Validation rules": "a path ending in `#` is the array's length"
// (and the configuration insists such a rule be numeric: a length). gjson
// reads "labels.#" on an object as its member named "#", so an answer
// whose labels are no array at all, only an object with a "#" member,
// passes a rule meant to hold the labels to at least one element.
func TestLengthRuleOnAnObjectWithAHashMemberRefused(t *testing.T) {
	cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[
		{"path":"label","type":"string","non_empty":true},
		{"path":"labels.#","min":1}]}]}`
	// Sanity: the rule does what it says on arrays.
	if r := storeVerdict(t, cfg, "cls", nil, `{"model":"m","input":"x"}`, jsonCT, `{"label":"cat","labels":[]}`); r != ReasonValidation {
		t.Fatalf("empty labels array: %s, want validation", verdict(r))
	}
	for _, ans := range []string{
		`{"label":"cat","labels":{"#":1}}`,
		`{"label":"cat","labels":{"#":5,"evil":true}}`,
	} {
		if r := storeVerdict(t, cfg, "cls", nil, `{"model":"m","input":"x"}`, jsonCT, ans); r == ReasonNone {
			t.Errorf("%s: stored, but labels is no array, so it has no length >= 1", ans)
		}
	}
}

// The same through every element: "items.#.labels.#" reads each item's
// labels' length, and an item whose labels are an object with a "#"
// member has none.
func TestLengthRuleThroughEveryElementOnAnObjectRefused(t *testing.T) {
	cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[
		{"path":"items.#.labels.#","min":1}]}]}`
	if r := storeVerdict(t, cfg, "cls", nil, `{"model":"m","input":"x"}`, jsonCT, `{"items":[{"labels":["a"]},{"labels":["b","c"]}]}`); r != ReasonNone {
		t.Fatalf("labels arrays of one and two: %s, want stored", verdict(r))
	}
	ans := `{"items":[{"labels":["a"]},{"labels":{"#":3}}]}`
	if r := storeVerdict(t, cfg, "cls", nil, `{"model":"m","input":"x"}`, jsonCT, ans); r == ReasonNone {
		t.Errorf("%s: stored, but the second item's labels is no array", ans)
	}
}
