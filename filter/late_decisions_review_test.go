//go:build !wasip1

package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// Review Z185 (late decisions, header_hold, stalls).

// Under header_hold "hold" on a fresh VM, a slow client's request is let go
// after the grace (body_late, its judgement waiting for its body). Another
// request's body then reaches the filter while its headers are held: the
// proxy delivers bodies to a plugin holding headers, proven "for good"
// (HoldState.BodySeen; README: a let-go request counts in
// bypass.hold_unsupported only "if it was a stall", in bypass.body_late if
// its body came later or never, "a slow client's, which says nothing of the
// proxy"). When the slow client's body then lands within HoldResumeWindow
// of its let-go, plugin.stalled still judges it a stall: the request is
// counted in bypass.hold_unsupported and answered "detail=hold-unsupported"
// on a proxy known to hold headers. ModelcacheNotCaching reads
// bypass.hold_unsupported, so it fires for a proxy that caches (the false
// alert review Z160 set out to end). Expected: a body that comes after the
// VM saw a body while holding is no stall — body_late, Cache-Status
// body-late, hold_unsupported untouched.
func TestHoldLetGoBodyAfterHoldingProvenIsNoStall(t *testing.T) {
	cfg := strings.Replace(coalesceConfig, `"upstream_cluster": "model",`, `"upstream_cluster": "model", "header_hold": "hold",`, 1)
	hs := newHarness(t, cfg, withWorkers(1)) // allow_on_headers_stop_iteration: true — the proxy holds
	body := chatBody("slow client")
	req := chatRequest("slow client")
	req.Body = nil
	req.Streaming = true // headers only; the body comes later
	req.Headers = append(req.Headers, [2]string{"content-length", strconv.Itoa(len(body))})
	slow := hs.h.StartExchange(0, req)
	hs.h.Drain()
	hs.h.AdvanceAndTick(300 * time.Millisecond) // let go: no body in sight
	hs.h.Drain()
	if !slow.UpstreamContacted() || slow.Done() {
		t.Fatalf("setup: the slow request was not let go (%s)", slow.State())
	}
	// A prompt client: its body reaches the filter while its headers are
	// held — the proxy holds, proven.
	if r := hs.post(0, "/v1/chat/completions", chatBody("prompt client")); r.Status != 200 || !strings.Contains(hdr(r, "cache-status"), "stored") {
		t.Fatalf("setup: held request %d %q", r.Status, hdr(r, "cache-status"))
	}
	// The slow client's body lands just after its let-go.
	slow.SendBody([]byte(body), true)
	hs.h.Drain()
	if !slow.Done() || slow.Response().Status != 200 {
		t.Fatalf("setup: slow request %s, status %d", slow.State(), slow.Response().Status)
	}
	cs := hdr(slow.Response(), "cache-status")
	bodyLate, unsupported := hs.counter("modelcache_route.chat.bypass.body_late"), hs.counter("modelcache_route.chat.bypass.hold_unsupported")
	if unsupported != 0 || bodyLate != 1 || strings.Contains(cs, "hold-unsupported") {
		t.Fatalf("a slow client's let-go on a proxy proven to hold headers counts bypass.hold_unsupported=%d (body_late=%d), Cache-Status %q: "+
			"want body_late=1, hold_unsupported=0 (ModelcacheNotCaching fires on a proxy that caches)", unsupported, bodyLate, cs)
	}
}
