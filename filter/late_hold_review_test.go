//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z113 (header hold and late decisions).

const lateL2StaleConfig = `{"upstream_cluster": "model", "header_hold": "late", "l2": {"cluster": "webdis", "timeout": "1s"},
  "routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s", "stale_if_error": "5m"}]}`

// A late leader (its headers upstream, its body paused on its L2 lookup)
// whose model answers the headers at once with a 401 — the README's own
// example of an early answer, an API key checked on the headers — ends its
// lead as a failed one (OutcomeOf(ReasonEarlyAnswer, …) is OutcomeFailed
// whatever the status). Its follower then counts a leader failure and,
// its key holding an entry within stale_if_error, is answered that stale
// entry as if the model had failed. A 401 is the model's answer, not a
// failure (OutcomeOf: "Any other status the route does not cache is the
// model's answer: the same request gets the same 4xx"): a held leader's
// 401 is OutcomeUncacheable, and its followers go upstream themselves
// (served the stale entry, a follower whose own key the model rejects
// gets a cached answer for the model's "no").
func TestLateLeaderEarly401IsNoLeaderFailure(t *testing.T) {
	w := &l2Webdis{kv: map[string]string{}}
	holdL2 := false
	hs := newHarness(t, lateL2StaleConfig, withWorkers(1), func(_ *harness, c *wasmhost.Config) {
		c.AllowOnHeadersStopIteration = false
		c.Clusters = append(c.Clusters, "webdis")
		c.HTTPCall = func(c *wasmhost.HTTPCall) {
			if !holdL2 { // else the L2 lookup stays out: the leader's body waits
				c.Respond(200, nil, []byte(w.do(callPath(c), c.Body)))
			}
		}
	})
	if r := hs.post(0, "/v1/chat/completions", chatBody("q")); r.Status != 200 {
		t.Fatalf("warm: %d", r.Status)
	}
	hs.h.Drain()
	hs.h.AdvanceAndTick(2 * time.Minute) // stale, within stale_if_error
	hs.h.Drain()
	holdL2 = true
	hs.holdUpstream()
	a := hs.h.StartExchange(0, chatRequest("q")) // leads; its L2 lookup is out
	hs.h.Drain()
	b := hs.h.StartExchange(0, chatRequest("q")) // follows a, its upstream request open
	hs.h.Drain()
	ua := a.OpenUpstream()
	if ua == nil || a.Done() || b.Done() || hs.counter("modelcache_route.chat.late.followers_held") != 1 {
		t.Fatalf("setup: a %s, b %s, followers_held %d", a.State(), b.State(), hs.counter("modelcache_route.chat.late.followers_held"))
	}
	ua.Respond(401, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":{"message":"invalid api key"}}`))
	hs.h.Drain()
	if !a.Done() || a.Response().Status != 401 {
		t.Fatalf("setup: a %s, status %d", a.State(), a.Response().Status)
	}
	// As when a held leader gets the 401: the follower goes upstream
	// itself, its body following its headers.
	if cs := hdr(b.Response(), "cache-status"); b.Done() || len(hs.h.PendingUpstream()) != 1 {
		t.Fatalf("the late leader's early 401 is taken as a model failure: its follower gets %d %q (done %v, %d upstream requests sent whole), "+
			"where a held leader's 401 sends its followers upstream", b.Response().Status, cs, b.Done(), len(hs.h.PendingUpstream()))
	}
}

// The same late leader, its body decided (its lookup found the key's
// entry stale, within stale_if_error) and paused on its L2 lookup, whose
// model answers the headers with a 503: the leader passes the 503 to its
// client while its own follower, woken by that failure, is answered the
// stale entry. stale_if_error is for this very case (the model failed and
// the request's key holds an entry within the window): held, the 503 at
// the leader's response headers is replaced by the entry (RespServed), and
// decided late the response headers can still be answered locally (as
// Stream.responseStep does for a late request's 503 once forwarded).
func TestLateLeaderEarly503ServesItsStaleEntry(t *testing.T) {
	w := &l2Webdis{kv: map[string]string{}}
	holdL2 := false
	hs := newHarness(t, lateL2StaleConfig, withWorkers(1), func(_ *harness, c *wasmhost.Config) {
		c.AllowOnHeadersStopIteration = false
		c.Clusters = append(c.Clusters, "webdis")
		c.HTTPCall = func(c *wasmhost.HTTPCall) {
			if !holdL2 {
				c.Respond(200, nil, []byte(w.do(callPath(c), c.Body)))
			}
		}
	})
	first := hs.post(0, "/v1/chat/completions", chatBody("q"))
	if first.Status != 200 {
		t.Fatalf("warm: %d", first.Status)
	}
	hs.h.Drain()
	hs.h.AdvanceAndTick(2 * time.Minute)
	hs.h.Drain()
	holdL2 = true
	hs.holdUpstream()
	a := hs.h.StartExchange(0, chatRequest("q"))
	hs.h.Drain()
	b := hs.h.StartExchange(0, chatRequest("q"))
	hs.h.Drain()
	ua := a.OpenUpstream()
	if ua == nil || a.Done() || b.Done() {
		t.Fatalf("setup: a %s, b %s", a.State(), b.State())
	}
	ua.Respond(503, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":{"message":"overloaded"}}`))
	hs.h.Drain()
	ra, rb := a.Response(), b.Response()
	if rb.Status != 200 || !strings.Contains(hdr(rb, "cache-status"), "stale-if-error") {
		t.Fatalf("setup: the follower gets %d %q", rb.Status, hdr(rb, "cache-status"))
	}
	if !a.Done() || ra.Status != 200 || string(ra.Body) != string(first.Body) {
		t.Fatalf("the leader whose model failed gets %d %q (body %.80s) while its follower, woken by that failure, gets the stale entry %q",
			ra.Status, hdr(ra, "cache-status"), ra.Body, hdr(rb, "cache-status"))
	}
	// Each counted once, as its Cache-Status says.
	if n, refused := hs.counter("modelcache_route.chat.requests.stale_if_error"), hs.counter("modelcache_route.chat.refused.early_answer"); n != 2 || refused != 1 {
		t.Fatalf("requests.stale_if_error %d, refused.early_answer %d: want 2 and 1", n, refused)
	}
}
