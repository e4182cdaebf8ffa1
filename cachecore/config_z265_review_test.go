package cachecore

import (
	"strings"
	"testing"
	"time"
)

// Review Z265: configuration parsing and validation.

// parseWithin parses cfg in a goroutine and fails the test when it is still
// parsing after limit: every VM of every worker parses the configuration
// at start (slower in wasm), and modelcache lint runs the same parser
// (README "Configuration"; TestConfigDefaultsTimesRoutesIsBounded and the
// reviews Z69, Z105, Z201 bound a document's parse at 3 s).
func parseWithin(t *testing.T, what, why, cfg string, limit time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	t0 := time.Now()
	go func() { _, err := ParseConfig([]byte(cfg)); done <- err }()
	select {
	case err := <-done:
		t.Logf("%d bytes parsed in %v (error: %v)", len(cfg), time.Since(t0), err != nil)
	case <-time.After(limit):
		t.Fatalf("a %d-byte configuration (%s) still parsing after %v: %s", len(cfg), what, limit, why)
	}
}

// gjsonPathOK checks each '%' inside a query with patternLinear, which
// reads the whole rest of the query (to its closing bracket) every time:
// a query value with many '%' in it ("#(a%x%x%x…)#", no '*' at all, so
// the path is accepted) costs the length of the query per '%', quadratic
// in the path. One validate rule's path of 240 KB keeps ParseConfig busy
// for ≈ 10 s (80 KB: ≈ 1 s); the same check runs on every gjson path of
// the configuration (model_path, confidence.path, shadow.paths,
// model_version.body_path), and a path in defaults is checked again per
// kind. Expected: the check linear in the path (a pattern read once), so
// the document parses within 3 s, or is refused as too large.
// At fault: gjsonPathOK (config_policy.go), `case depth > 0 && c == '%'`
// calling patternLinear(path[i+1:]) for every '%'.
func TestConfigZ265PercentPatternCheckIsLinear(t *testing.T) {
	path := "#(a%" + strings.Repeat("x%", 120000) + "x)#"
	cfg := `{"routes":[{"name":"c","kind":"json","path_prefix":"/c","key_fields":["model","input"],` +
		`"validate":[{"path":"` + path + `","exists":true}]}]}`
	parseWithin(t, "one validate path of a query holding 120,000 '%'", "gjsonPathOK reads the rest of the query for every '%'", cfg, 3*time.Second)
}

// confidence.path is refused when it ends at a query over every match
// ("scores.#(>0.5)#"); endsInEveryMatch looks for that by walking every
// "#(" from the end and, for each, scanning with groupEnd to the bracket
// that closes it: nested queries ("#(#(#(…a>1…)))#", a path gjsonPathOK
// accepts, balanced) cost the rest of the path per "#(", quadratic in the
// path. A confidence.path of 240 KB takes ≈ 10 s to refuse (120 KB:
// ≈ 2.6 s). Expected: the document is parsed (here refused) within 3 s.
// At fault: endsInEveryMatch (admission.go), called from
// (*parser).confidence (config_policy.go).
func TestConfigZ265ConfidencePathNestedQueriesCheckIsLinear(t *testing.T) {
	n := 80000
	path := strings.Repeat("#(", n) + "a>1" + strings.Repeat(")", n) + "#"
	cfg := `{"routes":[{"name":"c","kind":"json","path_prefix":"/c","key_fields":["model","input"],` +
		`"confidence":{"path":"` + path + `","tiers":[{"min":0.5,"ttl":"1m"}]}}]}`
	parseWithin(t, "a confidence.path of 80,000 nested queries", "endsInEveryMatch scans to the end of each nested query", cfg, 3*time.Second)
}

// An error about a value a route inherits from defaults is formatted
// again for every route that inherits it, the value quoted whole, and only
// then dropped as a repeat (parser.fail's reported map): defaults with a
// model_path its key_fields leave out ("must include the model field %q")
// cost the model_path's length in strconv quoting and hashing per route.
// A 1 MB document (a 1 MB model_path in defaults, 1,024 routes) takes
// ≈ 8.5 s to refuse, one route ≈ 10 ms; the same with a 1 MB
// upstream_authority beside routes naming their tenant by :authority
// ("… upstream_authority (%q) replaces it …") ≈ 7 s. Every VM of every
// worker parses the configuration at start, and modelcache lint does too.
// Expected: an inherited fault found and formatted once (as the
// ignore_fields case check is, review Z201), the document refused within
// 3 s. At fault: (*parser).route's key_fields check and
// (*parser).config's upstream_authority check (config_sections.go), which
// format per route before parser.fail deduplicates.
func TestConfigZ265InheritedFaultFormattedOncePerDocument(t *testing.T) {
	mp := strings.Repeat("a", 1<<20)
	cfg := `{"defaults":{"model_path":"` + mp + `","key_fields":["model","messages"]},"routes":[` + configEdgesRoutes() + `]}`
	parseWithin(t, "a 1 MB model_path in defaults that its key_fields leave out, 1,024 routes", "the inherited fault is found and formatted again for every route", cfg, 3*time.Second)
}

// Z265's suspicion: a 1 MB upstream_authority beside routes that name
// their tenant by :authority was quoted in an error for each of 1,024
// routes (about 7 s); an authority is bounded at 512 bytes and refused
// once.
func TestConfigZ265HugeUpstreamAuthorityRefusedOnce(t *testing.T) {
	a := strings.Repeat("a", 1<<20)
	cfg := `{"upstream_authority":"` + a + `","defaults":{"tenant_headers":[":authority"],"stale_while_revalidate":"10s"},"routes":[` + configEdgesRoutes() + `]}`
	parseWithin(t, "a 1 MB upstream_authority, 1,024 routes naming the tenant by :authority", "the authority is quoted in an error for every route", cfg, 3*time.Second)
	if _, err := ParseConfig([]byte(cfg)); err == nil || !strings.Contains(err.Error(), "upstream_authority: is 1048576 bytes") {
		t.Fatalf("a 1 MB upstream_authority: %v", err)
	}
}

// Z265's suspicion: tenant_headers ["host"] was accepted, but Envoy hands
// a request's host to the filter as :authority, never as host: every
// request bypassed as no_identity, with no error at start.
func TestConfigZ265TenantHeaderHostRefused(t *testing.T) {
	cfg := `{"routes":[{"name":"c","kind":"chat","path_prefix":"/c","tenant_headers":["host"]}]}`
	_, err := ParseConfig([]byte(cfg))
	if err == nil || !strings.Contains(err.Error(), `routes[0].tenant_headers[0]`) || !strings.Contains(err.Error(), ":authority") {
		t.Fatalf("tenant_headers [\"host\"]: %v; want refused, naming :authority", err)
	}
}
