//go:build !wasip1

package main

import (
	"bytes"
	"compress/gzip"
	"strconv"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z242: fail-open under host faults, at the filter level.

// gzipUpstream answers like a model server behind which compression is on:
// a request that still carries accept-encoding: gzip gets its answer
// gzip-encoded.
func gzipUpstream(hs *harness) func(u *wasmhost.UpstreamRequest) bool {
	return func(u *wasmhost.UpstreamRequest) bool {
		if hdrOf(u.Headers, "accept-encoding") == "" {
			return false
		}
		status, headers, body := hs.simulate(u.Headers, u.Body)
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		_, _ = w.Write(body)
		_ = w.Close()
		out := [][2]string{{"content-encoding", "gzip"}, {"content-length", strconv.Itoa(z.Len())}}
		for _, h := range headers {
			if h[0] != "content-length" {
				out = append(out, h)
			}
		}
		u.Respond(status, out, z.Bytes())
		return true
	}
}

func isAcceptEncodingRemoval(c wasmhost.HostCall) bool {
	return c.Name == "proxy_remove_header_map_value" && len(c.Args) > 0 &&
		wasmhost.MapType(uint32(c.Args[0])) == wasmhost.MapHTTPRequestHeaders
}

// RATIONALE "Faults fail open": a host call error is "logged and
// counted", and a fault is no lasting refusal (a stream chunk read fault
// was made refused.internal, not too_large, because one fault marked a
// cacheable key hit-for-miss). stream.forward drops the error of its
// proxy_remove_header_map_value("accept-encoding"): a miss whose removal
// fails goes upstream still asking for gzip, its compressed answer is
// refused as `encoded` — a lasting reason — so the fault is counted as
// refused.encoded and never in internal_errors, and the perfectly
// cacheable key is marked hit-for-miss: its next stampede is not
// coalesced, every request reaches the model. Expected: the fault is
// counted as internal, and a transient fault does not mark the key.
func TestAcceptEncodingRemovalFaultIsAFaultNotAnEncodedAnswer(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, coalesceConfig, withWorkers(2), withFaults(f))
	hs.fault = gzipUpstream(hs)
	f.set(nthCall(1, wasmhost.StatusInternalFailure, isAcceptEncodingRemoval))
	req := chatRequest("an accept-encoding that stayed")
	req.Headers = append(req.Headers, [2]string{"accept-encoding", "gzip"})
	res, err := hs.h.Exchange(0, req)
	f.set(nil)
	if err != nil || f.failed() != 1 {
		t.Fatalf("setup: %v, %d faults injected", err, f.failed())
	}
	if res.Status != 200 {
		t.Fatalf("fail-open broken: %d %q", res.Status, hdr(res, "cache-status"))
	}
	encoded := hs.counter("modelcache_route.chat.refused.encoded")
	internal := hs.counter("modelcache.internal_errors")
	if encoded != 0 || internal == 0 {
		t.Errorf("a failed header removal was counted refused.encoded=%d, internal_errors=%d (want 0 and ≥1); Cache-Status %q",
			encoded, internal, hdr(res, "cache-status"))
	}
	// The key is cacheable: its next stampede is single-flight.
	hs.holdUpstream()
	for i := 0; i < 4; i++ {
		hs.h.StartExchange(i%2, req)
	}
	hs.h.Drain()
	if n := len(hs.h.PendingUpstream()); n != 1 {
		t.Errorf("%d upstream requests for one key after one transient header fault, want 1 (hit_for_miss=%d)",
			n, hs.counter("modelcache_route.chat.coalesce.hit_for_miss"))
	}
	for _, u := range hs.h.PendingUpstream() {
		hs.answer(u)
	}
	hs.h.Drain()
}

