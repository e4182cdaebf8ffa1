//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

const swrNoRetryConfig = `{
  "upstream_cluster": "model",
  "routes": [
    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s",
     "stale_while_revalidate": "30s", "coalesce": {"max_retries": 0}}
  ]
}`

// Review Z115 (dispatch, review Z110): a call's answer the host will not
// hand over is now a Failed call. For a background refresh, which holds
// its key's lease, a Failed result ends that lead as OutcomeFailed: its
// followers count a leader failure as if the model had failed. The model
// answered 200; the fault is the host's (an internal fault), which
// OutcomeOf makes OutcomeAbandoned ("the cache's fault … not the
// model's: followers must not run out of retries (and answer 502) on a
// model that answers"). With max_retries 0, the follower is answered
// 502 leader-failed on a model that answered.
func TestRefreshAnswerUnreadableIsNoLeaderFailure(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, swrNoRetryConfig, withWorkers(1), withFaults(f), withHTTPCalls())
	hs.holdCalls = true
	body := chatBody("swr")
	if r := hs.post(0, "/v1/chat/completions", body); r.Status != 200 {
		t.Fatalf("warm: %d", r.Status)
	}
	hs.clock.Advance(70 * time.Second) // stale, within stale_while_revalidate
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "fwd=stale")
	calls := hs.h.PendingHTTPCalls()
	if len(calls) != 1 {
		t.Fatalf("setup: %d refreshes", len(calls))
	}
	// A request that will not take the stale entry follows the refresh's
	// lead.
	req := chatRequest("swr")
	req.Headers = append(req.Headers, [2]string{"cache-control", "max-age=0"})
	b := hs.h.StartExchange(0, req)
	hs.h.Drain()
	if b.Done() || len(hs.h.PendingUpstream()) != 0 {
		t.Fatalf("setup: the no-cache request does not follow the refresh: %s, %d upstream", b.State(), len(hs.h.PendingUpstream()))
	}
	hs.holdCalls = false
	f.set(func(c wasmhost.HostCall) (wasmhost.Status, bool) {
		return wasmhost.StatusInternalFailure, c.Name == "proxy_get_header_map_pairs" && len(c.Args) > 0 &&
			wasmhost.MapType(uint32(c.Args[0])) == wasmhost.MapHTTPCallResponseHeaders
	})
	hs.answerCall(calls[0]) // the model answers 200
	hs.h.Drain()
	f.set(nil)
	if f.failed() == 0 {
		t.Fatal("setup: the refresh's answer was read")
	}
	for i := 0; i < 3 && !b.Done(); i++ {
		hs.h.AdvanceAndTick(100 * time.Millisecond)
		hs.h.Drain()
	}
	r := b.Response()
	if !b.Done() || r.Status != 200 || strings.Contains(hdr(r, "cache-status"), "leader-failed") || hs.counter("modelcache_route.chat.requests.leader_failed") != 0 {
		t.Fatalf("the follower of a refresh whose answer the host could not read gets %d %q (leader_failures %d): a host fault is no leader failure",
			r.Status, hdr(r, "cache-status"), hs.counter("modelcache_route.chat.coalesce.leader_failures"))
	}
}
