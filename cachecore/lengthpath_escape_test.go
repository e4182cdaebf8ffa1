package cachecore

import (
	"testing"

	"github.com/tidwall/gjson"
)

// Review Z16 (stop 72). README: "min_items/max_items or a type other than number on a
// path ending in # (a length)" is a config error. lengthSeg takes a path
// ending in `\.#` for an escaped dot, but in `a\\.#` the backslash is
// itself escaped: the dot is a separator and the path is the length of the
// array under the key `a\`. The rule refuses every answer, and is accepted.
func TestConfigRefusesItemBoundsOnALengthAfterAnEscapedBackslash(t *testing.T) {
	const path = `a\\.#`
	if got := gjson.Get(`{"a\\":[1,2,3]}`, path); got.Type != gjson.Number || got.Int() != 3 {
		t.Fatalf("setup: gjson reads %s as %s, want the length 3", path, got.Raw)
	}
	r := Rule{Path: path, MinItems: new(int)}
	if r.Holds([]byte(`{"a\\":[1,2,3]}`)) {
		t.Fatalf("setup: min_items held on a length")
	}
	// JSON-escaped in the configuration: "a\\\\.#" is the path a\\.#.
	mustRefuseNaming(t, oneRouteConfig(`,"validate":[{"path":"a\\\\.#","min_items":0}]`, ""), "routes[0].validate[0]")
	mustRefuseNaming(t, oneRouteConfig(`,"validate":[{"path":"a\\\\.#","type":"string"}]`, ""), "routes[0].validate[0]")
}
