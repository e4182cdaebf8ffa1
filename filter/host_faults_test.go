//go:build !wasip1

package main

import (
	"sync"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// faultPlan fails chosen host calls (wasmhost.Config.FailHostCall).
type faultPlan struct {
	mu   sync.Mutex
	fail func(c wasmhost.HostCall) (wasmhost.Status, bool)
	hits int // calls failed so far
}

func (f *faultPlan) set(fn func(c wasmhost.HostCall) (wasmhost.Status, bool)) {
	f.mu.Lock()
	f.fail = fn
	f.mu.Unlock()
}

func (f *faultPlan) failed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits
}

func withFaults(f *faultPlan) harnessOpt {
	return func(_ *harness, c *wasmhost.Config) {
		c.FailHostCall = func(hc wasmhost.HostCall) (wasmhost.Status, bool) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.fail == nil {
				return 0, false
			}
			st, ok := f.fail(hc)
			if ok {
				f.hits++
			}
			return st, ok
		}
	}
}

// nthCall fails the n-th (1-based) call matching match, once.
func nthCall(n int, st wasmhost.Status, match func(c wasmhost.HostCall) bool) func(c wasmhost.HostCall) (wasmhost.Status, bool) {
	seen := 0
	return func(c wasmhost.HostCall) (wasmhost.Status, bool) {
		if !match(c) {
			return 0, false
		}
		seen++
		return st, seen == n
	}
}

func isResponseBodyRead(c wasmhost.HostCall) bool {
	return c.Name == "proxy_get_buffer_bytes" && len(c.Args) > 0 &&
		wasmhost.BufferType(uint32(c.Args[0])) == wasmhost.BufferHTTPResponseBody
}

func failSendLocalResponse(c wasmhost.HostCall) (wasmhost.Status, bool) {
	return wasmhost.StatusBadArgument, c.Name == "proxy_send_local_response"
}

// Fail-open (README: "an internal fault passes the request to the model
// untouched"). A hit whose local answer cannot be sent
// (proxy_send_local_response fails) is to go upstream instead
// (cachecore.Stream.SendFailed: ActForward with Resume). The hit is
// decided in the request's own body callback, which then returns
// Continue — but stream.forward also calls proxy_continue_stream
// (Resume). The resume runs when the VM call returns, before the body
// callback's chunk is passed on: the request is continued with its
// headers as its end (Envoy's commonContinue, as wasmhost models it), and
// the model receives content-length 68 and no body. The client gets the
// model's 400 "request body must be a JSON object" instead of its answer.
func TestHitWhoseLocalReplyFailsGoesUpstreamWithItsBody(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, chatConfig, withFaults(f))
	body := chatBody("hit me")
	if res := hs.post(0, "/v1/chat/completions", body); res.Status != 200 {
		t.Fatalf("priming: %d", res.Status)
	}
	f.set(failSendLocalResponse)
	var got []byte
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		got = append([]byte(nil), u.Body...)
		return false
	}
	res := hs.post(0, "/v1/chat/completions", body)
	f.set(nil)
	if f.failed() == 0 {
		t.Fatal("no local reply was attempted (not a hit?)")
	}
	if string(got) != body {
		t.Errorf("the request went upstream with body %q, want the client's %q", got, body)
	}
	if res.Status != 200 {
		t.Errorf("client got %d %q (%s), want the model's 200", res.Status, hdr(res, "cache-status"), res.Body)
	}
}

// Never hung: a local reply of the cache's own (ActServeLocal: the 504 for
// only-if-cached on a miss, the 502 for followers whose leaders failed)
// that cannot be sent leaves the request paused for good: stream.perform
// falls back (SendFailed) only for an action with Resume set, which
// cachecore.Stream.apply sets for ActServeEntry only, so a failed
// ServeLocal is reported Served and its request is never answered nor
// resumed — not by any tick either.
func TestLocalReplyThatCannotBeSentDoesNotHang(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, chatConfig, withFaults(f))
	f.set(failSendLocalResponse)
	req := chatRequest("only if cached")
	req.Headers = append(req.Headers, [2]string{"cache-control", "only-if-cached"})
	ex := hs.h.StartExchange(0, req)
	hs.h.Drain()
	f.set(nil)
	if f.failed() == 0 {
		t.Fatal("no local reply was attempted")
	}
	hs.h.AdvanceAndTick(time.Minute)
	hs.h.Drain()
	if !ex.Done() {
		t.Fatalf("request still unanswered a minute after its local reply failed: %s", ex.State())
	}
}
