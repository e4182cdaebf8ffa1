//go:build !wasip1

package main

import (
	"testing"
	"time"
)

// README (Stampedes): "A leader keeps the key as long as it is alive and
// its answer pending, however long that takes ...: its VM's tick renews
// its lease", and tick_period: "above a quarter of the shortest max_wait
// ... a leader's lease is kept for two tick_periods". tick_period equal to
// max_wait is accepted (only above it is refused). But the lease a leader
// takes (Cache.Join) lasts max_wait only, not two tick_periods: when the
// leader's VM arms its faster tick for the lead (idle period 1 s, fast
// 500 ms), the first tick comes exactly max_wait later, when the lease has
// just ended; Extend finds it dead and the leader counts it lost for good.
// A request that comes after that takes the live, pending leader's key
// and goes upstream a second time. Expected: it follows the live leader
// and is answered collapsed.
func TestLeaderLeaseLapsesAtItsFirstTickWhenTickPeriodIsMaxWait(t *testing.T) {
	cfg := `{"upstream_cluster": "model", "tick_period": "500ms",
  "routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s",
     "coalesce": {"max_wait": "500ms", "max_retries": 2, "hit_for_miss": "30s"}}]}`
	hs := newHarness(t, cfg, withWorkers(2))
	// A first request proves the proxy delivers bodies to held headers
	// (the VM stops ticking at the hold grace), then the VMs idle.
	if res := hs.post(0, "/v1/chat/completions", chatBody("warm-up")); res.Status != 200 {
		t.Fatalf("warm-up: %d", res.Status)
	}
	hs.h.AdvanceAndTick(3 * time.Second)
	if got := hs.h.TickPeriod(0); got != time.Second {
		t.Fatalf("idle tick period %v, want 1s", got)
	}
	hs.holdUpstream()
	leader := hs.h.StartExchange(0, chatRequest("one long answer"))
	hs.h.Drain()
	if n := len(hs.h.PendingUpstream()); n != 1 {
		t.Fatalf("%d upstream requests for the leader", n)
	}
	if got := hs.h.TickPeriod(0); got != 500*time.Millisecond {
		t.Fatalf("leader's VM tick period %v, want 500ms", got)
	}
	// The leader stays alive and pending; its VM ticks at 500 ms.
	hs.h.AdvanceAndTick(600 * time.Millisecond)
	later := hs.h.StartExchange(1, chatRequest("one long answer"))
	hs.h.Drain()
	if n := len(hs.h.PendingUpstream()); n != 1 {
		t.Fatalf("%d upstream requests for one key while its leader is alive and pending (leader done %v): the live leader's lease lapsed at its VM's first tick (tick_period = max_wait = 500ms)",
			n, leader.Done())
	}
	hs.answer(hs.onlyUpstream())
	hs.h.Drain()
	if !later.Done() {
		t.Fatalf("later request not answered: %s", later.State())
	}
	expectCacheStatus(t, later.Response(), "collapsed")
}
