package main

import (
	"strings"
	"testing"
)

// Review Z254: follow-up of c86f6b5..HEAD (the opt-out check's routeIndex).

// optOutEnvoy254 is an Envoy configuration whose modelcache filter serves
// the one route path_prefix filterPrefix, with the given Envoy routes.
func optOutEnvoy254(filterPrefix, routes string) []byte {
	conf := `{\"routes\":[{\"name\":\"chat\",\"kind\":\"chat\",\"path_prefix\":\"` + filterPrefix + `\"}]}`
	return []byte(`route_config:
  virtual_hosts:
  - name: v
    domains: ["*"]
    routes:
` + routes + `http_filters:
- name: envoy.filters.http.wasm
  typed_config:
    "@type": ` + wasmFilterType + `
    config:
      root_id: modelcache
      configuration: {"@type": ` + stringValue + `, value: "` + conf + `"}
- name: envoy.filters.http.router
`)
}

const disabled254 = `      typed_per_filter_config:
        envoy.filters.http.wasm: {"@type": ` + filterConfigType + `, disabled: true}
`

// A case-insensitive Envoy match (case_sensitive: false) is ASCII
// case-insensitive: Envoy's PathMatcher compares with
// absl::StartsWithIgnoreCase / EqualsIgnoreCase, which fold A-Z only. The
// opt-out check (covers, overlaps, and the index's candidates, which
// ec6a5ff builds the same way) folds with strings.ToLower, Unicode's
// mapping, under which the Kelvin sign "K" (U+212A) is "k". So an Envoy
// route prefix "/v1/Kserve" (Kelvin) that disables the filter is said to
// be "the first route for every request" of the filter's "/v1/kserve",
// though Envoy sends none of them there (the bytes differ): lint reports a
// finding on a correct configuration, and exits non-zero. Expected: no
// finding (the filter runs on every /v1/kserve request, via the "/" route).
func TestFollowup254LintOptOutUnicodeFoldingFalseFinding(t *testing.T) {
	routes := `    - match: {prefix: "/v1/\u212Aserve", case_sensitive: false}
      route: {cluster: legacy}
` + disabled254 + `    - match: {prefix: "/"}
      route: {cluster: model}
`
	l := lintBytes("envoy.yaml", optOutEnvoy254("/v1/kserve", routes))
	if l.checked != 1 {
		t.Fatalf("premise: %d configurations checked, findings %v", l.checked, l.findings)
	}
	if ok, all := findingNaming(l, "disables the modelcache filter"); ok {
		t.Errorf("Envoy route prefix \"/v1/\\u212Aserve\" (KELVIN SIGN, case_sensitive: false) meets no request of the "+
			"filter's path_prefix \"/v1/kserve\" (Envoy folds ASCII only), yet lint says it takes them all: %v", all)
	}
}

// The same ASCII/Unicode mismatch hides a real finding: strings.ToLower
// maps "İ" (U+0130) to "i̇" ("i" and a combining dot), so an Envoy route
// prefix "/v1/İ" (case_sensitive: false, the filter on) is judged to take
// some of the filter's "/v1/i" requests, which ends the search with "cannot
// tell". Envoy sends none of them there ("/v1/i…" does not start with the
// bytes of "/v1/İ" under ASCII folding): every one reaches the next route,
// which disables the filter, and none reaches the cache. Expected: the
// finding on routes[1], as without the "/v1/İ" route.
func TestFollowup254LintOptOutUnicodeFoldingHidesFinding(t *testing.T) {
	disabling := `    - match: {prefix: "/v1/i"}
      route: {cluster: model}
` + disabled254
	base := lintBytes("envoy.yaml", optOutEnvoy254("/v1/i", disabling))
	if ok, all := findingNaming(base, "disables the modelcache filter"); !ok {
		t.Fatalf("premise: without the \"/v1/\\u0130\" route, the disabling route is reported: %v", all)
	}
	routes := `    - match: {prefix: "/v1/\u0130", case_sensitive: false}
      route: {cluster: other}
` + disabling
	l := lintBytes("envoy.yaml", optOutEnvoy254("/v1/i", routes))
	if ok, all := findingNaming(l, "disables the modelcache filter"); !ok {
		t.Errorf("Envoy route prefix \"/v1/\\u0130\" (case_sensitive: false) takes none of the filter's \"/v1/i\" requests "+
			"(Envoy folds ASCII only), so every one reaches routes[1], which disables the filter; lint reports nothing: %v", all)
	}
}

