//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
	"github.com/tidwall/gjson"
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
	hs, res := bodylessPartialBatch(t, "v1")
	if cs := hdr(res, "cache-status"); cs == "" {
		t.Fatalf("a partly cached batch answered with headers only reached the client (status %d, body %q) without a Cache-Status: headers %q",
			res.Status, res.Body, res.Headers)
	}
	if cs := hdr(res, "cache-status"); !strings.Contains(cs, "detail=malformed-json") {
		t.Fatalf("Cache-Status %q: the bodyless answer is refused as malformed-json, as an unrewritten batch's is", cs)
	}
	if n := hs.counter("modelcache_route.emb.items.refetch"); n != 0 {
		t.Fatalf("items.refetch %d: a response that ended with its headers cannot be replaced", n)
	}
}

// Review Z103. A partly cached batch's upstream answer covers its missing
// items alone, numbered from 0: it must never pass as the batch's answer
// (RATIONALE, "A partly cached batch whose merged body cannot be written
// gets the batch's 502 instead of the upstream's answer for its missing
// items alone", review Z82). A host fault reading that answer — its
// headers (Stream.ResponseHeaders) or its held body (Stream.ResponseBody)
// — refuses it as internal and lets it pass as it came: the client asked
// for 8 items and gets a 200 with 4 vectors, at indices 0..3, under
// "fwd=partial; detail=internal".
func TestPartialBatchAnswerUnreadablePassesNotShort(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(c wasmhost.HostCall) bool
	}{
		{"headers", func(c wasmhost.HostCall) bool {
			return c.Name == "proxy_get_header_map_pairs" && len(c.Args) > 0 &&
				wasmhost.MapType(uint32(c.Args[0])) == wasmhost.MapHTTPResponseHeaders
		}},
		{"body", isResponseBodyRead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &faultPlan{}
			hs := newHarness(t, embConfig, withFaults(f), withHTTPCalls())
			odd, all := oddOf(8)
			if res := hs.post(0, "/v1/embeddings", embReq(odd, "")); res.Status != 200 {
				t.Fatalf("priming: %d", res.Status)
			}
			f.set(func(c wasmhost.HostCall) (wasmhost.Status, bool) {
				return wasmhost.StatusInternalFailure, tc.fault(c)
			})
			res := hs.post(0, "/v1/embeddings", embReq(all, ""))
			f.set(nil)
			if f.failed() == 0 {
				t.Fatal("setup: no read of the answer failed")
			}
			if res.Status != 200 {
				// The batch's error: no wrong vectors, and none of its
				// cached items counted as served.
				if res.Status != 502 || !strings.Contains(hdr(res, "cache-status"), "fwd=miss") || !strings.Contains(hdr(res, "cache-status"), "detail=internal") {
					t.Fatalf("client got %d (%q) %s: want the batch's 502", res.Status, hdr(res, "cache-status"), res.Body)
				}
				if n := hs.counter("modelcache_route.emb.items.hit"); n != 0 {
					t.Fatalf("items.hit %d: none of the cached items reached the client", n)
				}
				return
			}
			got := gjson.GetBytes(res.Body, "data.#").Int()
			if got != int64(len(all)) {
				t.Fatalf("client got 200 (%q) with %d vectors for its %d inputs: the answer to its missing items alone",
					hdr(res, "cache-status"), got, len(all))
			}
			for i, d := range gjson.GetBytes(res.Body, "data").Array() {
				if d.Get("index").Int() != int64(i) {
					t.Fatalf("vector %d has index %d", i, d.Get("index").Int())
				}
			}
		})
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
	if hs.counter("modelcache_route.emb.items.refetch") != 1 || res.Status != 502 {
		t.Fatalf("setup: items.refetch %d, status %d %s", hs.counter("modelcache_route.emb.items.refetch"), res.Status, res.Body)
	}
	cs := hdr(res, "cache-status")
	if !strings.Contains(cs, "fwd-status=200") {
		t.Fatalf("Cache-Status %q: the model answered the refetch 200 (encoded); the 502 is the cache's own", cs)
	}
}

// bodylessPartialBatch primes half of a batch of four (model version v1),
// then asks for all four: the model answers the missing items with
// headers only (200, JSON, x-model-version version). It returns the
// harness and the client's response.
func bodylessPartialBatch(t *testing.T, version string) (*harness, *wasmhost.ClientResponse) {
	t.Helper()
	hs := newHarness(t, embConfig, withHTTPCalls())
	odd, all := oddOf(4)
	if res := hs.post(0, "/v1/embeddings", embReq(odd, "")); res.Status != 200 {
		t.Fatalf("priming: %d", res.Status)
	}
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		u.RespondHeaders(200, [][2]string{{"content-type", "application/json"}, {"x-model-version", version}}, true)
		return true
	}
	res := hs.post(0, "/v1/embeddings", embReq(all, ""))
	hs.fault = nil
	return hs, res
}
