//go:build !wasip1

package main

import (
	"testing"
	"time"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/wasmhost"
)

// plugin.go tickFast: "Armed faster for a held request, it is not slowed
// down until nothing needs it." A VM with an L2 always needs ticks
// (tickNeeded), so once a request was held for its body the VM ticks at
// HoldGrace for good, not at tick_period: with tick_period 2s that is
// eight ticks where one is configured, with nothing held. Once the held
// request is let go (or ends) the tick goes back to tick_period.
func TestTickBackToTickPeriodOnceNothingIsHeld(t *testing.T) {
	cases := []struct {
		name   string
		config string
	}{
		{
			name: "with an L2",
			config: `{"upstream_cluster": "model", "tick_period": "2s", "l2": {"cluster": "webdis", "timeout": "1s"},
  "routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s"}]}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := &l2Webdis{kv: map[string]string{}}
			hs := newHarness(t, tc.config, withWorkers(1), func(_ *harness, c *wasmhost.Config) {
				c.Clusters = append(c.Clusters, "webdis")
				c.HTTPCall = w.call
				c.AllowOnHeadersStopIteration = false
			})
			hs.h.TickAll()
			if got := hs.h.TickPeriod(0); got != 2*time.Second {
				t.Fatalf("before any request: tick period %v, want 2s", got)
			}
			ex := hs.h.StartExchange(0, chatRequest("held"))
			hs.h.Drain()
			if ex.Done() || ex.UpstreamContacted() {
				t.Fatalf("not held (done %v, upstream %v)", ex.Done(), ex.UpstreamContacted())
			}
			if got := hs.h.TickPeriod(0); got != cachecore.HoldGrace {
				t.Fatalf("holding a request: tick period %v, want %v", got, cachecore.HoldGrace)
			}
			for i := 0; i < 4 && !ex.Done(); i++ {
				hs.h.AdvanceAndTick(cachecore.HoldGrace + 10*time.Millisecond)
				hs.h.Drain()
				w.mu.Lock()
				held := w.held
				w.held = nil
				w.mu.Unlock()
				for _, c := range held {
					path := ""
					for _, h := range c.Headers {
						if h[0] == ":path" {
							path = h[1]
						}
					}
					c.Respond(200, nil, []byte(w.do(path, c.Body)))
				}
				hs.h.Drain()
				for _, u := range hs.h.PendingUpstream() {
					hs.answer(u)
				}
				hs.h.Drain()
			}
			if !ex.Done() {
				t.Fatalf("held request not done: %s", ex.State())
			}
			hs.h.AdvanceAndTick(3 * time.Second)
			hs.h.Drain()
			if got := hs.h.TickPeriod(0); got != 2*time.Second {
				t.Fatalf("nothing held any more: tick period %v, want tick_period 2s (the VM ticks %v times as often as configured, for good)",
					got, int(2*time.Second/got))
			}
		})
	}
}
