//go:build !wasip1

package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// A leader whose stream callback panicked is failed open: its request goes
// on upstream, its answer reaches its client, but the cache never hears of
// its end. The followers waiting on it must not pay for the panic with a
// whole coalesce.max_wait (30 s here): the leader's answer came and went at
// once, so a follower should lead next (as after a leader whose client left)
// within a few ticks, not sit paused until the lease expires.
func TestBrokenLeaderFollowersWaitNotMaxWait(t *testing.T) {
	hs := crashHarness(t)
	hs.holdUpstream()
	req := chatRequest("a leader that panics, a follower behind it")
	broken := req
	broken.Headers = append(append([][2]string(nil), req.Headers...), [2]string{"x-modelcache-crash", "panic-on-response"})
	leader, u := hs.lead(broken)
	follower := hs.h.StartExchange(1, req)
	hs.h.Drain()
	hs.h.AdvanceAndTick(100 * time.Millisecond)
	if follower.Done() || len(hs.h.PendingUpstream()) != 1 {
		t.Fatalf("setup: the second request does not follow (done %v, %d upstream)", follower.Done(), len(hs.h.PendingUpstream()))
	}
	hs.answer(u) // the leader's response headers callback panics
	hs.h.Drain()
	if !leader.Done() || hs.counter("modelcache.panics") != 1 {
		t.Fatalf("setup: leader done %v, panics %d", leader.Done(), hs.counter("modelcache.panics"))
	}
	// Five seconds of ticks after the leader's request has ended.
	for i := 0; i < 50; i++ {
		hs.h.AdvanceAndTick(100 * time.Millisecond)
	}
	if len(hs.h.PendingUpstream()) == 0 && !follower.Done() {
		t.Fatalf("5 s after its leader's request ended (failed open by a panic), the follower still waits "+
			"(it waits for coalesce.max_wait, 30 s): coalesce_waiting %s", strings.TrimSpace(gaugeStr(hs, "modelcache.coalesce_waiting")))
	}
}

func gaugeStr(hs *harness, name string) string {
	g, _ := hs.h.Gauge(name)
	return strconv.FormatInt(g, 10)
}
