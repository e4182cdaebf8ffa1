//go:build !wasip1

package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/cachecore"
)

// RATIONALE "The tick runs at tick_period only while a VM needs it" and
// "Only a VM still watching for stalls times its held requests: once a body
// has arrived while headers were held ... nothing is watched". A request
// whose headers were held (and listed for the tick) before another
// request's body proved that the proxy delivers bodies stays on the
// holding list: the tick no longer looks at it (checkHeld runs only while
// watching), yet tickNeeded counts it, so the VM ticks at tick_period (10
// times the idle rate) for as long as that slow client keeps its request
// open. A request held after the proof is never listed: only the order of
// two requests decides whether the VM burns its ticks.
func TestHeldRequestUnwatchedDoesNotKeepTheTickFast(t *testing.T) {
	for _, tc := range []struct {
		name       string
		tickPeriod string
		held, idle time.Duration
	}{
		{"default tick_period", "", cachecore.DefaultTickPeriod, cachecore.IdleTickPeriod},
		// tick_period above the hold grace: the VM ticks at the grace
		// (250 ms) for a request it no longer times, 8 times as configured.
		{"tick_period 2s", `"tick_period": "2s",`, cachecore.HoldGrace, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := strings.Replace(coalesceConfig, `"upstream_cluster": "model",`, `"upstream_cluster": "model",`+tc.tickPeriod, 1)
			hs := newHarness(t, cfg, withWorkers(1))
			slow := chatRequest("slow client")
			slow.Streaming = true // headers only: the body never comes
			exSlow := hs.h.StartExchange(0, slow)
			hs.h.Drain()
			if exSlow.Done() || exSlow.UpstreamContacted() {
				t.Fatalf("slow request not held: %s", exSlow.State())
			}
			if got := hs.h.TickPeriod(0); got != tc.held {
				t.Fatalf("holding a request: tick period %v, want %v", got, tc.held)
			}
			// Another request's body arrives while its headers are held:
			// the proxy delivers bodies, nothing is watched from now on.
			res := hs.post(0, "/v1/chat/completions", chatBody("prompt client"))
			if res.Status != 200 {
				t.Fatalf("status %d", res.Status)
			}
			for i := 0; i < 5; i++ {
				hs.h.AdvanceAndTick(tc.idle)
				hs.h.Drain()
			}
			if exSlow.Done() {
				t.Fatalf("slow request let go: %s", exSlow.State())
			}
			if got := hs.h.TickPeriod(0); got != tc.idle {
				t.Fatalf("nothing watched, no follower: tick period %v, want the idle %v (a held request the tick no longer looks at keeps the VM ticking %d times as often)",
					got, tc.idle, int(tc.idle/got))
			}
		})
	}
}

// README (coalescing): "A leader keeps the key as long as it is alive and
// its answer pending, however long that takes (a completion past
// max_wait, streamed or not): its VM's tick renews its lease. Only a
// leader that is gone (its VM failed) loses the key". The configuration
// accepts tick_period up to a route's max_wait, but KeepLease renews a
// lease only once half of max_wait is left: with tick_period above
// max_wait/2 a tick can come with more than half left and the next one
// only after the lease ended. Here (tick_period = max_wait = 2s) a leader
// that joined 0.5 s before its VM's tick is not renewed at that tick and
// its lease lapses 1.5 s later, half a second before the next one: a
// request that comes meanwhile takes the live, pending leader for a dead
// one and leads, and the model is asked twice for one key.
func TestLiveLeaderKeepsItsLeaseWhateverTheTickPeriod(t *testing.T) {
	cfg := `{"upstream_cluster": "model", "tick_period": "2s",
  "routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s",
     "coalesce": {"max_wait": "2s", "max_retries": 2, "hit_for_miss": "30s"}}]}`
	hs := newHarness(t, cfg, withWorkers(2))
	hs.holdUpstream()
	if got := hs.h.TickPeriod(0); got != 2*time.Second {
		t.Fatalf("tick period %v, want 2s", got)
	}
	hs.h.AdvanceAndTick(1500 * time.Millisecond) // half a second before the VMs' tick
	leader := hs.h.StartExchange(0, chatRequest("one long answer"))
	hs.h.Drain()
	if n := len(hs.h.PendingUpstream()); n != 1 {
		t.Fatalf("%d upstream requests for the leader", n)
	}
	// The leader is alive and its answer pending throughout: its VM ticks
	// at 2 s and 4 s.
	hs.h.AdvanceAndTick(2200 * time.Millisecond) // now 3.7 s: lease taken at 1.5 s for 2 s
	later := hs.h.StartExchange(1, chatRequest("one long answer"))
	hs.h.Drain()
	if n := len(hs.h.PendingUpstream()); n != 1 {
		t.Fatalf("%d upstream requests for one key while its leader is alive and pending (leader done %v): the lease of a live leader lapsed between its VM's ticks (tick_period 2s, max_wait 2s)",
			n, leader.Done())
	}
	hs.answer(hs.onlyUpstream())
	hs.h.Drain()
	if !later.Done() {
		t.Fatalf("later request not answered with the leader's answer: %s", later.State())
	}
	expectCacheStatus(t, later.Response(), "collapsed")
}

// README: "Nobody waits longer than coalesce.max_wait", and tick_period
// "above a route's coalesce.max_wait ... is a config error (followers
// would wait a whole tick_period)". At tick_period = max_wait (accepted),
// a follower that starts waiting just after its VM's tick is first checked
// one period later, with a little less than max_wait waited, and gives up
// only at the tick after that: it waits almost twice max_wait, as the
// refused configurations did (TestFollowersGiveUpAtMaxWaitWhateverTheTickPeriod
// holds those to twice max_wait). The VM's timer is not re-armed for it
// either: tick_period is also the idle period. The follower joins at each
// phase of the 2 s tick (100 ms apart); each must give up by 2.5 s (it
// waited up to 4 s).
func TestFollowerGivesUpAtMaxWaitWhenTickPeriodIsMaxWait(t *testing.T) {
	cfg := `{"upstream_cluster": "model", "tick_period": "2s",
  "routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s",
     "coalesce": {"max_wait": "2s", "max_retries": 2, "hit_for_miss": "30s"}}]}`
	var late []string
	for phase := time.Duration(0); phase < 2*time.Second; phase += 100 * time.Millisecond {
		hs := newHarness(t, cfg, withWorkers(1))
		// A first request shows the VM that bodies reach it while its
		// headers are held: later requests are not timed for the hold
		// grace (whose 250 ms ticks would re-check the follower early).
		if res := hs.post(0, "/v1/chat/completions", chatBody("warm")); res.Status != 200 {
			t.Fatalf("status %d", res.Status)
		}
		hs.holdUpstream()
		hs.h.AdvanceAndTick(2*time.Second + phase)
		startMany(hs, 2, "slow leader") // a leader and its follower
		if n := len(hs.h.PendingUpstream()); n != 1 {
			t.Fatalf("phase %v: %d upstream requests before max_wait, want 1 (single flight)", phase, n)
		}
		waited := time.Duration(0)
		for len(hs.h.PendingUpstream()) < 2 && waited < 5*time.Second {
			hs.h.AdvanceAndTick(100 * time.Millisecond)
			waited += 100 * time.Millisecond
		}
		if waited > 2500*time.Millisecond {
			late = append(late, fmt.Sprintf("joined at %v: waited %v", 2*time.Second+phase, waited))
		}
	}
	if len(late) > 0 {
		t.Fatalf("followers of a 2s max_wait waited past 2.5s (tick_period 2s): %s", strings.Join(late, "; "))
	}
}
