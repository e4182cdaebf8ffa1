package cachecore

import (
	"math"
	"testing"

	"github.com/tidwall/gjson"
)

// valueKey finds two values equal exactly when jsonEqual does: the rule's
// one_of looks an answer's value up by it (review Z127).
func TestValueKeyAgreesWithJSONEqual(t *testing.T) {
	values := []string{
		`1`, `1.0`, `1e0`, `100`, `1e2`, `-0`, `0`, `"x"`, `"\u0078"`, `true`, `null`, `"1"`,
		`[1,2]`, `[2,1]`, `[1.0,2]`, `[]`, `{}`, `[[1]]`, `[["1"]]`,
		`{"a":1,"b":[1.0]}`, `{"b":[1],"a":1}`, `{"a":1}`, `{"a":1,"b":2}`, `{"a":"x"}`, `{"a":"\u0078"}`,
		`{"a":{"b":1e1}}`, `{"a":{"b":10}}`, `{"a":1,"a":1}`, `{"ab":"c"}`, `{"a":"bc"}`, `["a:1"]`, `[{"a":1}]`,
		`123456789012345678901234567890e999999999999999`,
	}
	for _, a := range values {
		for _, b := range values {
			va, vb := gjson.Parse(a), gjson.Parse(b)
			ka, oka := valueKey(va, 0, math.MaxInt)
			kb, okb := valueKey(vb, 0, math.MaxInt)
			if got, want := oka && okb && ka == kb, jsonEqual(va, vb); got != want {
				t.Errorf("%s and %s: keys equal %v (%q, %q), jsonEqual %v", a, b, got, ka, kb, want)
			}
		}
	}
}
