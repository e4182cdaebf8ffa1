package main

import (
	"strings"
	"testing"
)

// README (Routes the cache does not serve) documents the allow-list
// layout: the http_filters entry `disabled: true`, and the filter enabled
// (FilterConfig with `config: {}`) on the Envoy routes that carry the
// filter's routes. README and RATIONALE say the linter reports a route
// that disables the filter "for every request of one of the filter's
// routes", "only when it is certain". firstCovering skips an earlier route
// that takes part of a filter route's requests with the filter enabled (a
// `path` match for the filter's path_prefix, or a :method POST match), and
// then blames the catch-all: lint exits 1 on a configuration whose every
// /v1/chat/completions request is cached.
func TestLintOptInLayoutEarlierRouteKeepsFilterNotReported(t *testing.T) {
	const file = "envoy/envoy.yaml"
	enable := `
                typed_per_filter_config:
                  envoy.filters.http.wasm:
                    "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
                    config: {}
`
	for name, firstMatch := range map[string]string{
		// Every request of the shipped chat route's path.
		"path match": `{path: "/v1/chat/completions"}`,
		// Every request the chat route caches (methods: POST, the default),
		// by a header-conditional match.
		"POST condition": `{prefix: "/v1/chat/completions", headers: [{name: ":method", string_match: {exact: POST}}]}`,
	} {
		// Routes: chat enabled first, then the other filter routes and the
		// purge path enabled by prefix, then a catch-all with the filter
		// left disabled (http_filters entry disabled: true).
		routes := "              routes:\n" +
			"              - match: " + firstMatch + "\n                route: {cluster: model, timeout: 120s}" + enable +
			"              - match: {prefix: \"/v1/completions\"}\n                route: {cluster: model, timeout: 120s}" + enable +
			"              - match: {prefix: \"/v1/embeddings\"}\n                route: {cluster: model, timeout: 120s}" + enable +
			"              - match: {prefix: \"/v1/classify\"}\n                route: {cluster: model, timeout: 120s}" + enable +
			"              - match: {prefix: \"/v1/rerank\"}\n                route: {cluster: model, timeout: 120s}" + enable +
			"              - match: {path: \"/modelcache/purge\"}\n                route: {cluster: model, timeout: 120s}" + enable +
			"              - match: {prefix: \"/\"}\n                route: {cluster: model, timeout: 120s}\n"
		text := withRoutes(t, routes)
		if strings.Count(text, "          - name: envoy.filters.http.wasm\n") != 1 {
			t.Fatal("no wasm http_filters entry")
		}
		text = strings.Replace(text, "          - name: envoy.filters.http.wasm\n",
			"          - name: envoy.filters.http.wasm\n            disabled: true\n", 1)
		l := lintBytes(file, []byte(text))
		if l.checked != 1 || len(l.findings) != 0 {
			t.Errorf("%s: chat requests reach the first route, filter enabled; want no finding, got checked %d, findings:", name, l.checked)
			for _, f := range l.findings {
				t.Errorf("  %s", f)
			}
		}
	}
}
