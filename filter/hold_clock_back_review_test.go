//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z95. A request let go for want of a body is a stall only if its
// body comes within HoldResumeWindow of the let-go (plugin.stalled); a
// slow client's body, seconds later, is not. The delay is read on the
// wall clock: when NTP steps it back while the bodies are pending, the
// difference is negative, below the window, and three slow clients on a
// proxy that holds make a fresh VM under "hold" give up holding (every
// request passes uncached for a minute, the warning says to fix a config
// that is right).
func TestSlowBodiesAcrossAWallClockStepBackAreNotStalls(t *testing.T) {
	cfg := strings.Replace(coalesceConfig, `"upstream_cluster": "model",`, `"upstream_cluster": "model", "header_hold": "hold",`, 1)
	hs := newHarness(t, cfg, withWorkers(1)) // AllowOnHeadersStopIteration: true
	var exs []*wasmhost.Exchange
	var bodies [][]byte
	for i := 0; i < cachecore.HoldStallsToGiveUp; i++ {
		req := chatRequest("slow client " + string(rune('a'+i)))
		bodies = append(bodies, req.Body)
		req.Streaming = true // headers now, the body later
		exs = append(exs, hs.h.StartExchange(0, req))
		hs.h.Drain()
	}
	hs.h.AdvanceAndTick(cachecore.HoldGrace + 50*time.Millisecond) // all three let go
	hs.h.Drain()
	hs.h.AdvanceAndTick(5 * time.Second)         // the slow clients take 5 s more
	hs.clock.Set(hs.clock.Now().Add(-time.Hour)) // NTP step; monotonic time stays
	for i, ex := range exs {
		ex.SendBody(bodies[i], true)
		hs.h.Drain()
	}
	if n := hs.counter("modelcache.hold_unsupported"); n != 0 {
		t.Fatalf("hold_unsupported %d: three bodies that came 5 s after their let-go were taken for a proxy that cannot hold "+
			"because the wall clock stepped back meanwhile", n)
	}
	ask := func() string {
		return hdr(hs.post(0, "/v1/chat/completions", chatBody("alice asks"), "authorization", "Bearer alice"), "cache-status")
	}
	ask()
	if cs := ask(); !strings.Contains(cs, "hit") {
		t.Fatalf("alice's repeat is %q, want a hit", cs)
	}
}
