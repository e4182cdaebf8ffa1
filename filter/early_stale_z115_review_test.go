//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z115: follow-ups of Flight.EarlyStale / Stream.earlyStale (Z113)
// and Flight.Unread (Z110).

// earlyStaleLeader sets up TestLateLeaderEarly503ServesItsStaleEntry's
// leader alone: its key's entry stale within stale_if_error, its headers
// upstream, its body paused on its L2 lookup (held). It returns the
// harness, the exchange and its open upstream request, and the warm
// answer.
func earlyStaleLeader(t *testing.T, f *faultPlan) (*harness, *wasmhost.Exchange, *wasmhost.UpstreamRequest, []byte) {
	t.Helper()
	w := &l2Webdis{kv: map[string]string{}}
	holdL2 := false
	opts := []harnessOpt{withWorkers(1), func(_ *harness, c *wasmhost.Config) {
		c.AllowOnHeadersStopIteration = false
		c.Clusters = append(c.Clusters, "webdis")
		c.HTTPCall = func(c *wasmhost.HTTPCall) {
			if !holdL2 {
				c.Respond(200, nil, []byte(w.do(callPath(c), c.Body)))
			}
		}
	}}
	if f != nil {
		opts = append(opts, withFaults(f))
	}
	hs := newHarness(t, lateL2StaleConfig, opts...)
	first := hs.post(0, "/v1/chat/completions", chatBody("q"))
	if first.Status != 200 {
		t.Fatalf("warm: %d", first.Status)
	}
	hs.h.Drain()
	hs.h.AdvanceAndTick(2 * time.Minute) // stale, within stale_if_error
	hs.h.Drain()
	holdL2 = true
	hs.holdUpstream()
	a := hs.h.StartExchange(0, chatRequest("q"))
	hs.h.Drain()
	ua := a.OpenUpstream()
	if ua == nil || a.Done() {
		t.Fatalf("setup: a %s", a.State())
	}
	return hs, a, ua, first.Body
}

// A late leader whose model fails its headers early (503) is answered the
// stale entry (Stream.earlyStale) from its response-headers callback,
// which returns Pause. Should the host refuse that local reply
// (proxy_send_local_response fails), SendFailed finds no held answer
// (earlyStale never kept the response headers: respHeaders is nil) and
// takes the path of a hit that could not be sent: the request is
// "forwarded" again (ActForward with Resume, not performed outside a root
// callback) while the model's 503 stays paused at its headers. Nothing
// resumes it: no tick, no call result. The client hangs. Fail-open
// (README: an internal fault passes the request untouched) wants the
// model's 503 passed on, as SendFailed does for a stale answer to a
// forwarded request's failure (review Z67).
func TestLateEarlyStaleReplyRefusedPassesTheModelAnswer(t *testing.T) {
	f := &faultPlan{}
	hs, a, ua, _ := earlyStaleLeader(t, f)
	f.set(failSendLocalResponse)
	ua.Respond(503, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":{"message":"overloaded"}}`))
	hs.h.Drain()
	f.set(nil)
	if f.failed() == 0 {
		t.Fatal("setup: no local reply was attempted (no stale-if-error answer?)")
	}
	for i := 0; i < 5 && !a.Done(); i++ {
		hs.h.AdvanceAndTick(time.Second)
		hs.h.Drain()
	}
	// The L2 lookup still out comes back too.
	for _, c := range hs.h.PendingHTTPCalls() {
		c.Respond(200, nil, []byte(`{"MGET":[null,null,null,null,null]}`))
	}
	hs.h.Drain()
	if !a.Done() {
		t.Fatalf("the early 503 whose stale-if-error reply the host refused is left %s: the client hangs (want the model's 503 passed on)", a.State())
	}
	if r := a.Response(); r.Status != 503 || !strings.Contains(hdr(r, "cache-status"), "fwd-status=503") {
		t.Fatalf("client got %d %q, want the model's 503 with its Cache-Status", r.Status, hdr(r, "cache-status"))
	}
}
