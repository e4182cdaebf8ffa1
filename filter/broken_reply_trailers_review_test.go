//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review R3: the binding lets go of a broken-stream reply "once the
// answer's last body chunk passes" (entry.go streamCall: only a body
// callback with end_of_stream). An answer that ends with trailers has no
// body chunk with end_of_stream: it passes whole at its trailers, and the
// reply is kept. A panic at the stream's end then counts the partial batch
// (whose client got its cached items, merged) as a miss, the defect
// TestBrokenAfterAnswerPassedPartialBatchCountedAsServed fixed for answers
// without trailers.
func TestBrokenAfterAnAnswerEndedByTrailersIsCountedServed(t *testing.T) {
	hs := crashHarnessWith(t, embConfig)
	odd, all := oddOf(4)
	hs.post(0, "/v1/embeddings", embReq(odd, "")) // items 1 and 3 cached
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		status, headers, body := hs.simulate(u.Headers, u.Body)
		var hs2 [][2]string
		for _, kv := range headers {
			if kv[0] != "content-length" {
				hs2 = append(hs2, kv)
			}
		}
		u.RespondHeaders(status, hs2, false)
		u.SendChunk(body, false)
		u.SendTrailers([][2]string{{"x-trailer", "1"}})
		return true
	}
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
		t.Fatalf("the client got a 200 (cache-status %q) with 2 cached items of 4 (answer ended by trailers), but the stats count items.hit +%d and requests %s (before %s)",
			hdr(res, "cache-status"), hit, fmtCounters(after), fmtCounters(before))
	}
}
