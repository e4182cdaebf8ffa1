//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// A partly cached batch asked for again whole (its missing items' 203 was
// refused) whose refetch Envoy answers itself — a 503 "no healthy
// upstream", no model reached — passes that answer on without a
// fwd-status: fwd-status is only ever the model's (RFC 9211; review Z225
// made it so for forwarded requests, review Z227 found the refetch).
func TestRefetchAnsweredByEnvoyHasNoFwdStatus(t *testing.T) {
	hs := newHarness(t, embConfig, func(h *harness, c *wasmhost.Config) {
		c.HTTPCall = func(call *wasmhost.HTTPCall) {
			call.Respond(503, [][2]string{{"content-type", "text/plain"}}, []byte("no healthy upstream"))
		}
	})
	hs.post(0, "/v1/embeddings", embReq([]string{"cached"}, ""))
	hs.fault = func(u *wasmhost.UpstreamRequest) bool { // the missing item's answer: 203
		_, h, b := hs.simulate(u.Headers, u.Body)
		u.Respond(203, h, b)
		return true
	}
	res := hs.post(1, "/v1/embeddings", embReq([]string{"cached", "new 1"}, ""))
	if hs.counter("modelcache_route.emb.items.refetch") != 1 || res.Status != 503 {
		t.Fatalf("setup: items.refetch %d, status %d %s", hs.counter("modelcache_route.emb.items.refetch"), res.Status, res.Body)
	}
	if cs := hdr(res, "cache-status"); strings.Contains(cs, "fwd-status=") || !strings.Contains(cs, "detail=status-203") {
		t.Fatalf("Cache-Status %q: Envoy's own 503 is not the model's (no fwd-status), and the refused 203 is named", cs)
	}
}
