//go:build !wasip1

package main

import (
	"strconv"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z121. Never hung (README "Fail open"; the promise review Z82 kept
// for a follower's resume with stream.retryLater): a request held at its
// headers for a body the proxy does not deliver is let go by the tick
// (plugin.checkHeld → stream.inRoot with resumeHeld). inRoot resumes it
// with `_ = proxywasm.ResumeHttpRequest()`: the error is dropped, and the
// stream is already off the holding list, so no tick tries again. One
// refused proxy_continue_stream leaves the client waiting for good for a
// request the model would have answered.
func TestHeldRequestLetGoWhoseResumeFailsDoesNotHang(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, chatConfig, withFaults(f), withWorkers(1), func(_ *harness, c *wasmhost.Config) {
		c.AllowOnHeadersStopIteration = false // the body is not delivered while the headers are held
	})
	ex := hs.h.StartExchange(0, chatRequest("held, let go, resume refused"))
	hs.h.Drain()
	if ex.Done() || ex.UpstreamContacted() {
		t.Fatalf("setup: not held (done %v, upstream %v)", ex.Done(), ex.UpstreamContacted())
	}
	f.set(nthCall(1, wasmhost.StatusBadArgument, func(c wasmhost.HostCall) bool {
		return c.Name == "proxy_continue_stream" && len(c.Args) > 0 && uint32(c.Args[0]) == uint32(wasmhost.StreamHTTPRequest)
	}))
	for i := 0; i < 20 && !ex.Done(); i++ {
		hs.h.AdvanceAndTick(time.Second)
		hs.h.Drain()
		if i == 0 {
			f.set(nil) // only the first resume is refused
		}
	}
	if f.failed() != 1 {
		t.Fatalf("setup: %d resumes refused, want 1 (was the request let go by a tick?)", f.failed())
	}
	if !ex.Done() {
		t.Fatalf("request unanswered 20 s after the one resume that let it go was refused (internal_errors=%d, upstream contacted %v): %s",
			hs.counter("modelcache.internal_errors"), ex.UpstreamContacted(), ex.State())
	}
	if res := ex.Response(); res.Status != 200 {
		t.Fatalf("client got %d, want the model's 200", res.Status)
	}
}

// Review Z121, the response side. A partly cached batch whose missing
// items' answer is refused (no-store) is held while the whole batch is
// asked for again; the call's result replaces the held answer and resumes
// it (ActResumeResponse, performed in the call's root callback as
// `_ = proxywasm.ResumeHttpResponse()`). A refused resume is dropped:
// nothing tries again, and the client waits for good for a batch the
// model answered.
func TestRefetchWhoseResponseResumeFailsDoesNotHang(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, embConfig, withHTTPCalls(), withFaults(f), withWorkers(1))
	if r := hs.post(0, "/v1/embeddings", embReq([]string{"cached"}, "")); r.Status != 200 {
		t.Fatalf("setup: %d", r.Status)
	}
	hs.fault = func(u *wasmhost.UpstreamRequest) bool { // the missing items' answer: no-store
		st, h, b := hs.simulate(u.Headers, u.Body)
		u.Respond(st, append(h, [2]string{"cache-control", "no-store"}), b)
		return true
	}
	f.set(nthCall(1, wasmhost.StatusBadArgument, func(c wasmhost.HostCall) bool {
		return c.Name == "proxy_continue_stream" && len(c.Args) > 0 && uint32(c.Args[0]) == uint32(wasmhost.StreamHTTPResponse)
	}))
	body := embReq([]string{"cached", "new 1", "new 2"}, "")
	ex := hs.h.StartExchange(0, wasmhost.Request{Headers: [][2]string{{":method", "POST"}, {":path", "/v1/embeddings"},
		{":authority", "models"}, {":scheme", "http"}, {"content-type", "application/json"}, {"authorization", "Bearer tenant-a"},
		{"content-length", strconv.Itoa(len(body))}}, Body: []byte(body)})
	hs.h.Drain()
	f.set(nil)
	if f.failed() != 1 || hs.counter("modelcache_route.emb.items.refetch") == 0 {
		t.Fatalf("setup: %d response resumes refused (want 1), refetch %d", f.failed(), hs.counter("modelcache_route.emb.items.refetch"))
	}
	for i := 0; i < 20 && !ex.Done(); i++ {
		hs.h.AdvanceAndTick(time.Second)
		hs.h.Drain()
	}
	if !ex.Done() {
		t.Fatalf("batch unanswered 20 s after the resume of its replaced answer was refused (internal_errors=%d): %s",
			hs.counter("modelcache.internal_errors"), ex.State())
	}
}
