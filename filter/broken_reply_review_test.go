//go:build !wasip1

package main

import (
	"strings"
	"testing"
)

// A partial embeddings batch whose answer reached its client whole (the
// cached items merged into the upstream's) and whose end then panicked
// (panic-on-done) was served its cached items: the binding's 502 never
// replaced anything (the answer had passed). Its count, made when the
// stream breaks, must still say a partial hit with items.hit, not a miss:
// HasBrokenReply only says a reply was set, not that it was sent.
func TestBrokenAfterAnswerPassedPartialBatchCountedAsServed(t *testing.T) {
	hs := crashHarnessWith(t, embConfig)
	odd, all := oddOf(4)
	hs.post(0, "/v1/embeddings", embReq(odd, "")) // items 1 and 3 cached
	before, _ := requestCounters(hs, "emb")
	hitBefore := hs.counter("modelcache_route.emb.items.hit")
	res := hs.post(1, "/v1/embeddings", embReq(all, ""), "x-modelcache-crash", "panic-on-done")
	if hs.counter("modelcache.panics") != 1 || res.Status != 200 {
		t.Fatalf("setup: panics %d, status %d, cache-status %q", hs.counter("modelcache.panics"), res.Status, hdr(res, "cache-status"))
	}
	if n := strings.Count(string(res.Body), `"object":"embedding"`); n != 4 {
		t.Fatalf("setup: client got %d embeddings, want 4: %.200s", n, res.Body)
	}
	after, _ := requestCounters(hs, "emb")
	hit := hs.counter("modelcache_route.emb.items.hit") - hitBefore
	if hit != 2 || after["miss"] != before["miss"] {
		t.Fatalf("the client got a 200 (cache-status %q) with 2 cached items of 4, but the stats count items.hit +%d and requests %s (before %s)",
			hdr(res, "cache-status"), hit, fmtCounters(after), fmtCounters(before))
	}
}
