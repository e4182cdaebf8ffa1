package cachecore

import (
	"testing"
	"time"
)

// RFC 9111 §5.4: "When the Cache-Control header field is also present and
// understood in a request, Pragma is ignored." (A client may send
// Pragma: no-cache for HTTP/1.0 caches and other directives for HTTP/1.1
// ones, as §5.4 describes.) readDirectives sets no-cache from Pragma
// whatever Cache-Control says, so a client that sends
// `Cache-Control: max-age=600` (or `only-if-cached`) beside a legacy
// `Pragma: no-cache` is never served a fresh entry: the first goes to the
// model (a paid call, counted revalidate), the second gets a 504 although
// the cache holds a fresh answer. Expected: Pragma counts only when the
// request has no Cache-Control, and both requests are served the entry.
func TestRequestPragmaIgnoredBesideCacheControl(t *testing.T) {
	for _, cc := range []string{"max-age=600", "only-if-cached", "max-stale=30"} {
		t.Run(cc, func(t *testing.T) {
			env := newEnv(t, testConfig)
			body := chatRequest("pragma beside cache-control")
			req, _ := env.lookup("chat", alice, body)
			env.fill(req, jsonCT, chatResponse("ok"), 10)
			env.clock.Advance(100 * time.Second) // fresh for 200 s more
			h := append(append([][2]string{}, alice...),
				[2]string{"cache-control", cc}, [2]string{"pragma", "no-cache"})
			req, d := env.lookup("chat", h, body)
			if d != Serve || req.Status != StatusHit {
				t.Fatalf("Cache-Control: %s with Pragma: no-cache, entry 100 s old and fresh: Lookup = %v/%s, want Serve/hit (CC read as %+v)",
					cc, d, req.Status, req.CC)
			}
		})
	}
}

// A client's max-stale=N says it accepts an answer no more than N seconds
// past its freshness (RFC 9111 §5.2.1.2), and README says the bound holds
// on a route's stale windows ("A client's max-stale=N bounds the staleness
// it is served"). Lookup honours it, but when the model then fails,
// StaleIfError judges the entry by the client's max-age and min-fresh only
// (clientRefuses), so the very answer the client's max-stale refused, 30 s
// stale, is served to it as stale-if-error. Expected: an entry staler than
// the client's max-stale is not given to it on an error either (it gets
// the model's error, as for max-age and min-fresh).
func TestStaleIfErrorHonoursTheClientsMaxStale(t *testing.T) {
	env := newEnv(t, testConfig) // route sie: ttl 300 s, stale_if_error 60 s
	body := chatRequest("max-stale bound on error")
	req, _ := env.lookup("sie", alice, body)
	env.fill(req, jsonCT, chatResponse("old answer"), 10)
	env.clock.Advance(330 * time.Second) // 30 s stale, within stale_if_error
	h := append(append([][2]string{}, alice...), [2]string{"cache-control", "max-stale=10"})
	req, d := env.lookup("sie", h, body)
	if d != Forward {
		t.Fatalf("max-stale=10, entry 30 s stale: Lookup = %v/%s, want Forward", d, req.Status)
	}
	// The model fails (503): may the stale entry answer this client?
	if env.cache.StaleIfError(req) {
		t.Fatalf("max-stale=10: an entry 30 s stale, which the client's max-stale refused, is served on the model's error (stale-if-error)")
	}
}
