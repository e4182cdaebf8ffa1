package cachecore

import (
	"testing"
	"time"
)

// Review Z221: single flight and the lease across ticks, reloads and VM
// replacement.

// coalesceEnv is protoEnv over a configuration of the test's own.
func coalesceEnv(t *testing.T, cfg string) *protoEnv {
	t.Helper()
	store, clock := NewMemStore(), newFakeClock()
	e := &protoEnv{t: t, clock: clock}
	for i := range e.w {
		e.w[i] = New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(uint64(i))})
	}
	return e
}

// README ("Single flight across all workers"): "A leader keeps the key as
// long as it is alive and its answer pending, however long that takes ...:
// its VM's tick renews its lease"; RATIONALE: "a lease expires only under a
// leader that is gone". Where tick_period is at least half of max_wait, a
// lease is taken for two tick_periods (leaseLife) and renewed only once at
// most one tick_period of it is left (keepLocalLease: leaseEnd-now <=
// wait/2): the window in which a tick can renew it is exactly one
// tick_period wide. Envoy re-arms a root context's tick timer after each
// onTick returns, so ticks come a little more than tick_period apart. A
// request that starts to lead on a VM already ticking (an L2 configured,
// another leader, a held request) just after a tick sees its first tick
// come before the window opens and its second one past its deadline:
// Extend finds the lease dead, the leader is "lost for good" and keeps
// no lease while its model still works, and the next identical request
// leads a second model call. Expected: a live leader's lease never lapses
// between two of its VM's ticks, however late each comes by a few ms.
func TestLeaseOfTwoTickPeriodsLapsesUnderALiveLeaderWhenTicksComeLate(t *testing.T) {
	for _, c := range []struct{ tick, wait string }{{"1s", "1s"}, {"1s", "2s"}, {"2s", "4s"}} {
		t.Run("tick_period "+c.tick+" max_wait "+c.wait, func(t *testing.T) {
			e := coalesceEnv(t, `{"upstream_cluster":"model","tick_period":"`+c.tick+`","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
  "ttl":"1h","coalesce":{"enabled":true,"max_wait":"`+c.wait+`"}}]}`)
			period, _ := time.ParseDuration(c.tick)
			const late = 2 * time.Millisecond // each tick comes 2 ms after its period (the timer is re-armed after onTick)
			// Worker 0 ticked just now; a request starts to lead 3 ms later.
			e.clock.Advance(3 * time.Millisecond)
			a, got := e.start(0, 1, "a slow completion")
			expectActs(t, "A miss", got, "coalesce.leaders forward")
			// Worker 0's next two ticks, each 2 ms late; A's model is still working.
			for i := 0; i < 2; i++ {
				if i == 0 {
					e.clock.Advance(period + late - 3*time.Millisecond)
				} else {
					e.clock.Advance(period + late)
				}
				e.show(a.KeepLease())
			}
			e.clock.Advance(50 * time.Millisecond)
			// An identical request on worker 1, while A is alive and upstream.
			_, got = e.start(1, 2, "a slow completion")
			if got != "coalesce.followers wait" {
				t.Fatalf("a request 2 tick_periods after a live leader started, its VM ticking every %v + 2 ms: %q, want it to follow the leader (one model call per key); the leader's lease lapsed between two of its ticks", period, got)
			}
		})
	}
}
