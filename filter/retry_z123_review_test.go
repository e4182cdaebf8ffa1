//go:build !wasip1

package main

import (
	"testing"
	"time"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z123 (follow-up of Z121: stream.retryLater for a refused
// ResumeHttpRequest of a request let go by a tick).
//
// The retry stays listed until a tick's proxy_continue_stream succeeds or
// the stream is gone; nothing takes it off when the stream moves on by
// other means. Under header_hold auto a request held without a body is
// let go by the tick and decided late; its body, when it comes, is
// decided then. If it follows another request's lead (a late follower
// holds its body: late.followers_held), the next tick's retry resumes the
// request anyway: the follower's body goes to the model while it still
// waits for its leader, and the model is called twice for one key while
// b's Cache-Status says "collapsed" (it is served a's answer). A retry
// is owed only while the request is still held by nobody else's will:
// once a later callback of the stream decides (its body came), the
// listed resume must go.
func TestZ123RetriedLetGoResumeDoesNotReleaseAFollowersBody(t *testing.T) {
	run := func(t *testing.T, refuse bool) (*harness, *wasmhost.Exchange, *wasmhost.Exchange) {
		f := &faultPlan{}
		hs := newHarness(t, coalesceConfig, withWorkers(1), withFaults(f))
		hs.holdUpstream()
		// b: headers now, its body later (a slow client).
		breq := chatRequest("q")
		breq.Streaming = true
		b := hs.h.StartExchange(0, breq)
		hs.h.Drain()
		if refuse {
			f.set(nthCall(1, wasmhost.StatusBadArgument, func(c wasmhost.HostCall) bool {
				return c.Name == "proxy_continue_stream" && len(c.Args) > 0 && uint32(c.Args[0]) == uint32(wasmhost.StreamHTTPRequest)
			}))
		}
		hs.h.AdvanceAndTick(cachecore.HoldGrace + 50*time.Millisecond) // b let go, decided late
		hs.h.Drain()
		f.set(nil)
		if refuse && f.failed() != 1 {
			t.Fatalf("setup: %d resumes refused, want 1", f.failed())
		}
		// a: the same question, whole: it leads, its answer pending.
		a := hs.h.StartExchange(0, chatRequest("q"))
		hs.h.Drain()
		if n := len(hs.h.PendingUpstream()); n != 1 {
			t.Fatalf("setup: %d upstream requests after a, want 1 (a's)", n)
		}
		// b's body comes: it follows a.
		b.SendBody([]byte(chatBody("q")), true)
		hs.h.Drain()
		if b.Done() || hs.counter("modelcache_route.chat.late.followers_held") != 1 {
			t.Fatalf("setup: b %s, followers_held %d", b.State(), hs.counter("modelcache_route.chat.late.followers_held"))
		}
		if n := len(hs.h.PendingUpstream()); n != 1 {
			t.Fatalf("setup: %d upstream requests once b follows, before any tick, want 1", n)
		}
		for i := 0; i < 3; i++ {
			hs.h.AdvanceAndTick(time.Second)
			hs.h.Drain()
		}
		return hs, a, b
	}
	// Without the fault b's headers go upstream at its let-go, its body
	// held while it follows: the model has one whole request, a's.
	if hs, _, _ := run(t, false); len(hs.h.PendingUpstream()) != 1 {
		t.Fatalf("setup (no fault): %d complete upstream requests while b follows a, want 1", len(hs.h.PendingUpstream()))
	}
	hs, a, b := run(t, true)
	if n := len(hs.h.PendingUpstream()); n != 1 {
		t.Fatalf("while b follows a's lead (its body held), %d requests reached the model, want 1 (a's): "+
			"the tick's retry of b's refused let-go resume released the follower's body (b %s)", n, b.State())
	}
	hs.answer(hs.h.PendingUpstream()[0])
	hs.h.Drain()
	if !a.Done() || !b.Done() {
		t.Fatalf("a %s, b %s", a.State(), b.State())
	}
}
