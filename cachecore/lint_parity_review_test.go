package cachecore

import (
	"strings"
	"testing"
)

// Review Z152 (lint parity): the refusals added for reviews Z139 and Z140,
// when the offending list is in defaults, are reported once per route that
// inherits it: the same line ("defaults.key_fields: is inherited from
// defaults: a classify route …") N times, naming no route. The filter logs
// it N times and `modelcache lint` prints N identical problems. Review Z69
// made an error in defaults be named there once (clusterNoted); these new
// checks repeat it. Expected: each distinct error once.
func TestParseConfigNamesADefaultsErrorOnce(t *testing.T) {
	cases := map[string]string{
		"classify routes inherit key_fields (Z139)": `{"defaults": {"key_fields": ["model", "inputs"]}, "routes": [
			{"name": "a", "kind": "classify", "path_prefix": "/a"},
			{"name": "b", "kind": "classify", "path_prefix": "/b"}]}`,
		"ignore_fields names Messages (Z140)": `{"defaults": {"ignore_fields": ["Messages"]}, "routes": [
			{"name": "a", "kind": "chat", "path_prefix": "/a"},
			{"name": "b", "kind": "chat", "path_prefix": "/b"}]}`,
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseConfig([]byte(cfg))
			if err == nil {
				t.Fatal("accepted")
			}
			lines := strings.Split(err.Error(), "\n")
			seen := map[string]bool{}
			for _, l := range lines {
				if seen[l] {
					t.Errorf("reported more than once: %s\nall:\n%s", l, err)
				}
				seen[l] = true
			}
		})
	}
}
