//go:build !wasip1

package main

import (
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// README "Cache-Status and request directives": "Every response on a
// cached route carries an RFC 9211 Cache-Status", and RATIONALE "A request
// is counted once, as its Cache-Status ends up saying". A stale entry
// within stale_if_error answers the model's 503 (headersRefused ->
// ActServeEntry, RespServed); when the host cannot send it
// (proxy_send_local_response fails) the request fails open
// (Stream.SendFailed: ActForward, Status miss) and the model's 503, held
// at its headers, passes on — with no Cache-Status at all: the refusal
// that would label it (Flight.refuse / Stream.cacheStatus) never ran, and
// SendFailed adds none. The request is counted a miss that no header says.
func TestStaleIfErrorThatCannotBeSentStillCarriesCacheStatus(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, swrConfig, withFaults(f), withWorkers(1))
	body := chatBody("sie send fails")
	if first := hs.post(0, "/v1/chat/completions", body); first.Status != 200 {
		t.Fatalf("first %d", first.Status)
	}
	hs.clock.Advance(2 * time.Minute) // stale, within stale_if_error
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		u.Respond(503, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":"overloaded"}`))
		return true
	}
	f.set(failSendLocalResponse)
	res := hs.post(0, "/v1/chat/completions", body)
	f.set(nil)
	if f.failed() == 0 {
		t.Fatal("setup: no local reply was attempted (the stale entry did not answer)")
	}
	got, sum := requestCounters(hs, "chat")
	if sum != 2 {
		t.Fatalf("counters %s: want 2 requests", fmtCounters(got))
	}
	cs := hdr(res, "cache-status")
	if cs == "" {
		t.Fatalf("the model's %d passed (fail open) with no Cache-Status; counted %s", res.Status, fmtCounters(got))
	}
	expectCacheStatus(t, res, "fwd=miss", "fwd-status=503")
}
