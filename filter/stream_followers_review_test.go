//go:build !wasip1

package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

func sseEv(s string) []byte { return []byte("data: " + s + "\n\n") }

// A follower that waited max_wait behind a slow streaming leader goes
// upstream without looking in L1 again, even though another follower of
// the same leader, which timed out earlier and went upstream itself, has
// stored the very answer meanwhile: a request that arrived at the same
// moment is a plain hit, while the follower that waited longest makes one
// more upstream call for an answer this proxy holds. Expected: at its
// max_wait the follower looks in the cache once more (as it looks in L2,
// review Z165) and is served the stored stream, with no further upstream
// call.
func TestStreamFollowerPastMaxWaitIgnoresAnswerStoredMeanwhile(t *testing.T) {
	hs := newHarness(t, coalesceConfig) // max_wait 10s
	hs.holdUpstream()
	req := longStory()
	leader, u := hs.lead(req)
	// The leader's model is slow: its stream has begun and trickles.
	u.RespondHeaders(200, [][2]string{{"content-type", "text/event-stream"}}, false)
	u.SendChunk(sseEv(`{"id":"c1","object":"chat.completion.chunk","model":"sim-chat","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`), false)
	hs.h.Drain()
	a := hs.h.StartExchange(1, req) // follower A, at 0 s
	hs.h.Drain()
	var b *wasmhost.Exchange
	for i := 1; i <= 25; i++ {
		hs.h.AdvanceAndTick(time.Second)
		u.SendChunk(sseEv(fmt.Sprintf(`{"id":"c1","choices":[{"index":0,"delta":{"content":"w%d "}}]}`, i)), false)
		hs.h.Drain()
		if i == 6 {
			b = hs.h.StartExchange(0, req) // follower B, at 6 s
			hs.h.Drain()
		}
		// A went upstream at its max_wait; its model (another replica)
		// answers at once, and that answer is stored.
		for _, p := range hs.h.PendingUpstream() {
			if p != u && !a.Done() {
				hs.answer(p)
				hs.h.Drain()
			}
		}
		if i == 12 {
			if !a.Done() || hs.counter("modelcache_route.chat.stored") != 1 {
				t.Fatalf("follower A not answered and stored by 12 s: done %v, stored %d", a.Done(), hs.counter("modelcache_route.chat.stored"))
			}
			// A new request now is a hit.
			c := hs.h.StartExchange(1, req)
			hs.h.Drain()
			if !c.Done() {
				t.Fatalf("a new request at 12 s is no hit: %s", c.State())
			}
			expectCacheStatus(t, c.Response(), "hit")
		}
		if b != nil && b.Done() {
			break
		}
	}
	if n := hs.upstream.Load(); n != 2 {
		t.Fatalf("%d upstream calls (want 2: the slow leader and follower A): follower B, past its max_wait at 16 s, went upstream for an answer stored at 10 s (B done %v, coalesce.timeouts %d)",
			n, b.Done(), hs.counter("modelcache_route.chat.coalesce.timeouts"))
	}
	_ = leader
}
