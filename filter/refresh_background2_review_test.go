//go:build !wasip1

package main

import (
	"testing"
	"time"
)

const z205SWRConfig = `{
  "upstream_cluster": "model",
  "background": {"timeout": "5s"},
  "routes": [
    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s",
     "stale_while_revalidate": "5m"}
  ]
}`

// Review Z205. A background call's answer is always read as the model's
// (OriginUpstream): Envoy's AsyncClient answers a call that timed out with
// a local 504 "upstream request timeout" (as the harness's host does), and
// the refresh takes that for the model refusing it by status. A refresh
// that timed out is counted background.refused (never background.failed),
// and the route's refused.status / refused_status.504 say the model
// answered 504, where a request's own upstream timeout is counted
// refused.upstream_timeout (ClassifyOrigin). An operator watching
// background.failed sees no failing refreshes while every one times out,
// and the per-status refusals report 504s the model never sent.
// Expected: a refresh that timed out counts background.failed, and no
// model status refusal.
func TestZ205RefreshThatTimesOutIsCountedFailed(t *testing.T) {
	hs := newHarness(t, z205SWRConfig, withWorkers(2), withHTTPCalls())
	hs.holdCalls = true
	body := chatBody("timeout")
	if r := hs.post(0, "/v1/chat/completions", body); r.Status != 200 {
		t.Fatalf("warm: %d", r.Status)
	}
	hs.clock.Advance(70 * time.Second) // stale, within stale_while_revalidate
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "fwd=stale")
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", body), "fwd=stale")
	if n := len(hs.h.PendingHTTPCalls()); n != 1 || hs.counter("modelcache_route.chat.background.started") != 1 {
		t.Fatalf("setup: %d refreshes pending", n)
	}
	// The model never answers: Envoy times the call out at background.timeout.
	hs.h.AdvanceAndTick(6 * time.Second)
	hs.h.Drain()
	if n := len(hs.h.PendingHTTPCalls()); n != 0 {
		t.Fatalf("setup: the refresh did not time out (%d pending)", n)
	}
	failed, refused := hs.counter("modelcache_route.chat.background.failed"), hs.counter("modelcache_route.chat.background.refused")
	byStatus := hs.counter("modelcache_route.chat.refused_status.504")
	if failed != 1 || refused != 0 || byStatus != 0 {
		t.Errorf("a refresh that timed out: background.failed=%d refused=%d, refused_status.504=%d; want failed=1, refused=0, no 504 refusal (the model sent none)",
			failed, refused, byStatus)
	}
}
