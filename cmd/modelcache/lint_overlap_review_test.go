package main

import (
	"strings"
	"testing"
)

// Review Z46 (mend e491b9c). README/RATIONALE: the linter reports a route
// that disables the filter and is reached by every request of one of the
// filter's routes (or its purge path). e491b9c ends the search, with no
// finding, at the first earlier route that overlaps a filter route's
// paths without covering them, whatever that route does with the filter.
// When the earlier route disables the filter too, every request of the
// filter route still lands on a route without the filter: the table
// caches nothing for it (and no purge reaches the cache), and lint says
// nothing about it.
func TestLintEarlierOverlappingRouteThatAlsoDisablesTheFilter(t *testing.T) {
	const file = "envoy/envoy.yaml"
	const disable = `
                typed_per_filter_config:
                  envoy.filters.http.wasm:
                    "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
                    disabled: true
`
	for name, tc := range map[string]struct{ first, lost string }{
		// Part of chat's paths, filter disabled.
		"part of chat's paths": {`{prefix: "/v1/chat/completions/"}`, `routes[0] "chat"`},
		// The purge path under a condition, filter disabled.
		"purge path under a condition": {`{path: "/modelcache/purge", headers: [{name: x-canary, present_match: true}]}`, `purge.path "/modelcache/purge"`},
	} {
		routes := "              routes:\n" +
			"              - match: " + tc.first + "\n                route: {cluster: model, timeout: 120s}" + disable +
			"              - match: {prefix: \"/\"}\n                route: {cluster: model, timeout: 120s}" + disable
		text := withRoutes(t, routes)
		l := lintBytes(file, []byte(text))
		found, all := findingNaming(l, tc.lost)
		if !found {
			t.Errorf("%s: every request of the filter's %s reaches a route that disables the filter (routes[0] or routes[1]); no finding names it. Findings:\n  %s",
				name, tc.lost, strings.Join(all, "\n  "))
		}
	}
}

// The same with an earlier route that takes only requests the filter route
// never caches: a `:method: GET` condition on chat's prefix (OpenAI's
// stored-completions listing is GET /v1/chat/completions), while the chat
// route caches POST only (methods' default). Every request the chat route
// caches reaches the catch-all that disables the filter; the overlap rule
// ends the search at the GET route and lint says nothing.
func TestLintEarlierRouteForMethodsTheFilterRouteNeverCaches(t *testing.T) {
	const file = "envoy/envoy.yaml"
	routes := "              routes:\n" +
		"              - match: {prefix: \"/v1/chat/completions\", headers: [{name: \":method\", string_match: {exact: GET}}]}\n" +
		"                route: {cluster: model, timeout: 120s}\n" +
		"              - match: {prefix: \"/\"}\n                route: {cluster: model, timeout: 120s}\n" +
		disabledHere
	text := withRoutes(t, routes)
	l := lintBytes(file, []byte(text))
	found, all := findingNaming(l, `routes[0] "chat"`)
	if !found {
		t.Errorf("every POST to /v1/chat/completions (all the chat route caches) reaches routes[1], which disables the filter; no finding names the chat route. Findings:\n  %s",
			strings.Join(all, "\n  "))
	}
}
