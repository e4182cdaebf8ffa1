//go:build !wasip1

package main

import (
	"strings"
	"testing"
)

// A partial embeddings batch broken by a panic now answers its client the
// binding's 502 "miss; detail=internal" (SetBrokenReply): no item of the
// cache reached the client. Its count, made when the stream breaks
// (Stream.Broken, countNow), must say so: not a partial hit whose cached
// items were served (items.hit), which the client never got.
func TestBrokenPartialBatchIsCountedAMissNotServedItems(t *testing.T) {
	hs := crashHarnessWith(t, embConfig)
	odd, all := oddOf(4)
	hs.post(0, "/v1/embeddings", embReq(odd, "")) // items 1 and 3 cached
	before, _ := requestCounters(hs, "emb")
	hitBefore := hs.counter("modelcache_route.emb.items.hit")
	res := hs.post(1, "/v1/embeddings", embReq(all, ""), "x-modelcache-crash", "panic-on-response")
	if hs.counter("modelcache.panics") != 1 || res.Status != 502 || !strings.Contains(hdr(res, "cache-status"), "detail=internal") {
		t.Fatalf("setup: panics %d, status %d, cache-status %q", hs.counter("modelcache.panics"), res.Status, hdr(res, "cache-status"))
	}
	after, _ := requestCounters(hs, "emb")
	hit := hs.counter("modelcache_route.emb.items.hit") - hitBefore
	if hit != 0 || after["miss"] != before["miss"]+1 {
		t.Fatalf("the client got a 502 %q with no cached item, but the stats count items.hit +%d and requests %s (before %s)",
			hdr(res, "cache-status"), hit, fmtCounters(after), fmtCounters(before))
	}
}
