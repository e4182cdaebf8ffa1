//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Leaders whose upstream requests Envoy answered itself (the model's
// connection refused or reset: Envoy's 503, upstream_reset_*) pass their
// followers a failure the model never sent. The followers answered
// leader-failed keep Envoy's 503, as a client retries on it, but their
// Cache-Status must not name it the model's (fwd-status), as the leaders'
// own answers do not (review Z225; noticed and left then, as the wake-up
// did not say where a failure came from).
func TestLeaderFailedAfterEnvoysReplyNamesNoModelStatus(t *testing.T) {
	hs, exs, calls := streamlessBurst(t, func(u *wasmhost.UpstreamRequest) { u.Reset() })
	n := hs.counter("modelcache_route.chat.requests.leader_failed")
	failed := 0
	for i, ex := range exs {
		if !ex.Done() {
			t.Fatalf("exchange %d stuck: %s", i, ex.State())
		}
		r := ex.Response()
		cs := hdr(r, "cache-status")
		if !strings.Contains(cs, "detail=leader-failed") {
			continue
		}
		failed++
		if r.Status != 503 || strings.Contains(cs, "fwd-status") {
			t.Errorf("exchange %d: %d %q, want Envoy's 503 without a fwd-status: the model sent nothing (%d upstream calls)", i, r.Status, cs, calls)
		}
	}
	if failed == 0 || n != uint64(failed) {
		t.Fatalf("setup: %d leader-failed answers, counter %d (%d upstream calls)", failed, n, calls)
	}
}
