package cachecore

import (
	"strings"
	"testing"
	"time"
)

// README (Cross-proxy single flight): the leaders of other proxies that
// find the key leased "poll L2 on the VM's tick with a backoff ..., bounded
// by coalesce.max_wait (past that a waiting proxy's leader calls the model
// itself, as a local follower does)". A local follower's max_wait counts
// from when it started to wait, whatever leader it follows next. A leader
// waiting on another proxy that finds the lease free, then loses the race
// for it to a third leader (here A's next request), starts a new wait of
// max_wait: behind a model that fails slowly on every proxy in turn, its
// client waits max_wait once per leader, not max_wait.
func TestL2WaitOnAnotherProxyIsBoundedFromItsStart(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failedAt time.Duration // after B started to wait, A's first leader fails
		pollAt   time.Duration // B finds the lease free, and loses it to A's next leader
	}{
		{"lease lost again just before max_wait", 4 * time.Second, 4500 * time.Millisecond},
		{"lease lost again midway", 2 * time.Second, 2500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newL2Mesh(t, "")
			a1, got := m.begin(0, 1, "q")
			if got != "coalesce.leaders l2.miss l2.lease_won forward" {
				t.Fatalf("A1: %q", got)
			}
			b, got := m.begin(1, 1, "q")
			if got != "coalesce.leaders l2.miss l2.lease_lost wait" {
				t.Fatalf("B: %q", got)
			}
			maxWait := b.Request().Route.Coalesce.MaxWait
			m.clock.Advance(tc.failedAt)
			m.answer(a1, 503, "overloaded") // A1 fails: its lease is released
			m.clock.Advance(tc.pollAt - tc.failedAt)
			var poll *Call
			for _, a := range b.Tick() {
				if a.Kind == ActDispatch {
					poll = a.Call
				}
			}
			if poll == nil {
				t.Fatal("B did not poll")
			}
			leaseActs := poll.Done(m.wd.do(poll)) // the lease is free: B asks for it (not carried out yet)
			if _, got := m.begin(0, 2, "q"); got != "coalesce.leaders l2.miss l2.lease_won forward" {
				t.Fatalf("A2: %q", got) // A's next request takes it first
			}
			if got, _ := m.step(leaseActs); got != "l2.lease_lost wait" {
				t.Fatalf("B's lease call: %q", got)
			}
			// max_wait after B started to wait, B calls the model itself.
			var waited time.Duration = tc.pollAt
			for waited < 3*maxWait {
				m.clock.Advance(100 * time.Millisecond)
				waited += 100 * time.Millisecond
				if got, _ := m.step(b.Tick()); strings.Contains(got, "forward") || strings.Contains(got, "serve") {
					break
				}
			}
			if waited > maxWait {
				t.Fatalf("B waited %v on other proxies' leaders before calling the model itself; coalesce.max_wait is %v", waited, maxWait)
			}
		})
	}
}
