//go:build !wasip1

package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z225 (Cache-Status, RFC 9211).

// cacheStatusLines is every Cache-Status line of a response.
func cacheStatusLines(res *wasmhost.ClientResponse) []string {
	var out []string
	for _, kv := range res.Headers {
		if strings.EqualFold(kv[0], "cache-status") {
			out = append(out, kv[1])
		}
	}
	return out
}

// A request forwarded to the model whose 503 is answered with the entry
// within stale_if_error says "hit; fwd=stale; ttl=-30;
// detail=stale-if-error": the status the model sent for the forwarded
// request is lost, though RFC 9211 §2.3 makes fwd-status exactly that and
// the renderer's own table (TestCacheStatusHeader, "stale if error") shows
// "fwd=stale; fwd-status=503; …; detail=stale-if-error". HitResponse
// builds the header from the request's status alone, with no FwdStatus,
// so an operator cannot tell from the header what the model answered (a
// 503, a 429, a 500). Expected: fwd-status=503 on the stale answer.
func TestCacheStatusStaleIfErrorCarriesModelStatus(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"60s","stale_if_error":"1h"}]}`
	hs := newHarness(t, cfg)
	failing := false
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		if failing {
			respondChat(u, 503, "overloaded")
		} else {
			respondChat(u, 200, "old answer")
		}
		return true
	}
	body := chatBody("stale if error, fwd-status")
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "fwd=miss", "stored")
	hs.clock.Advance(90 * time.Second) // 30 s stale, within stale_if_error
	failing = true
	res := hs.post(0, "/v1/chat/completions", body)
	cs := cacheStatusLines(res)
	if res.Status != 200 || len(cs) != 1 || !strings.Contains(cs[0], "detail=stale-if-error") {
		t.Fatalf("setup: status %d, Cache-Status %q: want the stale entry (detail=stale-if-error)", res.Status, cs)
	}
	if !strings.Contains(cs[0], "fwd-status=503") {
		t.Fatalf("stale answer for the model's 503: Cache-Status %q has no fwd-status=503 (the status the model sent for the forwarded request)", cs[0])
	}
}

// An upstream that resets before it sends any header makes Envoy answer
// 503 itself; the filter labels that reply "fwd=miss; fwd-status=503;
// detail=upstream-reset". fwd-status is "the status code the next hop
// server returned in response to the forwarded request" (RFC 9211 §2.3):
// the model returned none, the 503 is Envoy's own, so the header reports a
// model 503 that never happened (dashboards and clients reading fwd-status
// count it as the model's). Expected: no fwd-status on an answer Envoy
// made up for a reset (detail=upstream-reset says what happened).
func TestCacheStatusUpstreamResetClaimsModelStatus(t *testing.T) {
	hs := newHarness(t, chatConfig)
	hs.fault = func(u *wasmhost.UpstreamRequest) bool { u.Reset(); return true }
	res := hs.post(0, "/v1/chat/completions", chatBody("reset before headers"))
	cs := cacheStatusLines(res)
	if res.Status != 503 || len(cs) != 1 || !strings.Contains(cs[0], "detail=upstream-reset") {
		t.Fatalf("setup: status %d, Cache-Status %q: want Envoy's 503 labelled upstream-reset", res.Status, cs)
	}
	if strings.Contains(cs[0], "fwd-status=") {
		t.Fatalf("Envoy's own 503 for an upstream reset: Cache-Status %q reports a fwd-status, though the model sent no status", cs[0])
	}
}

// A partly cached embeddings batch whose missing items' answer comes with
// a status the route does not store (203) is refused for its status and
// the whole batch asked for again; the refetch's status goes in
// fwd-status and the refused one in detail=status-203 (review of
// TestRefetchCacheStatusNamesTheRefusedStatus). When the refetch fails
// (the model does not answer it), the client gets the batch's 502 with
// "fwd=miss; detail=status": AppendHeader appends the refused status only
// when FwdStatus is set, so the 203 refused (refused_status.203 = 1) is
// dropped and the detail names no status, though CacheStatus.Refused
// holds it. Expected: detail=status-203, as with a refetch that answers.
func TestCacheStatusFailedRefetchDropsTheRefusedStatus(t *testing.T) {
	hs := newHarness(t, embConfig, withHTTPCalls())
	hs.post(0, "/v1/embeddings", embReq([]string{"cached"}, ""))
	hs.fault = func(u *wasmhost.UpstreamRequest) bool { // the missing item's answer: 203
		_, h, b := hs.simulate(u.Headers, u.Body)
		u.Respond(203, h, b)
		return true
	}
	hs.holdCalls = true // the refetch is answered below: it fails
	body := embReq([]string{"cached", "new 1"}, "")
	ex := hs.h.StartExchange(1, wasmhost.Request{Headers: [][2]string{{":method", "POST"}, {":path", "/v1/embeddings"},
		{":authority", "models"}, {":scheme", "http"}, {"content-type", "application/json"}, {"authorization", "Bearer tenant-a"},
		{"content-length", strconv.Itoa(len(body))}}, Body: []byte(body)})
	hs.h.Drain()
	calls := hs.h.PendingHTTPCalls()
	if len(calls) != 1 {
		t.Fatalf("setup: %d pending calls, want the refetch", len(calls))
	}
	calls[0].Fail()
	hs.h.Drain()
	res := ex.Response()
	if !ex.Done() || hs.counter("modelcache_route.emb.items.refetch") != 1 || hs.counter("modelcache_route.emb.refused_status.203") != 1 {
		t.Fatalf("setup: done %v, items.refetch %d, refused_status.203 %d", ex.Done(),
			hs.counter("modelcache_route.emb.items.refetch"), hs.counter("modelcache_route.emb.refused_status.203"))
	}
	cs := cacheStatusLines(res)
	if len(cs) != 1 || !strings.Contains(cs[0], "detail=status-203") {
		t.Fatalf("failed refetch of a batch whose answer was refused for its 203: status %d, Cache-Status %q: want detail=status-203 (refused_status.203 = 1)",
			res.Status, cs)
	}
}
