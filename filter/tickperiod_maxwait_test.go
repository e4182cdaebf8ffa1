//go:build !wasip1

package main

import (
	"testing"
	"time"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/wasmhost"
)

// README: "Nobody waits longer than coalesce.max_wait." A follower's
// max_wait is only checked on its VM's tick, and ParseConfig accepts any
// tick_period (up to 10 s) with any max_wait (down to 10 ms): with
// tick_period 5s and max_wait 500ms, followers of a leader whose model
// hangs wait five seconds, ten times what the operator configured. Either
// such a configuration is refused, or followers give up at max_wait.
func TestFollowersGiveUpAtMaxWaitWhateverTheTickPeriod(t *testing.T) {
	const config = `{
  "upstream_cluster": "model",
  "tick_period": "5s",
  "routes": [
    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s",
     "coalesce": {"max_wait": "500ms"}}
  ]
}`
	if _, err := cachecore.ParseConfig([]byte(config)); err != nil {
		return // refused at start: the operator is told
	}
	hs := newHarness(t, config)
	hs.holdUpstream()
	startMany(hs, 3, "slow leader")
	if n := len(hs.h.PendingUpstream()); n != 1 {
		t.Fatalf("%d upstream requests before max_wait, want 1 (single flight)", n)
	}
	hs.h.AdvanceAndTick(time.Second) // twice max_wait
	if n := len(hs.h.PendingUpstream()); n != 3 {
		t.Fatalf("%d upstream requests 1s into a 500ms max_wait, want 3: the followers still wait (%d timeouts), for the next 5s tick",
			n, hs.counter("modelcache_route.chat.coalesce.timeouts"))
	}
}

// The same for the hold grace (README, Istio): "a request held 250 ms
// without a body is let go and decided late ... The first requests of each
// worker therefore wait up to 250 ms once." Under a WasmPlugin (no
// allow_on_headers_stop_iteration) with tick_period 5s, each of them is
// held for the whole tick_period instead.
func TestHeldRequestLetGoAfterHoldGraceWhateverTheTickPeriod(t *testing.T) {
	const config = `{
  "upstream_cluster": "model",
  "tick_period": "5s",
  "routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s"}]
}`
	if _, err := cachecore.ParseConfig([]byte(config)); err != nil {
		return // refused at start: the operator is told
	}
	hs := newHarness(t, config, withWorkers(1), func(_ *harness, c *wasmhost.Config) {
		c.AllowOnHeadersStopIteration = false
	})
	ex := hs.h.StartExchange(0, chatRequest("held"))
	hs.h.Drain()
	if ex.Done() || ex.UpstreamContacted() {
		t.Fatalf("not held (done %v, upstream %v)", ex.Done(), ex.UpstreamContacted())
	}
	hs.h.AdvanceAndTick(cachecore.HoldGrace + 250*time.Millisecond) // twice the grace
	hs.h.Drain()
	if !ex.Done() && !ex.UpstreamContacted() {
		t.Fatalf("still held %v after the request's headers, HoldGrace is %v: let go only at the next 5s tick (late.rescued %d)",
			cachecore.HoldGrace+250*time.Millisecond, cachecore.HoldGrace, hs.counter("modelcache_route.chat.late.rescued"))
	}
}
