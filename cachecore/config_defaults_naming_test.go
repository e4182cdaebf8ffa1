package cachecore

import (
	"strings"
	"testing"
)

// README, Configuration: an invalid configuration makes the plugin refuse
// to start and "Envoy's log names each offending field". A value a route
// inherits from defaults is wrong where it is written: in defaults (as
// key_headers' errors say: keyHeadersOfRoute). Naming routes[i].<field>
// points the operator (and modelcache lint's line) at a field that is not
// in the configuration.
func TestErrorsOfInheritedValuesNameDefaults(t *testing.T) {
	const routes = `"routes":[{"name":"a","kind":"chat","path_prefix":"/a"}]`
	for _, tc := range []struct{ name, cfg, want, notWant string }{
		{"defaults.max_entry_bytes above the store's",
			`{"store":{"max_entry_bytes":2048},"defaults":{"max_entry_bytes":4096},` + routes + `}`,
			"defaults.max_entry_bytes", "routes[0].max_entry_bytes"},
		{"defaults.ttl not above l2.ttl_slack",
			`{"l2":{"cluster":"webdis","ttl_slack":"10s"},"defaults":{"ttl":"5s"},` + routes + `}`,
			"defaults.ttl", "routes[0].ttl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.cfg))
			if err == nil {
				t.Fatal("accepted")
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, tc.notWant) {
				t.Fatalf("error names %q, a field the configuration does not have, not %q where the value is written:\n%s", tc.notWant, tc.want, msg)
			}
		})
	}
}
