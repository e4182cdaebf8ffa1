package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// configEdgesRoutes is maxRoutes chat routes that inherit everything from
// defaults.
func configEdgesRoutes() string {
	rs := make([]string, maxRoutes)
	for i := range rs {
		rs[i] = fmt.Sprintf(`{"name":"r%d","kind":"chat","path_exact":"/r/%d"}`, i, i)
	}
	return strings.Join(rs, ",")
}

func configEdgesList(n int, f func(i int) string) string {
	s := make([]string, n)
	for i := range s {
		s[i] = f(i)
	}
	return strings.Join(s, ",")
}

// Review Z201: ignore_fields written once in defaults is re-walked for
// every route that inherits it: route() checks each inherited name against
// the kind's question, form fields and model field (strings.EqualFold),
// building a slices.Concat slice per name, per route. 20,000 names in
// defaults (a 222 KB document) over 1,024 routes take ≈ 7-13 s to parse
// (one route: ≈ 50 ms); 2,000 names (68 KB) already take ≈ 1 s. Every VM
// of every worker parses the configuration at start (slower in wasm).
// TestConfigDefaultsTimesRoutesIsBounded (review Z69) bounded the same
// product for stored_headers and validate at 3 s. Expected: defaults'
// names checked once (per kind), not once per route, so the document
// parses within 3 s, or is refused as too large.
func TestConfigEdgesDefaultsIgnoreFieldsTimesRoutesParseBounded(t *testing.T) {
	names := configEdgesList(20000, func(i int) string { return fmt.Sprintf(`"f%d"`, i) })
	cfg := `{"defaults":{"ignore_fields":[` + names + `]},"routes":[` + configEdgesRoutes() + `]}`
	done := make(chan error, 1)
	t0 := time.Now()
	go func() { _, err := ParseConfig([]byte(cfg)); done <- err }()
	select {
	case err := <-done:
		t.Logf("%d bytes parsed in %v (err %v)", len(cfg), time.Since(t0), err)
	case <-time.After(3 * time.Second):
		t.Fatalf("a %d-byte configuration (20,000 ignore_fields in defaults, %d routes inheriting them) still parsing after 3 s: the inherited list is checked again for every route", len(cfg), maxRoutes)
	}
}

// Review Z201: purge.token without purge.path is refused (purge.path:
// must be an absolute path), but the error also says
// `purge.path: is route "c"'s own path`: the missing path, "", is
// compared with the route's path_exact, "" on a path_prefix route. No
// purge path was given, so no route's path is it. Expected: the error
// names the missing purge.path only, not a collision with a route.
func TestConfigEdgesPurgeTokenWithoutPathBlamesNoRoute(t *testing.T) {
	for _, route := range []string{`"path_prefix":"/v1/chat"`, `"path_exact":"/v1/chat"`} {
		cfg := `{"purge":{"token":"0123456789abcdef-token"},"routes":[{"name":"c","kind":"chat",` + route + `}]}`
		_, err := ParseConfig([]byte(cfg))
		if err == nil {
			t.Fatalf("%s: purge.token without purge.path accepted", route)
		}
		if strings.Contains(err.Error(), "own path") {
			t.Errorf("%s: purge.path is missing, yet the error says it is a route's own path:\n%v", route, err)
		}
	}
}

// Review Z201: shadow.compare "cosine" or "numeric" is accepted on a chat
// route whose compared paths are the kind's default text paths
// (choices.#.message.content, …). Those comparators read numbers, and
// text holds none:
//   - cosine: two byte-identical answers compare as a divergence
//     (len(numbers) == 0), so every sample diverges and the model's
//     entries are invalidated for nothing, over and over (Z187 mended
//     this for a json route's whole answer only);
//   - numeric: "Paris" and "London" compare as agreeing (two empty
//     number lists), so the shadow can never see drift — README's
//     precedent (review Z153): a comparison that compares nothing is
//     shadow.errors, never an agreement.
//
// Expected: the configuration is refused, naming shadow.compare (no text
// answer can be compared so), or such a comparison is not counted as a
// divergence / an agreement (ok false: shadow.errors).
func TestConfigEdgesShadowNumberComparatorOnChatTextPaths(t *testing.T) {
	const chat = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	const paris = `{"id":"1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Paris"},"finish_reason":"stop"}]}`
	const london = `{"id":"1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"London"},"finish_reason":"stop"}]}`
	for _, c := range []struct {
		compare, fresh string
		wrong          bool // the agree value that would be wrong if comparable
	}{
		{"cosine", paris, false},  // identical answers must not diverge
		{"numeric", london, true}, // different answers must not agree
	} {
		t.Run(c.compare, func(t *testing.T) {
			cfg := `{"upstream_cluster":"u","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat","shared":true,` +
				`"shadow":{"sample":1,"min_samples":1,"min_tenants":1,"compare":"` + c.compare + `"}}]}`
			if _, err := ParseConfig([]byte(cfg)); err != nil {
				if !strings.Contains(err.Error(), "shadow.compare") {
					t.Fatalf("refused, but not naming shadow.compare: %v", err)
				}
				return // refused at start: fine
			}
			env := newEnv(t, cfg)
			env.fill(env.request("chat", nil, chat), jsonCT, paris, 10)
			req, d := env.lookup("chat", nil, chat)
			if d != Serve {
				t.Fatalf("setup: not a hit: %v", d)
			}
			agree, ok := env.cache.compareFresh(req, jsonCT, []byte(c.fresh))
			if ok && agree == c.wrong {
				t.Fatalf("compare %q accepted on a chat route's text paths: cached \"Paris\" vs fresh %s compared agree=%v (comparable): "+
					"text holds no numbers, so this comparator compares nothing; want the config refused or the comparison counted as an error",
					c.compare, c.fresh[strings.Index(c.fresh, `"content"`):strings.Index(c.fresh, `},"finish`)], agree)
			}
		})
	}
}
