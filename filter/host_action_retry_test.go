//go:build !wasip1

package main

import (
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// Never hung (README "Fail open"; the same promise as
// TestLocalReplyThatCannotBeSentDoesNotHang, for the purge API): a purge
// whose JSON answer cannot be sent (proxy_send_local_response fails) is
// left paused for good. stream.sendJSON ignores SendHttpResponse's error
// and OnHttpRequestBody returns ActionPause; the purge stream is on no
// list a tick looks at, so nothing ever answers, resets or resumes it.
func TestPurgeWhoseReplyCannotBeSentDoesNotHang(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, chatConfig, withFaults(f))
	f.set(failSendLocalResponse)
	ex := hs.h.StartExchange(0, wasmhost.Request{
		Headers: [][2]string{{":method", "POST"}, {":path", "/modelcache/purge"}, {":authority", "m"},
			{"authorization", "Bearer 0123456789abcdef-token"}},
		Body: []byte(`{"scope":"all"}`),
	})
	hs.h.Drain()
	f.set(nil)
	if f.failed() == 0 {
		t.Fatal("no local reply was attempted")
	}
	hs.h.AdvanceAndTick(time.Minute)
	hs.h.Drain()
	if !ex.Done() {
		t.Fatalf("purge still unanswered a minute after its reply failed: %s", ex.State())
	}
}

// Same, at the headers: a purge with the wrong method (its 405 is sent
// from startPurge, whose error is dropped) or a bad token (401, sendJSON)
// returns ActionPause after a reply that was never sent.
func TestPurgeRefusalThatCannotBeSentDoesNotHang(t *testing.T) {
	for _, c := range []struct{ name, method, token string }{
		{"405", "GET", "Bearer 0123456789abcdef-token"},
		{"401", "POST", "Bearer wrong"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &faultPlan{}
			hs := newHarness(t, chatConfig, withFaults(f))
			f.set(failSendLocalResponse)
			ex := hs.h.StartExchange(0, wasmhost.Request{
				Headers: [][2]string{{":method", c.method}, {":path", "/modelcache/purge"}, {":authority", "m"},
					{"authorization", c.token}},
				Body: []byte(`{"scope":"all"}`),
			})
			hs.h.Drain()
			f.set(nil)
			if f.failed() == 0 {
				t.Fatal("no local reply was attempted")
			}
			hs.h.AdvanceAndTick(time.Minute)
			hs.h.Drain()
			if !ex.Done() {
				t.Fatalf("purge still unanswered a minute after its %s failed: %s", c.name, ex.State())
			}
		})
	}
}

// Never hung: a follower whose leader failed is sent upstream from a root
// callback (stream.forward: ResumeHttpRequest, a.Resume && s.rooted). When
// that one proxy_continue_stream fails, forward only counts
// internal_errors; the follower is off the waiting list by then (it is no
// longer Following), so no tick ever tries the resume again: the client
// waits forever for a request the model would have answered.
func TestFollowerWhoseResumeFailsIsNotLeftHanging(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, coalesceConfig, withFaults(f), withWorkers(1))
	hs.holdUpstream()
	exs := startMany(hs, 2, "resume fails")
	f.set(nthCall(1, wasmhost.StatusBadArgument, func(c wasmhost.HostCall) bool {
		return c.Name == "proxy_continue_stream" && len(c.Args) > 0 && uint32(c.Args[0]) == uint32(wasmhost.StreamHTTPRequest)
	}))
	u := hs.onlyUpstream()
	hs.fault = nil // later upstream requests: the simulator answers
	u.Respond(500, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":"boom"}`))
	hs.h.Drain()
	for i := 0; i < 30; i++ {
		hs.h.AdvanceAndTick(time.Second)
		hs.h.Drain()
	}
	f.set(nil)
	if f.failed() == 0 {
		t.Fatal("no resume was attempted")
	}
	if !exs[1].Done() {
		t.Fatalf("follower unanswered 30s after its one resume failed (internal_errors=%d, upstream=%d): %s",
			hs.counter("modelcache.internal_errors"), hs.upstream.Load(), exs[1].State())
	}
}
