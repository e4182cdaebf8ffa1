package cachecore

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Review Z69 (configuration, second pass).

// README, Policy: finish_reasons is a policy field of every route ("in
// defaults or on a route"): "allowed finish_reasons; others (length,
// content_filter, …) are not stored; an empty list is an error" — and the
// parser checks it on every kind (an empty list on a json route is
// refused). On a json route (say one fronting an OpenAI-compatible API
// the kinds do not know) the list is accepted and then ignored: an answer
// truncated by length is stored and served. Either the field is a config
// error on kinds without choices, or it is applied.
func TestConfigFinishReasonsOnAJSONRouteIsNotAcceptedAndIgnored(t *testing.T) {
	cfg := `{"routes":[{"name":"j","kind":"json","path_prefix":"/v1/j","shared":true,"finish_reasons":["stop"]}]}`
	if _, err := ParseConfig([]byte(cfg)); err != nil {
		return // refused at start, naming the field: fine
	}
	truncated := `{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"Par"},"finish_reason":"length"}]}`
	r := storeVerdict(t, cfg, "j", nil, `{"model":"m","input":"q"}`, jsonCT, truncated)
	if r == ReasonNone {
		t.Fatalf(`finish_reasons ["stop"] accepted on a json route, then ignored: an answer with finish_reason "length" was stored`)
	}
}

// README, Configuration: "A value a route inherits from defaults is named
// where it is written". A stale_while_revalidate written in defaults
// without upstream_cluster is reported against every route, as
// "routes[i]: …", never naming defaults.stale_while_revalidate (with 1,024
// routes: 1,024 copies of an error pointing at routes that do not hold
// the value).
func TestConfigBackgroundCallFieldInheritedFromDefaultsIsNamedThere(t *testing.T) {
	cfg := `{"defaults":{"stale_while_revalidate":"1m"},
	  "routes":[{"name":"a","kind":"chat","path_prefix":"/a"},{"name":"b","kind":"chat","path_prefix":"/b"}]}`
	_, err := ParseConfig([]byte(cfg))
	if err == nil {
		t.Fatal("accepted stale_while_revalidate without upstream_cluster")
	}
	if !strings.Contains(err.Error(), "defaults.stale_while_revalidate") {
		t.Fatalf("the error does not name defaults.stale_while_revalidate, where the value is written:\n%v", err)
	}
}

// Start time and memory of a configuration are bounded by its size
// (RATIONALE "A configuration is refused for what no request could
// match": 1,024 routes at most because 5 MB of them kept the parser busy
// for tens of seconds at every VM's start). defaults is re-parsed for
// every route, and its lists are unbounded, so the work and the memory
// kept are (size of defaults) × (routes): an 82 KB configuration, 2,000
// stored_headers in defaults (whose duplicate check is quadratic) and
// 1,024 routes, parses for ~11 s natively (a VM runs it slower, at every
// start, the canary included); a 97 KB one with 1,000 validate rules in
// defaults keeps ~170 MiB in every VM's heap (README: "at most ≈ 12 MiB per
// VM"). (Memory is measured first: the start-time case leaves its parse
// running when it fails.)
func TestConfigDefaultsTimesRoutesIsBounded(t *testing.T) {
	routes := func() string {
		var rs []string
		for i := 0; i < maxRoutes; i++ {
			rs = append(rs, fmt.Sprintf(`{"name":"r%d","kind":"json","path_exact":"/r/%d","shared":true}`, i, i))
		}
		return strings.Join(rs, ",")
	}()
	t.Run("memory kept", func(t *testing.T) {
		var rules []string
		for i := 0; i < 1000; i++ {
			rules = append(rules, fmt.Sprintf(`{"path":"a%d","exists":true}`, i))
		}
		cfg := `{"defaults":{"validate":[` + strings.Join(rules, ",") + `]},"routes":[` + routes + `]}`
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		c, err := ParseConfig([]byte(cfg))
		runtime.GC()
		runtime.ReadMemStats(&m1)
		runtime.KeepAlive(c)
		if err != nil {
			return // refused: bounded
		}
		kept := int64(m1.HeapAlloc) - int64(m0.HeapAlloc)
		if kept > 32<<20 {
			t.Fatalf("a %d-byte configuration (1,000 validate rules in defaults, %d routes) keeps %d MiB in the heap once parsed", len(cfg), maxRoutes, kept>>20)
		}
	})
	t.Run("start time", func(t *testing.T) {
		var hs []string
		for i := 0; i < 2000; i++ {
			hs = append(hs, fmt.Sprintf(`"h%d"`, i))
		}
		cfg := `{"defaults":{"stored_headers":[` + strings.Join(hs, ",") + `]},"routes":[` + routes + `]}`
		done := make(chan error, 1)
		t0 := time.Now()
		go func() { _, err := ParseConfig([]byte(cfg)); done <- err }()
		select {
		case <-done:
			t.Logf("%d bytes parsed in %v", len(cfg), time.Since(t0))
		case <-time.After(3 * time.Second):
			t.Fatalf("a %d-byte configuration (2,000 stored_headers in defaults, %d routes) still parsing after 3 s", len(cfg), maxRoutes)
		}
	})
}

// README, Policy (ignore_fields): "A route's own key_fields (even [], all
// fields …) … both on one route, or both in defaults, is a config error".
// key_fields [] beside ignore_fields is accepted, on a route and in
// defaults, and the [] is silently dropped (the route keys by its
// ignore_fields), while key_fields ["model","messages"] beside it is
// refused.
func TestConfigEmptyKeyFieldsBesideIgnoreFieldsIsRefused(t *testing.T) {
	for _, tc := range []struct{ name, cfg string }{
		{"on a route", `{"routes":[{"name":"c","kind":"chat","path_prefix":"/v1/chat","key_fields":[],"ignore_fields":["user"]}]}`},
		{"in defaults", `{"defaults":{"key_fields":[],"ignore_fields":["user"]},"routes":[{"name":"c","kind":"chat","path_prefix":"/v1/chat"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseConfig([]byte(tc.cfg)); err == nil || !strings.Contains(err.Error(), "exclude each other") {
				t.Fatalf("key_fields and ignore_fields both given: error %v, want \"key_fields and ignore_fields exclude each other\"", err)
			}
		})
	}
}
