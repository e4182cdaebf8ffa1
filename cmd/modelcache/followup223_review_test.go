package main

import (
	"regexp"
	"strings"
	"testing"
)

// Istio's sidecar bootstrap also carries the unanchored stats tags
// authz_dry_run_result `(\.shadow_(allowed|denied))` and
// authz_dry_run_action `(\.istio_dry_run_(allow|deny)_)`
// (filter/stats_istio_tags_test.go lists them with the cache tag). A route
// whose name starts with those words puts them after a dot in every stat
// name (modelcache_route.shadow_allowed_b.requests.hit): the sidecar cuts
// them out, so without the bootstrap override the stats of route
// "shadow_allowed_b" are exported as modelcache_route_b_requests_hit — the
// name route "b"'s stats have — and a query for route b counts both. The
// linter, which exists to report names Istio's tags cut (README: "No name
// holds ... another text an Istio sidecar's stats tags look for"), passes
// them: it looks only for names ending in cache/component/wasm_filter.
// Expected: a finding on each such route name.
func TestFollowup223LintReportsRouteNamesIstioDryRunTagsCut(t *testing.T) {
	tags := map[string]*regexp.Regexp{
		"authz_dry_run_result": regexp.MustCompile(`(\.shadow_(allowed|denied))`),
		"authz_dry_run_action": regexp.MustCompile(`(\.istio_dry_run_(allow|deny)_)`),
	}
	for _, name := range []string{"shadow_allowed_b", "shadow_denied", "istio_dry_run_deny_chat"} {
		stat := "wasmcustom.modelcache_route." + name + ".requests.hit"
		matched := ""
		for tag, re := range tags {
			if re.MatchString(stat) {
				matched = tag
			}
		}
		if matched == "" {
			t.Fatalf("%s matches no Istio tag: the test is wrong", stat)
		}
		cfg := `{"routes":[
  {"name":"` + name + `","kind":"chat","path_prefix":"/a"}
]}`
		l := lintBytes("filter.json", []byte(cfg))
		found := false
		for _, f := range l.findings {
			if strings.Contains(f.String(), "routes[0].name") {
				found = true
			}
		}
		if !found {
			t.Errorf("route %q: its stat %s meets Istio's stats tag %s, but lint reports nothing (findings %v)", name, stat, matched, l.findings)
		}
	}
}

// The Istio route-name check runs only on a configuration ParseConfig
// accepts: when any other field is wrong, a route named "llmcache" is not
// reported, so fixing the reported error and deploying ships a route whose
// stats an Istio sidecar cuts (README: lint prints one line per problem).
// Expected: both problems reported in the same run.
func TestFollowup223LintReportsIstioCutNameBesideAnotherError(t *testing.T) {
	cfg := `{"routes":[
  {"name":"llmcache","kind":"chat","path_prefix":"/a"},
  {"name":"b","kind":"chat","path_prefix":"/b","ttl":"ten minutes"}
]}`
	l := lintBytes("filter.json", []byte(cfg))
	var got []string
	for _, f := range l.findings {
		got = append(got, f.String())
	}
	all := strings.Join(got, "\n")
	if !strings.Contains(all, "routes[1].ttl") {
		t.Fatalf("the ttl error is not reported:\n%s", all)
	}
	if !strings.Contains(all, `routes[0].name: "llmcache" ends in "cache"`) {
		t.Errorf("route \"llmcache\" (Istio's cache tag cuts its stats) is not reported beside the ttl error:\n%s", all)
	}
}
