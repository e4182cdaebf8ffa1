//go:build !wasip1

package main

import (
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Area B review. README, "Cache-Status and request directives":
// only-if-cached means "never an upstream call, even for a request the
// cache cannot take part in, nor a background refresh of the stale answer
// it is given". A shadow comparison is such a call, made with the
// client's credential (TestOnlyIfCachedNeverStartsARefresh is the
// refresh's side).
func TestOnlyIfCachedNeverStartsAShadowComparison(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "shadow":{"sample":1.0,"max_concurrent":4,"min_tenants":1}}]}`
	var calls []*wasmhost.HTTPCall
	hs := newHarness(t, cfg, func(_ *harness, c *wasmhost.Config) {
		c.HTTPCall = func(call *wasmhost.HTTPCall) { calls = append(calls, call) }
	})
	body := chatBody("offline please")
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "fwd=miss", "stored")
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", body, "cache-control", "only-if-cached"), "hit")
	if len(calls) != 0 {
		t.Fatalf("an only-if-cached hit caused %d upstream call(s) (shadow.started %d); the first carries authorization %q",
			len(calls), hs.counter("modelcache_route.chat.shadow.started"), hdrOf(calls[0].Headers, "authorization"))
	}
	// Without the directive the same fresh hit is sampled.
	hs.post(1, "/v1/chat/completions", body)
	if len(calls) != 1 {
		t.Fatalf("a sampled hit made %d shadow calls, want 1", len(calls))
	}
}
