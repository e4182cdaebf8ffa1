package main

import (
	"strings"
	"testing"
)

// Review Z50 (mend 867e73c): an earlier route that takes only a method the
// filter route does not cache is skipped, so a later catch-all that
// disables the filter is found to lose every request of the chat route
// (POST only). onlyMethod reads only a bare `string_match: {exact: M}`:
// the same GET-only route written with ignore_case (Envoy matches :method
// GET case-insensitively, still no POST), or with a second header
// condition (GET and x-debug: still no POST), ends the search with no
// finding.
func TestLintMethodRouteVariantsDoNotHideTheOptOut(t *testing.T) {
	const file = "envoy/envoy.yaml"
	for name, match := range map[string]string{
		"ignore_case":     `{prefix: "/v1/chat/completions", headers: [{name: ":method", string_match: {exact: get, ignore_case: true}}]}`,
		"a second header": `{prefix: "/v1/chat/completions", headers: [{name: ":method", string_match: {exact: GET}}, {name: x-debug, present_match: true}]}`,
		"control (exact)": `{prefix: "/v1/chat/completions", headers: [{name: ":method", string_match: {exact: GET}}]}`,
	} {
		routes := "              routes:\n" +
			"              - match: " + match + "\n" +
			"                route: {cluster: model, timeout: 120s}\n" +
			"              - match: {prefix: \"/\"}\n                route: {cluster: model, timeout: 120s}\n" +
			"                typed_per_filter_config:\n                  envoy.filters.http.wasm:\n" +
			"                    \"@type\": type.googleapis.com/envoy.config.route.v3.FilterConfig\n                    disabled: true\n"
		text := broken(t, file, `              routes:
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
`, routes)
		l := lintBytes(file, []byte(text))
		var all []string
		found := false
		for _, f := range l.findings {
			all = append(all, f.String())
			found = found || strings.Contains(f.String(), `routes[0] "chat"`)
		}
		if !found {
			t.Errorf("%s: routes[0] takes GET only; every POST of the chat route reaches routes[1], which disables the filter; no finding names the chat route. Findings:\n  %s",
				name, strings.Join(all, "\n  "))
		}
	}
}
