//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z53. A leader's lease release is one shared-data write. If it
// fails once (a transient host fault: proxy_set_shared_data returns an
// error), Release gives up at once and wakes no one, and the lease — no
// longer renewed, its leader gone from the VM's leading list — stays held
// until its deadline. README: "If the leader fails … one follower leads
// next"; "Only a leader that is gone (its VM failed) loses the key,
// within max_wait"; internal faults fail open. Here the leader is alive
// and failed with a 500: its followers must lead next within a tick or
// two, not sit out max_wait (10 s) behind a lease nobody holds.
func TestFailedLeaseReleaseIsTriedAgain(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, coalesceConfig, withWorkers(2), withFaults(f))
	hs.holdUpstream()
	exs := startMany(hs, 4, "release fails once")
	first := hs.h.PendingUpstream()
	if len(first) != 1 {
		t.Fatalf("%d upstream requests, want 1", len(first))
	}
	f.set(nthCall(1, wasmhost.StatusInternalFailure, func(c wasmhost.HostCall) bool {
		return c.Name == "proxy_set_shared_data" && strings.HasPrefix(c.Key, "mc:l:")
	}))
	first[0].Respond(500, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":{"message":"boom"}}`))
	hs.h.Drain()
	f.set(nil)
	if f.failed() != 1 {
		t.Fatalf("the lease write failed %d times, want once", f.failed())
	}
	// A few ticks (tick_period 100 ms): a lost wake-up costs at most one.
	for i := 0; i < 5; i++ {
		hs.h.AdvanceAndTick(100 * time.Millisecond)
	}
	live := 0
	for _, u := range hs.h.PendingUpstream() {
		if !u.Cancelled() {
			live++
		}
	}
	if live != 1 {
		// How long the key stays stranded: a new request meets the same
		// dead lease and waits too.
		late := hs.h.StartExchange(0, chatRequest("release fails once"))
		hs.h.Drain()
		stuck := time.Duration(0)
		for stuck < 15*time.Second && len(hs.h.PendingUpstream()) == 0 {
			hs.h.AdvanceAndTick(100 * time.Millisecond)
			stuck += 100 * time.Millisecond
		}
		t.Logf("the key went upstream again %v later (a new request, done=%v, waited as a follower)", stuck+500*time.Millisecond, late.Done())
		t.Fatalf("%d upstream requests 500 ms after the leader's 500 (its lease release failed once), want 1 (a promoted follower); waiting: %d",
			live, hs.counter("modelcache_route.chat.coalesce.followers"))
	}
	for _, u := range hs.h.PendingUpstream() {
		hs.answer(u)
	}
	hs.h.Drain()
	for i, ex := range exs[1:] {
		if !ex.Done() {
			t.Fatalf("follower %d: %s", i, ex.State())
		}
	}
}
