//go:build !wasip1

package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// respondChat answers an upstream request with a chat completion of the
// given content (or, with a status other than 200, an error report).
func respondChat(u *wasmhost.UpstreamRequest, status int, content string) {
	body := `{"id":"r","object":"chat.completion","model":"sim-chat","choices":[{"index":0,"message":{"role":"assistant","content":` +
		strconv.Quote(content) + `},"finish_reason":"stop"}]}`
	if status != 200 {
		body = `{"error":{"message":` + strconv.Quote(content) + `}}`
	}
	u.Respond(status, [][2]string{{"content-type", "application/json"}, {"content-length", strconv.Itoa(len(body))}}, []byte(body))
}

// A client that sends max-age=0 or min-fresh refuses the stored answer as
// too old; when the upstream then fails, stale_if_error must not hand it
// that very answer (no-cache, which says the same, gets the failure).
func TestStaleIfErrorNeverServesWhatTheClientRefused(t *testing.T) {
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
	body := chatBody("refuse the old answer")
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "fwd=miss", "stored")
	hs.clock.Advance(30 * time.Second) // still fresh, 30 s old
	failing = true
	for _, cc := range []string{"no-cache", "max-age=0", "max-age=10", "min-fresh=3600"} {
		res := hs.post(0, "/v1/chat/completions", body, "cache-control", cc)
		if res.Status != 503 || strings.Contains(string(res.Body), "old answer") {
			t.Errorf("Cache-Control: %s: client got status %d, Age %q, Cache-Status %q, body %s",
				cc, res.Status, hdr(res, "age"), hdr(res, "cache-status"), res.Body)
		}
	}
	// A client whose directives the entry meets still gets it.
	hs.clock.Advance(60 * time.Second) // stale by 30 s
	res := hs.post(0, "/v1/chat/completions", body, "cache-control", "max-age=600")
	expectCacheStatus(t, res, "fwd=stale", "detail=stale-if-error")
}

// max-stale=N bounds the staleness a client accepts, also on a route
// that serves stale answers while it revalidates (RFC 9111 §5.2.1.2).
func TestMaxStaleBoundHoldsUnderStaleWhileRevalidate(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"60s","stale_while_revalidate":"5m"}]}`
	hs := newHarness(t, cfg, withHTTPCalls())
	hs.holdCalls = true // a background refresh stays pending
	for _, cc := range []string{"max-stale=5", "max-stale=0", "max-age=30", "max-age=30, max-stale", "max-stale=60"} {
		body := chatBody("bounded staleness: " + cc)
		expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "fwd=miss", "stored")
		hs.clock.Advance(70 * time.Second) // stale by 10 s, 70 s old
		res := hs.post(0, "/v1/chat/completions", body, "cache-control", cc)
		if got, want := strings.Contains(hdr(res, "cache-status"), "fwd=stale"), cc == "max-stale=60"; got != want {
			t.Errorf("Cache-Control: %s: served the answer 10 s stale: %v, want %v (Cache-Status %q, Age %q)", cc, got, want, hdr(res, "cache-status"), hdr(res, "age"))
		}
	}
}

// only-if-cached forbids any upstream call for the request, a background
// refresh (made with the client's credential) included.
func TestOnlyIfCachedNeverStartsARefresh(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"60s","stale_while_revalidate":"5m"}]}`
	var calls []*wasmhost.HTTPCall
	hs := newHarness(t, cfg, func(_ *harness, c *wasmhost.Config) {
		c.HTTPCall = func(call *wasmhost.HTTPCall) { calls = append(calls, call) }
	})
	body := chatBody("offline please")
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "fwd=miss", "stored")
	hs.clock.Advance(70 * time.Second) // stale: stale-while-revalidate would refresh
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", body, "cache-control", "only-if-cached"), "hit", "fwd=stale")
	if len(calls) != 0 {
		t.Fatalf("only-if-cached requests caused %d upstream call(s); the first carries authorization %q",
			len(calls), hdrOf(calls[0].Headers, "authorization"))
	}
	// Without the directive the same stale hit does refresh.
	hs.post(1, "/v1/chat/completions", body)
	if len(calls) != 1 {
		t.Fatalf("a stale hit made %d refresh calls, want 1", len(calls))
	}
}
