package main

import (
	"strings"
	"testing"
)

// A route whose name ends in "cache", "component" or "wasm_filter" puts
// that text before a dot in its stat names (modelcache_route.llmcache.
// requests.hit), where the stats tag of the same name that every Istio
// sidecar's bootstrap carries cuts "requests." out and makes it a label: the
// rules and panels find nothing. The linter names the field and the reason;
// names that only contain those words, or end in them with another case,
// pass.
func TestLintRefusesRouteNamesIstioTagsWouldCut(t *testing.T) {
	cfg := `{"routes":[
  {"name":"llmcache","kind":"chat","path_prefix":"/a"},
  {"name":"cachefirst","kind":"chat","path_prefix":"/b"},
  {"name":"x-component","kind":"chat","path_prefix":"/c"},
  {"name":"my_wasm_filter","kind":"chat","path_prefix":"/d"},
  {"name":"LLMCache","kind":"chat","path_prefix":"/e"}
]}`
	l := lintBytes("filter.json", []byte(cfg))
	var lines []string
	for _, f := range l.findings {
		lines = append(lines, f.String())
	}
	got := strings.Join(lines, "\n")
	for _, want := range []string{`filter.json:2: routes[0].name: "llmcache" ends in "cache"`,
		`filter.json:4: routes[2].name: "x-component" ends in "component"`,
		`filter.json:5: routes[3].name: "my_wasm_filter" ends in "wasm_filter"`} {
		if !strings.Contains(got, want) {
			t.Errorf("no finding %q in:\n%s", want, got)
		}
	}
	if len(l.findings) != 3 {
		t.Errorf("%d findings, want 3:\n%s", len(l.findings), got)
	}
}
