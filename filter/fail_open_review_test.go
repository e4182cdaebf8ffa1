//go:build !wasip1

package main

import (
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z158 (fail-open on internal faults: a panic in a root callback).

// withCrashHeader is req with the crash-test module's switch set to v
// (crashtest.go).
func withCrashHeader(req wasmhost.Request, v string) wasmhost.Request {
	req.Headers = append(append([][2]string(nil), req.Headers...), [2]string{"x-modelcache-crash", v})
	return req
}

// README ("Failure policies"): a request a panic caught waiting — a
// follower — "goes on upstream at once"; README (stats):
// modelcache_route.<route>.requests.<status> counts "each request once", a
// request that goes upstream "then". A follower broken by a panic in the
// tick that re-checks it goes upstream but is counted nowhere:
// plugin.OnHttpStreamBroken hands the stream to cachecore's Broken (which
// counts what waited to be counted) only when it was leading or on the
// counting list, and a follower is neither; the binding then resumes it
// and the plugin hears no more of it. Two requests reached the route, two
// reached the model; requests.* sums to 1. A broken leader or miss is
// counted (TestBrokenRequestWhoseCountWaitedIsCounted).
func TestFollowerBrokenInATickIsCountedOnce(t *testing.T) {
	hs := crashHarness(t, withWorkers(1))
	hs.holdUpstream()
	req := chatRequest("a follower broken in a tick is counted")
	leader, _ := hs.lead(req)
	follower := hs.h.StartExchange(0, withCrashHeader(req, "panic-in-tick"))
	hs.h.Drain()
	if f := hs.counter("modelcache_route.chat.coalesce.followers"); f != 1 || follower.Done() {
		t.Fatalf("setup: %d followers, follower done %v", f, follower.Done())
	}
	hs.h.AdvanceAndTick(time.Second) // the tick panics, the follower's context effective
	hs.h.Drain()
	up := hs.h.PendingUpstream()
	if p := hs.counter("modelcache.panics"); p != 1 || len(up) != 2 {
		t.Fatalf("setup: panics %d, %d upstream requests (want 1 and 2)", p, len(up))
	}
	for _, u := range up {
		hs.answer(u)
	}
	hs.h.Drain()
	if !leader.Done() || !follower.Done() || leader.Response().Status != 200 || follower.Response().Status != 200 {
		t.Fatalf("leader %s, follower %s", leader.State(), follower.State())
	}
	if got, n := requestCounters(hs, "chat"); n != 2 {
		t.Errorf("2 requests on the route, both answered by the model (the follower broken by a panic and sent upstream): counted %d times in requests.* (%s), want 2",
			n, fmtCounters(got))
	}
}

// The same for a request broken by a panic in its own call's result (an
// L2 lookup, crashtest's panic-in-call): the binding resumes it, it goes
// to the model, and no requests.* counter ever counts it.
func TestRequestBrokenInItsL2LookupIsCountedOnce(t *testing.T) {
	w := &l2Webdis{kv: map[string]string{}}
	cfg := `{"upstream_cluster": "model", "l2": {"cluster": "webdis", "timeout": "1s"},
  "routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s"}]}`
	hs := crashHarnessWith(t, cfg, withWorkers(1), func(_ *harness, c *wasmhost.Config) {
		c.Clusters = append(c.Clusters, "webdis")
		c.HTTPCall = func(call *wasmhost.HTTPCall) {
			path := ""
			for _, h := range call.Headers {
				if h[0] == ":path" {
					path = h[1]
				}
			}
			call.Respond(200, nil, []byte(w.do(path, call.Body)))
		}
	})
	res := hs.post(0, "/v1/chat/completions", chatBody("broken in its L2 lookup"), "x-modelcache-crash", "panic-in-call")
	if p := hs.counter("modelcache.panics"); p != 1 || res.Status != 200 || hs.upstream.Load() != 1 {
		t.Fatalf("setup: panics %d, status %d, upstream %d (want 1, 200, 1)", p, res.Status, hs.upstream.Load())
	}
	if got, n := requestCounters(hs, "chat"); n != 1 {
		t.Errorf("a request broken by a panic in its L2 lookup's result went to the model: counted %d times in requests.* (%s), want once",
			n, fmtCounters(got))
	}
}

// The same for a request held for its body (its headers held, the body
// not come yet) that a panic in the tick watching it breaks: README says it
// "goes on upstream at once", and it does, with its body, answered 200 by
// the model, but no requests.* counter counts it.
func TestHeldRequestBrokenInATickIsCountedOnce(t *testing.T) {
	hs := crashHarness(t, withWorkers(1))
	req := withCrashHeader(chatRequest("held for its body, broken in a tick"), "panic-in-tick")
	req.Streaming = true // headers now, the body later
	ex := hs.h.StartExchange(0, req)
	hs.h.Drain()
	hs.h.AdvanceAndTick(100 * time.Millisecond) // the tick panics, the held request's context effective
	hs.h.Drain()
	if p := hs.counter("modelcache.panics"); p != 1 {
		t.Fatalf("setup: panics %d", p)
	}
	ex.SendBody([]byte(chatBody("held for its body, broken in a tick")), true)
	hs.h.Drain()
	if !ex.Done() || ex.Response().Status != 200 || hs.upstream.Load() != 1 {
		t.Fatalf("setup: %s, upstream %d", ex.State(), hs.upstream.Load())
	}
	if got, n := requestCounters(hs, "chat"); n != 1 {
		t.Errorf("a held request broken by a panic went to the model: counted %d times in requests.* (%s), want once",
			n, fmtCounters(got))
	}
}
