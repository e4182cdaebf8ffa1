package cachecore

import (
	"slices"
	"testing"
)

// README (Policy): defaults are applied to every route before its own
// fields. A route's own key_fields or ignore_fields list replaces the other
// kind of list it inherits: an ignore list in defaults refused every route
// that keyed by an allowlist of its own (review Z1, stop 72), so a
// deployment could not drop a tracing field everywhere and key one
// classifier route by its input alone. Written both on one route, or both
// in defaults, they are still refused.
func TestARoutesOwnKeyListReplacesTheOneItInherits(t *testing.T) {
	cfg := `{"defaults": {"ignore_fields": ["user", "metadata", "store", "request_id"]},
	  "routes": [
	    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions"},
	    {"name": "cls", "kind": "classify", "path_exact": "/v1/classify", "key_fields": ["model", "text"]}
	  ]}`
	c, err := ParseConfig([]byte(cfg))
	if err != nil {
		t.Fatalf("a route's own key_fields over defaults' ignore_fields refused: %v", err)
	}
	if r := c.Routes[1]; !slices.Equal(r.KeyFields, []string{"model", "text"}) || len(r.IgnoreFields) != 0 {
		t.Fatalf("route cls keys %v ignoring %v", r.KeyFields, r.IgnoreFields)
	}
	if r := c.Routes[0]; len(r.KeyFields) != 0 || !slices.Contains(r.IgnoreFields, "request_id") {
		t.Fatalf("route chat keys %v ignoring %v", r.KeyFields, r.IgnoreFields)
	}

	cfg = `{"defaults": {"key_fields": ["model", "messages"]},
	  "routes": [{"name": "a", "kind": "chat", "path_prefix": "/a", "ignore_fields": ["user"]}]}`
	if c, err = ParseConfig([]byte(cfg)); err != nil {
		t.Fatalf("a route's own ignore_fields over defaults' key_fields refused: %v", err)
	}
	if r := c.Routes[0]; len(r.KeyFields) != 0 || !slices.Equal(r.IgnoreFields, []string{"user"}) {
		t.Fatalf("route a keys %v ignoring %v", r.KeyFields, r.IgnoreFields)
	}
}
