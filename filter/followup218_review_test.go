//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z218: follow-up of review Z216's fix (a partly cached batch whose
// upstream answer is an error counts no item hit: headersRefused zeroes
// batch.hits). The fix covers an answer refused at its headers only. A
// partly cached batch whose missing items' 200 is held (to be merged) and
// then cut by an upstream reset mid-body never reaches its merge: the
// client gets the proxy's 503 and none of the cached items (no vector, no
// age recorded), yet its count, made when the stream ends (Stream.Done ->
// countWaited), still adds every cached item to items.hit. README (Stats):
// items.hit is "the cached items of a hit or partial request ... a batch
// fetched whole again has none" — items answered from cache. Expected:
// items.hit unchanged when the client got none of the cached items.
func TestFollowup218PartialBatchResetMidBodyCountsNoItemHit(t *testing.T) {
	hs := newHarness(t, embConfig, withWorkers(1))
	odd, all := oddOf(8)
	if res := hs.post(0, "/v1/embeddings", embReq(odd, "")); res.Status != 200 {
		t.Fatalf("priming: %d", res.Status)
	}
	hitBefore := hs.counter("modelcache_route.emb.items.hit")
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		u.RespondHeaders(200, [][2]string{{"content-type", "application/json"}, {"x-model-version", "v1"}}, false)
		u.SendChunk([]byte(`{"object":"list","data":[`), false)
		u.Reset()
		return true
	}
	res := hs.post(0, "/v1/embeddings", embReq(all, ""))
	if res.Status == 200 || strings.Contains(string(res.Body), "embedding") {
		t.Fatalf("setup: the client got %d %q %s, want the proxy's error alone", res.Status, hdr(res, "cache-status"), res.Body)
	}
	ages := hs.h.Histogram("modelcache_route.emb.age_at_serve_ms")
	got, _ := requestCounters(hs, "emb")
	if hit := hs.counter("modelcache_route.emb.items.hit") - hitBefore; hit != 0 {
		t.Fatalf("the client got %d %q (Cache-Status %q, x-modelcache-cached-items %q) and none of the %d cached items, "+
			"but items.hit +%d (requests %s, age_at_serve_ms %v: no entry served); want items.hit +0",
			res.Status, res.Body, hdr(res, "cache-status"), hdr(res, "x-modelcache-cached-items"), len(odd), hit, fmtCounters(got), ages)
	}
}
