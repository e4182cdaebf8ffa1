package main

import (
	"strings"
	"testing"
)

// shippedRoutes is the routes block of the shipped envoy/envoy.yaml: the
// opted-out /v1/models route, then the catch-all the filter serves.
const shippedRoutes = `              routes:
              # A route the cache does not serve skips the filter: with
              # the filter disabled per route, Envoy does not create it for
              # these requests at all (no wasm context, no call into the
              # VM), so they cost what they cost without modelcache. The
              # key is the filter's name in http_filters below. (README,
              # Routes the cache does not serve.)
              - match: {path_separated_prefix: "/v1/models"}
                route: {cluster: model, timeout: 120s}
                typed_per_filter_config:
                  envoy.filters.http.wasm:
                    "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
                    disabled: true
              - match: {prefix: "/"}
                route: {cluster: model, timeout: 120s}
`

// disabledHere is a route's per-filter config that turns the filter off.
const disabledHere = "                typed_per_filter_config:\n                  envoy.filters.http.wasm:\n" +
	"                    \"@type\": type.googleapis.com/envoy.config.route.v3.FilterConfig\n                    disabled: true\n"

// withRoutes returns the shipped envoy/envoy.yaml with its routes block
// replaced by routes.
func withRoutes(t *testing.T, routes string) string {
	t.Helper()
	return broken(t, "envoy/envoy.yaml", shippedRoutes, routes)
}

// findingNaming says whether a finding's text contains part, and returns
// every finding's text for the failure message.
func findingNaming(l *linter, part string) (bool, []string) {
	var all []string
	found := false
	for _, f := range l.findings {
		s := f.String()
		all = append(all, s)
		found = found || strings.Contains(s, part)
	}
	return found, all
}
