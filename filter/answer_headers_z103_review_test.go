//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z103. Every response on a cached route carries a Cache-Status
// (README, "Cache-Status and request directives"). A partly cached
// embeddings batch goes upstream as the batch of its missing items; when
// the model answers that with headers only (200, JSON type, no body), the
// protocol (Flight.Complete on a nil body: malformed_json, rewritten) asks
// for a refetch, and Stream.responseStep's RespComplete case drops the
// Refetching verdict and lets the headers go on without the cache-status
// action: the client gets an empty 200 that says nothing of the cache. The
// same answer to an unrewritten batch carries
// "modelcache; fwd=miss; fwd-status=200; detail=malformed-json".
func TestPartialBatchBodylessAnswerCarriesCacheStatus(t *testing.T) {
	hs := newHarness(t, embConfig, withHTTPCalls())
	odd, all := oddOf(4)
	if res := hs.post(0, "/v1/embeddings", embReq(odd, "")); res.Status != 200 {
		t.Fatalf("priming: %d", res.Status)
	}
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		u.RespondHeaders(200, [][2]string{{"content-type", "application/json"}, {"x-model-version", "v1"}}, true)
		return true
	}
	res := hs.post(0, "/v1/embeddings", embReq(all, ""))
	if cs := hdr(res, "cache-status"); cs == "" {
		t.Fatalf("a partly cached batch answered with headers only reached the client (status %d, body %q) without a Cache-Status: headers %q",
			res.Status, res.Body, res.Headers)
	}
	if cs := hdr(res, "cache-status"); !strings.Contains(cs, "detail=malformed-json") {
		t.Fatalf("Cache-Status %q: the bodyless answer is refused as malformed-json, as an unrewritten batch's is", cs)
	}
	if n := hs.counter("modelcache.emb.items.refetch"); n != 0 {
		t.Fatalf("items.refetch %d: a response that ended with its headers cannot be replaced", n)
	}
}

// Review Z103. RFC 9211's fwd-status is "the status code the next hop
// server returned in response to the forwarded request". A partly cached
// batch whose missing items' answer is refused (a 203 the route does not
// store) is asked for again whole (Flight.Refetch); when the model answers
// that refetch 200 but encoded (content-encoding: gzip, though asked
// without accept-encoding), the client gets the cache's own 502
// (refetchEncoded) and a Cache-Status of "fwd-status=502": the refetch's
// Done leaves status at the 502 it answers and passes that to Refetched as
// the upstream's. The operator reads that the model failed with 502 when
// it answered 200.
func TestRefetchAnsweredEncodedForwardsTheModelsStatus(t *testing.T) {
	hs := newHarness(t, embConfig, func(h *harness, c *wasmhost.Config) {
		c.HTTPCall = func(call *wasmhost.HTTPCall) {
			st, hd, b := h.simulate(call.Headers, call.Body)
			call.Respond(st, append(hd, [2]string{"content-encoding", "gzip"}), b)
		}
	})
	hs.post(0, "/v1/embeddings", embReq([]string{"cached"}, ""))
	hs.fault = func(u *wasmhost.UpstreamRequest) bool { // the missing item's answer: 203
		_, h, b := hs.simulate(u.Headers, u.Body)
		u.Respond(203, h, b)
		return true
	}
	res := hs.post(1, "/v1/embeddings", embReq([]string{"cached", "new 1"}, ""))
	if hs.counter("modelcache.emb.items.refetch") != 1 || res.Status != 502 {
		t.Fatalf("setup: items.refetch %d, status %d %s", hs.counter("modelcache.emb.items.refetch"), res.Status, res.Body)
	}
	cs := hdr(res, "cache-status")
	if !strings.Contains(cs, "fwd-status=200") {
		t.Fatalf("Cache-Status %q: the model answered the refetch 200 (encoded); the 502 is the cache's own", cs)
	}
}