// dottedInRoute254 is a bare JSON configuration whose route holds a valid
// coalesce {max_wait} (line 2) and, beside it, a member named
// "coalesce.max_wait" twice (lines 3 and 4): ParseConfig reports
// "routes[0].coalesce.max_wait: unknown field" and "...: duplicate field",
// the path it names being ambiguous with the valid nested member's.
var dottedInRoute254 = []byte("{\"routes\":[{\"name\":\"chat\",\"kind\":\"chat\",\"path_prefix\":\"/v1/chat\",\n" +
	"\"coalesce\":{\"max_wait\":\"1s\"},\n" +
	"\"coalesce.max_wait\":1,\n" +
	"\"coalesce.max_wait\":2}]}\n")

// ec6a5ff (review Z252) places a duplicated member whose own name holds a
// dot at its second occurrence only at the top of the configuration
// (secondMember(root, path)); in a route the parent walk follows
// "coalesce" into the valid coalesce object, finds "max_wait" there once,
// and the finding falls back to that valid member's line: the user is
// pointed at a member that is neither duplicated nor wrong (the defect
// Z252 fixed for the top level). Expected: line 4, the second
// "coalesce.max_wait" (README: "a duplicated member's second occurrence").
func TestFollowup254LintDuplicateDottedNameInRoutePlacedOnValidMember(t *testing.T) {
	l := lintBytes("filter.json", dottedInRoute254)
	found := false
	for _, f := range l.findings {
		if strings.HasSuffix(f.msg, "duplicate field") {
			found = true
			if f.line != 4 {
				t.Errorf("member \"coalesce.max_wait\" of routes[0] named twice (lines 3 and 4): finding %q placed on line %d "+
					"(the valid coalesce {\"max_wait\"} member's), want 4 (its second occurrence)", f.msg, f.line)
			}
		}
	}
	if !found {
		t.Fatalf("premise: no duplicate finding: %+v", l.findings)
	}
}

// The same ambiguity places the unknown member: jsonLine follows
// "routes[0].coalesce.max_wait" segment by segment and lands on the valid
// coalesce.max_wait (line 2), never trying the member named so, dots and
// all (line 3). README: each problem is reported with "the line of the
// field". Expected: line 3. (At the top, "defaults.ttl": unknown field
// beside a valid defaults {ttl} is placed so too.)
func TestFollowup254LintUnknownDottedNamePlacedOnValidMember(t *testing.T) {
	cases := []struct {
		in   []byte
		want int
	}{
		{dottedInRoute254, 3},
		{[]byte("{\"routes\":[{\"name\":\"chat\",\"kind\":\"chat\",\"path_prefix\":\"/v1/chat\"}],\n" +
			"\"defaults\":{\"ttl\":\"1m\"},\n" +
			"\"defaults.ttl\":1}\n"), 3},
	}
	for _, c := range cases {
		l := lintBytes("filter.json", c.in)
		found := false
		for _, f := range l.findings {
			if strings.HasSuffix(f.msg, "unknown field") {
				found = true
				if f.line != c.want {
					t.Errorf("unknown member %q on line %d: placed on line %d (the valid nested member of that path), want %d",
						strings.TrimSuffix(f.msg, ": unknown field"), c.want, f.line, c.want)
				}
			}
		}
		if !found {
			t.Fatalf("premise: no unknown-field finding: %+v", l.findings)
		}
	}
}
