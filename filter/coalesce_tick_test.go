//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// A leader whose VM is gone (it never ticks again, so its lease is never
// renewed) loses its key when the lease expires. README: "Keys the dead VM
// was leading stay locked until the lease expires ...: requests for them
// ... wait that long, then lead." A follower that joined after the leader
// sees the lease expire within its own max_wait; it must then lead, not be
// answered "the upstream failed" (502 leader_failed) — the upstream never
// answered at all, let alone failed.
func TestFollowerOfALeaderWhoseLeaseExpiredLeadsCountingNoFailure(t *testing.T) {
	cfg := strings.Replace(coalesceConfig, `"max_retries": 2`, `"max_retries": 0`, 1)
	hs := newHarness(t, cfg, withWorkers(2))
	hs.holdUpstream()
	hs.h.StartExchange(0, chatRequest("gone leader")) // worker 0 leads, then its VM never runs again
	hs.h.Drain()
	if len(hs.h.PendingUpstream()) != 1 {
		t.Fatalf("setup: %d upstream", len(hs.h.PendingUpstream()))
	}
	hs.clock.Advance(2 * time.Second)
	follower := hs.h.StartExchange(1, chatRequest("gone leader"))
	hs.h.Drain()
	if follower.Done() || len(hs.h.PendingUpstream()) != 1 {
		t.Fatalf("setup: the second request does not follow")
	}
	// Only worker 1 ticks, every 100 ms, until 1 s past the leader's lease
	// (10 s after it led; the follower's own max_wait ends at 12 s).
	for i := 0; i < 90; i++ {
		hs.clock.Advance(100 * time.Millisecond)
		hs.h.Tick(1)
		hs.h.Drain()
		if follower.Done() {
			break
		}
	}
	if follower.Done() {
		r := follower.Response()
		t.Fatalf("follower of a gone leader answered %d %q, body %.120s (upstream calls made: %d; "+
			"coalesce.leader_failures=%d requests.leader_failed=%d)", r.Status, hdr(r, "cache-status"), r.Body,
			hs.upstream.Load(), hs.counter("modelcache_route.chat.coalesce.leader_failures"), hs.counter("modelcache_route.chat.requests.leader_failed"))
	}
	if n := len(hs.h.PendingUpstream()); n != 2 {
		t.Fatalf("%d upstream requests pending 1 s after the gone leader's lease expired, want 2 (the follower leads)", n)
	}
}

// A follower whose leader's answer may never be stored (no-store) goes
// upstream (README: "everybody goes upstream at once and the key skips
// coalescing"). If the leader's wake-up is lost (here: its enqueue fails),
// the follower's tick must recover that (README: "a lost wake-up costs at
// most [tick_period] (or twice this for a follower whose max_retries are
// used up)") — by going upstream, not by answering 502 leader_failed ("the
// upstream failed") for a model that answered 200.
func TestFollowerWhoseWakeUpIsLostAfterANoStoreAnswerGoesUpstream(t *testing.T) {
	cfg := strings.Replace(coalesceConfig, `"max_retries": 2`, `"max_retries": 0`, 1)
	var faults faultPlan
	hs := newHarness(t, cfg, withWorkers(2), withFaults(&faults))
	hs.holdUpstream()
	leader := hs.h.StartExchange(0, chatRequest("no-store, wake-up lost"))
	hs.h.Drain()
	follower := hs.h.StartExchange(1, chatRequest("no-store, wake-up lost"))
	hs.h.Drain()
	pending := hs.h.PendingUpstream()
	if len(pending) != 1 || follower.Done() {
		t.Fatalf("setup: %d upstream, follower done %v", len(pending), follower.Done())
	}
	faults.set(func(c wasmhost.HostCall) (wasmhost.Status, bool) {
		return wasmhost.StatusBadArgument, c.Name == "proxy_enqueue_shared_queue"
	})
	pending[0].Respond(200, [][2]string{{"content-type", "application/json"}, {"cache-control", "no-store"}},
		[]byte(`{"choices":[{"message":{"content":"x"},"finish_reason":"stop"}]}`))
	hs.h.Drain()
	faults.set(nil)
	if !leader.Done() || leader.Response().Status != 200 || faults.failed() == 0 {
		t.Fatalf("setup: leader %s, enqueues failed %d", leader.State(), faults.failed())
	}
	for i := 0; i < 5 && !follower.Done() && len(hs.h.PendingUpstream()) == 0; i++ {
		hs.h.AdvanceAndTick(100 * time.Millisecond)
	}
	if follower.Done() {
		r := follower.Response()
		t.Fatalf("follower of a leader whose answer was 200 no-store (wake-up lost): %d %q, body %.100s",
			r.Status, hdr(r, "cache-status"), r.Body)
	}
	if n := len(hs.h.PendingUpstream()); n != 1 {
		t.Fatalf("%d upstream requests after the ticks, want the follower's", n)
	}
}

