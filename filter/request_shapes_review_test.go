//go:build !wasip1

package main

import (
	"bytes"
	"compress/gzip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z160 (request shapes).
//
// Under header_hold "hold", on a proxy that does hold request headers
// (allow_on_headers_stop_iteration on, as envoy/envoy.yaml sets it), the
// first request of a fresh worker from a slow client (its body comes a
// second after its headers: a client that streams a prompt it is still
// building, or one waiting on a 100-continue) is let go at HoldGrace. Its
// body then comes far outside HoldResumeWindow, so the filter itself
// judges it a slow client's, not a stall (plugin.stalled). Yet the
// request was bypassed as hold_unsupported: bypass.hold_unsupported moves
// and the Cache-Status says hold-unsupported, which README's metric table
// and the ModelcacheNotCaching alert (envoy/observability/alerts.yaml)
// read as "Envoy does not hold headers for the filter" — a warning that
// fires for 10 minutes on a proxy configured as documented, for one slow
// client. Expected: a let-go that is not (or not yet) a proven stall is
// not counted as the proxy's lack of support.
func TestSlowClientUnderHoldIsNotCountedHoldUnsupported(t *testing.T) {
	cfg := strings.Replace(coalesceConfig, `"upstream_cluster": "model",`, `"upstream_cluster": "model", "header_hold": "hold",`, 1)
	hs := newHarness(t, cfg, withWorkers(1)) // the proxy holds headers
	req := chatRequest("a slow client's prompt")
	body := req.Body
	req.Streaming = true // the headers now, the body a second later
	ex := hs.h.StartExchange(0, req)
	hs.h.Drain()
	hs.h.AdvanceAndTick(cachecore.HoldGrace + 50*time.Millisecond)
	hs.h.Drain()
	hs.h.AdvanceAndTick(time.Second)
	ex.SendBody(body, true)
	hs.h.Drain()
	if !ex.Done() || ex.Response().Status != 200 {
		t.Fatalf("setup: the slow client's request: done %v, status %d", ex.Done(), ex.Response().Status)
	}
	// Sanity: the proxy does hold (a normal request right after caches).
	hs.post(0, "/v1/chat/completions", chatBody("alice asks"))
	if cs := hdr(hs.post(0, "/v1/chat/completions", chatBody("alice asks")), "cache-status"); !strings.Contains(cs, "hit") {
		t.Fatalf("setup: the proxy holds, yet a repeat is %q", cs)
	}
	n, vm := hs.counter("modelcache_route.chat.bypass.hold_unsupported"), hs.counter("modelcache.hold_unsupported")
	cs := hdr(ex.Response(), "cache-status")
	if n != 0 || strings.Contains(cs, "hold-unsupported") {
		t.Fatalf("one slow client on a proxy that holds headers is reported as the proxy not holding: "+
			"bypass.hold_unsupported = %d (ModelcacheNotCaching fires), hold_unsupported = %d, Cache-Status %q", n, vm, cs)
	}
}

// A request whose body is compressed (Content-Encoding: gzip: a client
// that compresses large prompts, or one behind a compressing gateway) is parsed as if its bytes were JSON and bypassed
// as malformed_json: Cache-Status says detail=malformed-json and
// bypass.malformed_json moves, blaming the client's JSON for what is an
// encoding the cache does not read. The request side never looks at
// Content-Encoding (the answer side refuses it as "encoded"). Expected: a
// request with a content-encoding other than identity is bypassed for
// its encoding (not parsed, not keyed), never counted as malformed JSON.
func TestCompressedRequestIsNotReportedAsMalformedJSON(t *testing.T) {
	hs := newHarness(t, chatConfig, withWorkers(1))
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write([]byte(chatBody("a compressed prompt")))
	_ = zw.Close()
	res, err := hs.h.Exchange(0, wasmhost.Request{
		Headers: [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, {":authority", "models"},
			{"authorization", "Bearer tenant-a"}, {"content-type", "application/json"}, {"content-encoding", "gzip"},
			{"content-length", strconv.Itoa(zipped.Len())}},
		Body: zipped.Bytes(),
	})
	if err != nil {
		t.Fatal(err)
	}
	cs := hdr(res, "cache-status")
	if !strings.Contains(cs, "fwd=bypass") {
		t.Fatalf("setup: a gzip request body: Cache-Status %q", cs)
	}
	if n := hs.counter("modelcache_route.chat.bypass.malformed_json"); n != 0 || strings.Contains(cs, "malformed-json") {
		t.Fatalf("a gzip-encoded request is reported as malformed JSON: Cache-Status %q, bypass.malformed_json = %d", cs, n)
	}
}