// The same for a request decided late (header_hold "late": a proxy that
// cannot hold request headers): its headers go upstream at once, and
// goLate's ActRemoveRequestHeader("accept-encoding") is performed by
// plugin.perform, which drops the error too. The fault is counted
// refused.encoded, not internal_errors, and marks the key hit-for-miss.
func TestLateAcceptEncodingRemovalFaultIsAFaultNotAnEncodedAnswer(t *testing.T) {
	f := &faultPlan{}
	hs := lateHarness(t, coalesceConfig, withWorkers(2), withFaults(f))
	hs.fault = gzipUpstream(hs)
	f.set(nthCall(1, wasmhost.StatusInternalFailure, isAcceptEncodingRemoval))
	req := chatRequest("an accept-encoding that stayed, late")
	req.Headers = append(req.Headers, [2]string{"accept-encoding", "gzip"})
	res, err := hs.h.Exchange(0, req)
	f.set(nil)
	if err != nil || f.failed() != 1 {
		t.Fatalf("setup: %v, %d faults injected", err, f.failed())
	}
	if res.Status != 200 {
		t.Fatalf("fail-open broken: %d %q", res.Status, hdr(res, "cache-status"))
	}
	encoded := hs.counter("modelcache_route.chat.refused.encoded")
	internal := hs.counter("modelcache.internal_errors")
	if encoded != 0 || internal == 0 {
		t.Errorf("a failed header removal was counted refused.encoded=%d, internal_errors=%d (want 0 and ≥1); Cache-Status %q",
			encoded, internal, hdr(res, "cache-status"))
	}
	hs.holdUpstream()
	for i := 0; i < 4; i++ {
		hs.h.StartExchange(i%2, req)
	}
	hs.h.Drain()
	if n := len(hs.h.PendingUpstream()); n != 1 {
		t.Errorf("%d upstream requests for one key after one transient header fault, want 1 (hit_for_miss=%d)",
			n, hs.counter("modelcache_route.chat.coalesce.hit_for_miss"))
	}
	for _, u := range hs.h.PendingUpstream() {
		hs.answer(u)
	}
	hs.h.Drain()
}

// RATIONALE "Faults fail open": a host call error is "logged and
// counted". Every response on a cached route carries Cache-Status
// (README); the filter writes it with ActSetHeader, whose
// proxy_replace_header_map_value error plugin.perform and stream.perform
// drop: the client gets no Cache-Status and internal_errors stays 0, so
// nothing tells the operator why answers lack it. Expected: the failed
// write counted as an internal fault.
func TestCacheStatusWriteFaultIsCounted(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, coalesceConfig, withFaults(f))
	f.set(func(c wasmhost.HostCall) (wasmhost.Status, bool) {
		return wasmhost.StatusInternalFailure, c.Name == "proxy_replace_header_map_value" && len(c.Args) > 0 &&
			wasmhost.MapType(uint32(c.Args[0])) == wasmhost.MapHTTPResponseHeaders
	})
	res, err := hs.h.Exchange(0, chatRequest("a Cache-Status that could not be written"))
	f.set(nil)
	if err != nil || f.failed() == 0 || res.Status != 200 {
		t.Fatalf("setup: %v, %d faults injected, status %d", err, f.failed(), res.Status)
	}
	if n := hs.counter("modelcache.internal_errors"); n == 0 {
		t.Errorf("the response went out with Cache-Status %q after %d failed header writes, internal_errors=%d (want ≥1)",
			hdr(res, "cache-status"), f.failed(), n)
	}
}

// A purge request carries the purge API's bearer token; the filter never
// lets it go upstream (startPurge answers locally, and a late purge whose
// authorization header cannot be removed is answered 503: review Z176).
// But when the request's headers cannot be read
// (proxy_get_header_map_pairs fails once), OnHttpRequestHeaders continues
// the request untouched before it knows it is a purge: the model server
// receives POST /modelcache/purge with `authorization: Bearer <purge
// token>`, and the operator gets the model's 404. Expected: the purge
// token never reaches the upstream (the path looked up on its own, or the
// request refused with a 503 to send again).
func TestPurgeWhoseHeadersCannotBeReadKeepsItsTokenFromTheModel(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, chatConfig, withFaults(f))
	var leaked []string
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		if a := hdrOf(u.Headers, "authorization"); a != "" {
			leaked = append(leaked, hdrOf(u.Headers, ":path")+" "+a)
		}
		return false
	}
	f.set(nthCall(1, wasmhost.StatusInternalFailure, func(c wasmhost.HostCall) bool {
		return c.Name == "proxy_get_header_map_pairs" && len(c.Args) > 0 &&
			wasmhost.MapType(uint32(c.Args[0])) == wasmhost.MapHTTPRequestHeaders
	}))
	res, err := hs.h.Exchange(0, wasmhost.Request{
		Headers: [][2]string{{":method", "POST"}, {":path", "/modelcache/purge"}, {":authority", "models"},
			{"authorization", "Bearer 0123456789abcdef-token"}, {"content-type", "application/json"}},
		Body: []byte(`{"route":"chat","model":"sim-chat"}`),
	})
	f.set(nil)
	if err != nil || f.failed() != 1 {
		t.Fatalf("setup: %v, %d faults injected", err, f.failed())
	}
	if len(leaked) > 0 {
		t.Errorf("the purge token went to the model server: %q (client got %d %.100s)", leaked, res.Status, res.Body)
	}
}
