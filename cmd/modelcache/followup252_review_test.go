package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/cachecore"
)

// Review Z252: follow-up of ab81906..HEAD (review Z249).

// jsonLine places a finding by splitting ParseConfig's field path at every
// "." and, when the full path does not exist, retrying with one segment
// fewer each time: for a member name holding k dots (an unknown member
// "a.a.a…", which ParseConfig reports by its raw name) that is k gjson
// lookups, each building a path of O(k) bytes and scanning the JSON: O(k²)
// for one finding, quadratic in the file. A 60 KB bare JSON configuration
// with one such member takes seconds to lint (ParseConfig: a millisecond);
// a 1 MiB one about half an hour, and maxPlacedFindings (256) does not
// bound it (one finding suffices). Expected: placing a finding costs about
// linear time in the configuration (e.g. stop at the first segment that
// does not exist).
func TestFollowup252LintDottedUnknownMemberPlacedInQuadraticTime(t *testing.T) {
	key := strings.Repeat("a.", 30000) + "a"
	in := []byte(`{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat"}],` + "\n\"" + key + "\":0}\n")
	start := time.Now()
	_, err := cachecore.ParseConfig(in)
	parse := time.Since(start)
	if err == nil {
		t.Fatal("premise: the filter accepts an unknown member")
	}
	start = time.Now()
	l := lintBytes("filter.json", in)
	took := time.Since(start)
	if len(l.findings) != 1 {
		t.Fatalf("%d findings, want 1", len(l.findings))
	}
	if took > time.Second {
		t.Errorf("%d-byte bare JSON configuration with one unknown member whose name holds 30,000 dots: lint took %v "+
			"(ParseConfig %v), want well under 1 s: jsonLine retries the path one segment shorter at a time, each a scan (quadratic)",
			len(in), took, parse)
	}
}

// jsonLine places a duplicated member at its second occurrence (README:
// "a duplicated member's second occurrence"), found by splitting
// ParseConfig's path at ".": a duplicated member whose own name holds a
// dot ("defaults.ttl", reported as "defaults.ttl: duplicate field") is
// looked for as member "ttl" of "defaults", which occurs once, and the
// finding falls back to the line of that valid defaults.ttl (line 2),
// pointing the user at a member that is neither duplicated nor wrong.
// Expected: the line of the second "defaults.ttl" member (line 4).
func TestFollowup252LintDuplicateDottedNamePlacedOnAnotherMembersLine(t *testing.T) {
	in := []byte("{\"routes\":[{\"name\":\"chat\",\"kind\":\"chat\",\"path_prefix\":\"/v1/chat\"}],\n" +
		"\"defaults\":{\"ttl\":\"1m\"},\n" +
		"\"defaults.ttl\":1,\n" +
		"\"defaults.ttl\":2}\n")
	l := lintBytes("filter.json", in)
	found := false
	for _, f := range l.findings {
		if strings.HasSuffix(f.msg, "duplicate field") {
			found = true
			if f.line != 4 {
				t.Errorf("duplicated member \"defaults.ttl\" (lines 3 and 4): finding %q placed on line %d "+
					"(the valid defaults {\"ttl\"} member's), want 4 (its second occurrence)", f.msg, f.line)
			}
		}
	}
	if !found {
		t.Fatalf("premise: no duplicate finding: %+v", l.findings)
	}
}

// routeIndex.candidates makes every case-insensitive Envoy route
// (case_sensitive: false) a candidate for every filter route, and
// firstCovering judges each: the opt-out check is filters × routes ×
// Envoy routes again (what ab81906 fixed, review Z249) as soon as the
// Envoy routes are case-insensitive, which some route tables set on every
// route. Review Z249's input with case_sensitive: false on each Envoy
// route (smaller here): none meets another's paths, yet every one is
// judged for every filter route (4 million for this 270 KB file, 0.4 s;
// Z249's 16 × 512 × 10,000 is 82 million, about 8 s). Expected: as for
// case-sensitive routes, at most about one judged per filter route (index
// the case-insensitive routes by their lower-cased value too).
func TestFollowup252LintRouteOptOutCheckCaseInsensitiveRoutesAllJudged(t *testing.T) {
	const filters, specs, envoyRoutes = 4, 256, 4000
	var b strings.Builder
	b.WriteString("http_filters:\n")
	for f := 0; f < filters; f++ {
		var rs []string
		for i := 0; i < specs; i++ {
			rs = append(rs, fmt.Sprintf(`{"name":"f%dr%d","kind":"chat","path_prefix":"/m%d/%d/"}`, f, i, f, i))
		}
		fmt.Fprintf(&b, `- name: modelcache%d
  typed_config:
    "@type": %s
    config:
      root_id: modelcache%d
      configuration:
        "@type": %s
        value: '{"routes":[%s]}'
`, f, wasmFilterType, f, stringValue, strings.Join(rs, ","))
	}
	b.WriteString("- name: envoy.filters.http.router\nroute_config:\n  virtual_hosts:\n  - name: v\n    domains: [\"*\"]\n    routes:\n")
	for i := 0; i < envoyRoutes; i++ {
		fmt.Fprintf(&b, "    - match: {prefix: /z%d, case_sensitive: false}\n", i)
	}
	in := []byte(b.String())
	start := time.Now()
	l := lintBytes("envoy.yaml", in)
	took := time.Since(start)
	if len(l.findings) != 0 || l.checked != filters {
		t.Fatalf("premise: %d configurations checked (want %d), findings %v", l.checked, filters, l.findings)
	}
	if l.judged > filters*specs || took > 20*time.Second {
		t.Errorf("%d-byte Envoy config (%d modelcache filters × %d routes, %d case-insensitive Envoy routes): the opt-out check "+
			"judged %d Envoy routes (filters × routes × Envoy routes), want at most %d; lint took %v",
			len(in), filters, specs, envoyRoutes, l.judged, filters*specs, took)
	}
}
