//go:build !wasip1

package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/wasmhost"
)

// An idle VM wakes once a second (the stale-serving window, the runtime's
// counters); a VM with a paused follower ticks every tick_period from the
// moment it has one, and goes back to idle on the first tick with none.
func TestTickFastOnlyWhileFollowersWait(t *testing.T) {
	hs := newHarness(t, coalesceConfig, withWorkers(2))
	for _, vm := range []int{wasmhost.MainVM, 0, 1} {
		if got := hs.h.TickPeriod(vm); got != cachecore.IdleTickPeriod {
			t.Fatalf("VM %d: idle tick period %v, want %v", vm, got, cachecore.IdleTickPeriod)
		}
	}
	hs.holdUpstream()
	exs := startMany(hs, 4, "tick") // a leader and a follower on worker 0, two followers on 1
	for _, vm := range []int{0, 1} {
		if got := hs.h.TickPeriod(vm); got != cachecore.DefaultTickPeriod {
			t.Fatalf("worker %d with a paused follower: tick period %v, want %v", vm, got, cachecore.DefaultTickPeriod)
		}
	}
	if got := hs.h.TickPeriod(wasmhost.MainVM); got != cachecore.IdleTickPeriod {
		t.Fatalf("main thread: tick period %v, want %v", got, cachecore.IdleTickPeriod)
	}
	// A lost wake-up still costs one tick_period, not an idle period.
	for _, k := range hs.h.SharedDataKeys() {
		if len(k) > 5 && k[:5] == "mc:l:" {
			hs.h.SetSharedData(k, nil, 0)
		}
	}
	hs.h.AdvanceAndTick(cachecore.DefaultTickPeriod + 10*time.Millisecond)
	if n := len(hs.h.PendingUpstream()); n != 2 {
		t.Fatalf("%d upstream requests one tick_period after the lease vanished, want 2", n)
	}
	for len(hs.h.PendingUpstream()) > 0 {
		for _, u := range hs.h.PendingUpstream() {
			hs.answer(u)
		}
		hs.h.Drain()
	}
	for i, ex := range exs {
		if !ex.Done() {
			t.Fatalf("exchange %d: %s", i, ex.State())
		}
	}
	hs.h.TickAll()
	for _, vm := range []int{0, 1} {
		if got := hs.h.TickPeriod(vm); got != cachecore.IdleTickPeriod {
			t.Fatalf("worker %d after its followers left: tick period %v, want %v", vm, got, cachecore.IdleTickPeriod)
		}
	}
}

// A request held for a body that never comes is let go one tick_period
// after its grace, even in a VM that was idle.
func TestTickFastWhileRequestHeld(t *testing.T) {
	hs := newHarness(t, coalesceConfig, withWorkers(1), func(_ *harness, c *wasmhost.Config) {
		c.AllowOnHeadersStopIteration = false
	})
	ex := hs.h.StartExchange(0, chatRequest("held"))
	hs.h.Drain()
	if ex.Done() {
		t.Fatal("not held")
	}
	if got := hs.h.TickPeriod(0); got != cachecore.DefaultTickPeriod {
		t.Fatalf("worker holding a request: tick period %v, want %v", got, cachecore.DefaultTickPeriod)
	}
	hs.h.AdvanceAndTick(cachecore.HoldGrace + cachecore.DefaultTickPeriod + 10*time.Millisecond)
	hs.h.Drain()
	if !ex.Done() {
		t.Fatal("still held a tick_period after the grace period")
	}
}

// With an L2 the tick also reads the mesh's purge log every
// l2.sync_interval: the VM never slows down.
func TestTickNeverIdleWithL2(t *testing.T) {
	cfg := `{"upstream_cluster": "model", "l2": {"cluster": "webdis", "timeout": "1s"},
  "routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s"}]}`
	w := &l2Webdis{kv: map[string]string{}}
	hs := newHarness(t, cfg, withWorkers(1), func(_ *harness, c *wasmhost.Config) {
		c.Clusters = append(c.Clusters, "webdis")
		c.HTTPCall = w.call
	})
	hs.h.TickAll()
	for _, vm := range []int{wasmhost.MainVM, 0} {
		if got := hs.h.TickPeriod(vm); got != cachecore.DefaultTickPeriod {
			t.Fatalf("VM %d with an L2: tick period %v, want %v", vm, got, cachecore.DefaultTickPeriod)
		}
	}
}

// With tick_period at or above the idle period the two are one: a
// follower joining does not re-arm the timer (which would push the next
// tick, and the VM's flushes, up to a period later).
func TestLongTickPeriodNotRearmed(t *testing.T) {
	cfg := strings.Replace(coalesceConfig, `"upstream_cluster": "model",`, `"upstream_cluster": "model", "tick_period": "2s",`, 1)
	hs := newHarness(t, cfg, withWorkers(1))
	hs.holdUpstream()
	hs.h.AdvanceAndTick(1500 * time.Millisecond)
	startMany(hs, 2, "long tick") // a leader and a follower, 1.5 s into the period
	hs.h.AdvanceAndTick(600 * time.Millisecond)
	if g, _ := hs.h.Gauge("modelcache.coalesce_waiting"); g != 1 {
		t.Fatalf("waiting gauge %d 2.1 s after start: the tick due at 2 s did not run", g)
	}
}

// An idle tick that comes a little early by the wall clock (the proxy's
// timers run on a coarser clock) still flushes the stale-serving window:
// it is not put off to the next tick, a second later.
func TestIdleTickFlushesSLOWhenSlightlyEarly(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "freshness_slo":{"max_age":"10s","max_fraction":0.05,"window":"1m","min_samples":10}}]}`
	hs := newHarness(t, cfg, withWorkers(1))
	for i := 0; i < 20; i++ {
		hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("early ", i%2)))
	}
	hs.clock.Advance(20 * time.Second) // every later hit is stale
	hs.h.TickAll()                     // the window's first flush
	for i := 0; i < 20; i++ {
		hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("early ", i%2)))
	}
	hs.clock.Advance(cachecore.IdleTickPeriod - 20*time.Millisecond)
	hs.h.TickAll()
	if got := hs.counter("modelcache_route.chat.slo.breaches"); got != 1 {
		t.Fatalf("breaches = %d after an idle tick 20 ms early, want 1", got)
	}
}

// coalesce_waiting is one gauge for all of a proxy's VMs, as Envoy keeps a
// metric of one name: it counts the followers paused in every VM. Each VM
// set it to its own count on its tick, so it showed whichever VM ticked
// last (a quarter of them here).
func TestWaitingGaugeSumsTheVMs(t *testing.T) {
	hs := newHarness(t, coalesceConfig, withWorkers(4))
	hs.holdUpstream()
	startMany(hs, 40, "waiting in every VM") // a leader, 39 followers
	hs.h.AdvanceAndTick(time.Second)
	if g, _ := hs.h.Gauge("modelcache.coalesce_waiting"); g != 39 {
		t.Fatalf("coalesce_waiting %d with 39 followers paused in 4 VMs", g)
	}
	hs.answer(hs.h.PendingUpstream()[0])
	hs.h.Drain()
	hs.h.AdvanceAndTick(time.Second)
	if g, _ := hs.h.Gauge("modelcache.coalesce_waiting"); g != 0 {
		t.Fatalf("coalesce_waiting %d once every follower was answered", g)
	}
}
