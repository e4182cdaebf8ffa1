//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z94 (a hostile co-tenant, second pass).
//
// cachecore/hold.go: a VM that has seen no body while holding headers
// counts a request held HoldGrace without a body as a "stall", and after
// HoldStallsToGiveUp of them gives up holding for good. The count does not
// ask who stalled nor whether the proxy can hold (here it can:
// allow_on_headers_stop_iteration is on, as envoy/envoy.yaml sets it). So
// one client that sends three requests' headers and holds back their
// bodies for 250 ms, on a fresh worker, switches that worker's cache off
// for every tenant for the rest of the VM's life: under header_hold
// "hold" every cacheable request passes uncached (bypass.hold_unsupported),
// under "auto" every hit opens an upstream request (the model server sees
// it). RATIONALE ("A held request that stalls is rescued, not passed")
// takes 3 stalls as what a slow client cannot reach by accident; a
// hostile one reaches it on purpose.
func TestSlowBodyClientDoesNotSwitchOffHoldingForEveryTenant(t *testing.T) {
	stall := func(hs *harness) {
		t.Helper()
		for i := 0; i < cachecore.HoldStallsToGiveUp; i++ {
			req := chatRequest("slowloris " + string(rune('a'+i)))
			req.Headers = append(req.Headers[:len(req.Headers)-1], [2]string{"authorization", "Bearer mallory"})
			req.Streaming = true // headers now, the body never
			ex := hs.h.StartExchange(0, req)
			hs.h.Drain()
			hs.h.AdvanceAndTick(cachecore.HoldGrace + 50*time.Millisecond)
			hs.h.Drain()
			ex.Abort()
			hs.h.Drain()
		}
	}
	alice := func(hs *harness) (*wasmhost.ClientResponse, *wasmhost.ClientResponse) {
		first := hs.post(0, "/v1/chat/completions", chatBody("alice asks"), "authorization", "Bearer alice")
		hs.h.AdvanceAndTick(time.Second)
		second := hs.post(0, "/v1/chat/completions", chatBody("alice asks"), "authorization", "Bearer alice")
		return first, second
	}

	t.Run("hold: alice's answers are never cached", func(t *testing.T) {
		cfg := strings.Replace(coalesceConfig, `"upstream_cluster": "model",`, `"upstream_cluster": "model", "header_hold": "hold",`, 1)
		if _, second := alice(newHarness(t, cfg, withWorkers(1))); !strings.Contains(hdr(second, "cache-status"), "hit") {
			t.Fatalf("setup: without the stalls alice's repeat is %q", hdr(second, "cache-status"))
		}
		hs := newHarness(t, cfg, withWorkers(1)) // AllowOnHeadersStopIteration: true
		stall(hs)
		_, second := alice(hs)
		if cs := hdr(second, "cache-status"); !strings.Contains(cs, "hit") {
			t.Fatalf("after one client held back 3 bodies on a proxy that holds, alice's repeat is %q "+
				"(bypass.hold_unsupported %d, hold_unsupported %d, upstream calls %d)",
				cs, hs.counter("modelcache_route.chat.bypass.hold_unsupported"), hs.counter("modelcache.hold_unsupported"), hs.upstream.Load())
		}
	})

	t.Run("auto: alice's hits reach the model server", func(t *testing.T) {
		hs := newHarness(t, coalesceConfig, withWorkers(1))
		stall(hs)
		hs.post(0, "/v1/chat/completions", chatBody("alice asks"), "authorization", "Bearer alice")
		hs.h.AdvanceAndTick(time.Second)
		req := chatRequest("alice asks")
		req.Headers = append(req.Headers[:len(req.Headers)-1], [2]string{"authorization", "Bearer alice"})
		ex := hs.h.StartExchange(0, req)
		hs.h.Drain()
		cs := hdr(ex.Response(), "cache-status")
		if !strings.Contains(cs, "hit") {
			t.Fatalf("alice's repeat: %q", cs)
		}
		if ex.UpstreamContacted() {
			t.Fatalf("alice's hit (%q) opened an upstream request: one client's 3 held-back bodies made the worker decide late for good "+
				"on a proxy that holds headers (late.upstream_aborted %d)", cs, hs.counter("modelcache_route.chat.late.upstream_aborted"))
		}
	})
}

// A client that times its held back bodies to come just after they are
// let go looks like a proxy that cannot hold (review Z94): under "hold"
// the VM gives up, but holds again HoldProbeAgain later, one stall from
// giving up anew, and the first body seen while holding proves the proxy
// holds, for good.
func TestHoldGivenUpIsProbedAgain(t *testing.T) {
	cfg := strings.Replace(coalesceConfig, `"upstream_cluster": "model",`, `"upstream_cluster": "model", "header_hold": "hold",`, 1)
	hs := newHarness(t, cfg, withWorkers(1)) // the proxy holds
	timedStalls(hs, "timed")
	if hs.counter("modelcache.hold_unsupported") != 1 {
		t.Fatalf("setup: hold_unsupported %d after 3 bodies timed to come just after their let-go", hs.counter("modelcache.hold_unsupported"))
	}
	ask := func() string {
		r := hs.post(0, "/v1/chat/completions", chatBody("alice asks"), "authorization", "Bearer alice")
		return hdr(r, "cache-status")
	}
	if cs := ask(); !strings.Contains(cs, "hold-unsupported") {
		t.Fatalf("setup: after giving up, %q", cs)
	}
	hs.h.AdvanceAndTick(cachecore.HoldProbeAgain - time.Second)
	if cs := ask(); !strings.Contains(cs, "hold-unsupported") {
		t.Fatalf("before HoldProbeAgain: %q, want still passed uncached", cs)
	}
	hs.h.AdvanceAndTick(2 * time.Second)
	ask() // held again: its body comes while it is held, and it is stored
	if cs := ask(); !strings.Contains(cs, "hit") {
		t.Fatalf("after HoldProbeAgain, alice's repeat is %q: the VM never held again (hold_unsupported %d)",
			cs, hs.counter("modelcache.hold_unsupported"))
	}
	// Proven for good: stalls no longer count.
	timedStalls(hs, "timed again")
	if cs := ask(); !strings.Contains(cs, "hit") {
		t.Fatalf("after a body was seen while held, 3 more timed stalls: %q", cs)
	}
}

// timedStalls holds back HoldStallsToGiveUp requests' bodies past the
// hold grace and sends each just after it was let go.
func timedStalls(hs *harness, prefix string) {
	for i := 0; i < cachecore.HoldStallsToGiveUp; i++ {
		req := chatRequest(prefix + " " + string(rune('a'+i)))
		body := req.Body
		req.Streaming = true
		ex := hs.h.StartExchange(0, req)
		hs.h.Drain()
		hs.h.AdvanceAndTick(cachecore.HoldGrace) // let go at the grace, by a tick armed for it
		hs.h.Drain()
		ex.SendBody(body, true) // just after it was let go
		hs.h.Drain()
	}
}
