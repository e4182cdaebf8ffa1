//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// RFC 9211 §2.2 fwd=request: "The cache was able to select a fresh
// response for the request, but the request's semantics (e.g.,
// Cache-Control request directives) did not allow its use"; fwd=miss:
// "The cache did not contain any responses that could be used". When a
// client's max-age or min-fresh refuses an entry that is fresh, the
// filter says fwd=miss, so an operator reading the header concludes the
// cache had nothing, where the client's own directive sent it to the
// model. Expected: `fwd=request` (as for no-cache), not `fwd=miss`.
func TestCacheStatusFwdRequestWhenADirectiveRefusesAFreshEntry(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"60s"}]}`
	hs := newHarness(t, cfg)
	for _, cc := range []string{"max-age=5", "min-fresh=55"} {
		body := chatBody("refused fresh entry: " + cc)
		expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "fwd=miss", "stored")
		hs.clock.Advance(10 * time.Second) // 10 s old, fresh for 50 s more
		expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "hit", "ttl=50")
		res := hs.post(0, "/v1/chat/completions", body, "cache-control", cc)
		if cs := hdr(res, "cache-status"); !strings.Contains(cs, "fwd=request") {
			t.Errorf("Cache-Control: %s refused a fresh cached entry: Cache-Status %q, want fwd=request", cc, cs)
		}
	}
}

// End to end: a client that sent max-stale=10 is served, when the model
// fails, an answer 50 s stale (stale-if-error), the staleness its
// max-stale refused a moment before (RFC 9111 §5.2.1.2; README: "A
// client's max-stale=N bounds the staleness it is served"). Expected: the
// model's 503, as for a client whose max-age or min-fresh refused the
// entry (TestStaleIfErrorNeverServesWhatTheClientRefused).
func TestStaleIfErrorNeverServesBeyondTheClientsMaxStale(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"60s","stale_if_error":"1h"}]}`
	hs := newHarness(t, cfg)
	failing := false
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		if failing {
			respondChat(u, 503, "overloaded")
		} else {
			respondChat(u, 200, "old answer")
		}
		return true
	}
	body := chatBody("bounded staleness on error")
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "fwd=miss", "stored")
	hs.clock.Advance(110 * time.Second) // 50 s stale
	failing = true
	res := hs.post(0, "/v1/chat/completions", body, "cache-control", "max-stale=10")
	if res.Status != 503 || strings.Contains(string(res.Body), "old answer") {
		t.Errorf("Cache-Control: max-stale=10, entry 50 s stale, model 503: client got %d, Age %q, Cache-Status %q",
			res.Status, hdr(res, "age"), hdr(res, "cache-status"))
	}
}