// Review Z10 (stop 72) showed a mend of review Z8 wrong: a follower's tick
// kept the deadline of the lease it last saw held and took a lease found
// free past it for a lapsed one (no failure). But a live leader extends its
// lease (KeepLease) on its own VM's tick, which another worker's follower
// need not see before the leader ends: a leader that extended just before
// the deadline the follower saw, then failed (503) just after it, with its
// wake-up lost, was taken for a gone leader, and the follower made a second
// upstream call that max_retries 0 forbids. The mend is reverted (RATIONALE:
// a free lease cannot say which it was). With on_retries_exhausted "fail"
// the follower answers the failure (README: a lost wake-up costs at most
// twice tick_period for a follower whose max_retries are used up).
func TestFollowerOfALeaderThatExtendedItsLeaseThenFailedCountsTheFailure(t *testing.T) {
	cfg := strings.Replace(coalesceConfig, `"max_retries": 2`, `"max_retries": 0`, 1)
	var faults faultPlan
	hs := newHarness(t, cfg, withWorkers(2), withFaults(&faults))
	hs.holdUpstream()
	leader := hs.h.StartExchange(0, chatRequest("extended then failed")) // lease until 10 s
	hs.h.Drain()
	if len(hs.h.PendingUpstream()) != 1 {
		t.Fatalf("setup: %d upstream", len(hs.h.PendingUpstream()))
	}
	hs.clock.Advance(2 * time.Second)
	follower := hs.h.StartExchange(1, chatRequest("extended then failed"))
	hs.h.Drain()
	if follower.Done() || len(hs.h.PendingUpstream()) != 1 {
		t.Fatalf("setup: the second request does not follow")
	}
	// The follower's worker ticks every 100 ms up to 9.9 s: it sees the
	// lease held until 10 s.
	for i := 0; i < 79; i++ {
		hs.clock.Advance(100 * time.Millisecond)
		hs.h.Tick(1)
		hs.h.Drain()
		if follower.Done() {
			t.Fatalf("setup: follower done early: %d", follower.Response().Status)
		}
	}
	// The leader's VM ticks at 9.95 s: alive, it extends its lease to 19.95 s.
	hs.clock.Advance(50 * time.Millisecond)
	hs.h.Tick(0)
	hs.h.Drain()
	// At 10.0 s its upstream answers 503; its wake-up is lost.
	hs.clock.Advance(50 * time.Millisecond)
	faults.set(func(c wasmhost.HostCall) (wasmhost.Status, bool) {
		return wasmhost.StatusBadArgument, c.Name == "proxy_enqueue_shared_queue"
	})
	hs.onlyUpstream().Respond(503, [][2]string{{"content-type", "application/json"}},
		[]byte(`{"error":{"message":"overloaded"}}`))
	hs.h.Drain()
	faults.set(nil)
	if !leader.Done() || leader.Response().Status != 503 || faults.failed() == 0 {
		t.Fatalf("setup: leader %s, enqueues failed %d", leader.State(), faults.failed())
	}
	for i := 0; i < 3 && !follower.Done() && len(hs.h.PendingUpstream()) == 0; i++ {
		hs.clock.Advance(100 * time.Millisecond)
		hs.h.Tick(1)
		hs.h.Drain()
	}
	if n := len(hs.h.PendingUpstream()); n != 0 {
		t.Fatalf("the follower of a leader that failed (503) went upstream itself (%d upstream pending), "+
			"though max_retries is 0 (coalesce.leader_failures=%d requests.leader_failed=%d)",
			n, hs.counter("modelcache_route.chat.coalesce.leader_failures"), hs.counter("modelcache_route.chat.requests.leader_failed"))
	}
	// Its wake-up lost, the leader's status is unknown: 502 leader-failed.
	if !follower.Done() || follower.Response().Status != 502 || hs.counter("modelcache_route.chat.requests.leader_failed") != 1 {
		t.Fatalf("follower: done %v, want answered 502 leader-failed", follower.Done())
	}
}
