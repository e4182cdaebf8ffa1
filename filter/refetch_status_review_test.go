//go:build !wasip1

package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// A partly cached embeddings batch whose missing items' answer comes with
// a 2xx status the route does not store (203 here) is refused for its
// status (refused.status, refused_status.203) and the whole batch asked
// for again (Flight.Refetch). The client then gets the refetch's 200. Its
// Cache-Status must not say that a 200 was refused for its status:
// "fwd-status=200; detail=status-200" contradicts the stats (the status
// refused was 203) and tells the operator the route refuses 200s.
func TestRefetchCacheStatusNamesTheRefusedStatus(t *testing.T) {
	hs := newHarness(t, embConfig, withHTTPCalls())
	hs.post(0, "/v1/embeddings", embReq([]string{"cached"}, ""))
	hs.fault = func(u *wasmhost.UpstreamRequest) bool { // the missing item's answer: 203
		_, h, b := hs.simulate(u.Headers, u.Body)
		u.Respond(203, h, b)
		return true
	}
	body := embReq([]string{"cached", "new 1"}, "")
	ex := hs.h.StartExchange(1, wasmhost.Request{Headers: [][2]string{{":method", "POST"}, {":path", "/v1/embeddings"},
		{":authority", "models"}, {":scheme", "http"}, {"content-type", "application/json"}, {"authorization", "Bearer tenant-a"},
		{"content-length", strconv.Itoa(len(body))}}, Body: []byte(body)})
	hs.h.Drain()
	res := ex.Response()
	if !ex.Done() || hs.counter("modelcache_route.emb.items.refetch") != 1 || hs.counter("modelcache_route.emb.refused_status.203") != 1 {
		t.Fatalf("setup: done %v, items.refetch %d, refused_status.203 %d", ex.Done(),
			hs.counter("modelcache_route.emb.items.refetch"), hs.counter("modelcache_route.emb.refused_status.203"))
	}
	cs := hdr(res, "cache-status")
	if !strings.Contains(cs, "fwd-status=200") || !strings.Contains(cs, "detail=status-203") {
		t.Fatalf("Cache-Status %q should forward the refetch's 200 and name the 203 refused; the stats say the refused answer was a 203 (refused_status.203 = 1, refused_status.200 = %d)",
			cs, hs.counter("modelcache_route.emb.refused_status.200"))
	}
}
