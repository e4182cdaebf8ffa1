package cachecore

import (
	"strings"
	"testing"
)

// Area B review: background refreshes and the followers that wait on
// their lease.

// startRefresh looks q up on worker 0 and starts a background refresh of
// it there (the refresh takes the key's lease), returning its call.
func (e *protoEnv) startRefresh(q string) *Call {
	e.t.Helper()
	c := e.w[0]
	req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
	c.SetBody(req, []byte(chatRequest(q)))
	c.Lookup(req)
	acts := c.Refresh(req, alice, 1)
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		e.t.Fatalf("setup: refresh: %q", e.show(acts))
	}
	return acts[0].Call
}

// A refresh whose HTTP call the host could not even dispatch (the
// upstream_cluster unknown or gone: proxy_dispatch_http_call fails) made
// no call to the model. A request that followed the refresh's lease
// meanwhile must not count that as its leader's failure and be answered
// 502 "leader-failed" (RATIONALE: "A background refresh that could not
// start ... counted a failure of a call never made. It releases as
// abandoned now and wakes them"; README: fail open on internal faults).
func TestRefreshNotDispatchedWakesItsFollowersUnfailed(t *testing.T) {
	e := newProtoEnv(t, 0, "fail")
	call := e.startRefresh("q")
	follower, got := e.start(1, 2, "q") // another worker, while the refresh holds the key
	expectActs(t, "the follower", got, "coalesce.followers wait")
	acts := e.show(call.Done(CallResult{NotStarted: true}))
	if !strings.Contains(acts, "wake(w1)") {
		t.Fatalf("a refresh that was never dispatched: %q, want its follower woken", acts)
	}
	if got := e.deliver(1, follower); got != "coalesce.promoted resume" {
		t.Fatalf("the follower of a refresh that made no call: %q, want it to lead (no call, no failure)", got)
	}
}

// A refresh that the model answered 503 failed like a leader. Its
// followers with no retries left are answered with the failure, and the
// README promises "the last leader's status if it was a 429 or 5xx, else
// 502" (Cache-Status fwd-status=503): a request's leader gets that, a
// refresh's followers get 502.
func TestRefreshFailureReachesFollowersWithItsStatus(t *testing.T) {
	e := newProtoEnv(t, 0, "fail")
	call := e.startRefresh("q")
	follower, got := e.start(1, 2, "q")
	expectActs(t, "the follower", got, "coalesce.followers wait")
	e.show(call.Done(CallResult{Status: 503, Headers: jsonCT, Body: []byte(`{"error":{"message":"overloaded"}}`)}))
	if got := e.deliver(1, follower); got != "coalesce.retries_exhausted local(503,leader_failed)" {
		t.Fatalf("the follower of a refresh answered 503: %q, want local(503,leader_failed) as for a request's leader", got)
	}
}
