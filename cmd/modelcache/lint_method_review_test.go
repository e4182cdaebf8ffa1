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
			disabledHere
		text := withRoutes(t, routes)
		l := lintBytes(file, []byte(text))
		found, all := findingNaming(l, `routes[0] "chat"`)
		if !found {
			t.Errorf("%s: routes[0] takes GET only; every POST of the chat route reaches routes[1], which disables the filter; no finding names the chat route. Findings:\n  %s",
				name, strings.Join(all, "\n  "))
		}
	}
}
