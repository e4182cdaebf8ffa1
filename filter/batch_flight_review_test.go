//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

const batchFlightConfig = `{
  "upstream_cluster": "model",
  "routes": [
    {"name": "emb", "kind": "embeddings", "path_prefix": "/v1/embeddings", "ttl": "1h",
     "model_version": {"header": "x-model-version"},
     "coalesce": {"max_wait": "2s", "max_retries": 2}}
  ]
}`

// A follower of an identical batch that waits past max_wait looks in
// L1 again (review Z193) and, when some of its items were stored
// meanwhile (by a single request sharing one), goes upstream with only
// the missing items and merges the cached ones in: a partial answer.
// But its resumed forward (Flight.forward, Stream.apply's FailOpen)
// resets the request's status to miss: the client's Cache-Status says
// fwd=miss and requests.miss is counted, while x-modelcache-cached-items
// says 1/3 and the body holds a cached vector with an Age. Expected: as
// any partly cached batch, fwd=partial and requests.partial.
func TestBatchFollowerPastMaxWaitPartialSaysMiss(t *testing.T) {
	hs := newHarness(t, batchFlightConfig)
	hs.holdUpstream()
	items := []string{"x item", "y item", "z item"}
	body := embReq(items, "")
	leader := hs.h.StartExchange(0, embExchange(body, "Bearer tenant-a"))
	hs.h.Drain()
	lu := hs.onlyUpstream()
	follower := hs.h.StartExchange(1, embExchange(body, "Bearer tenant-a"))
	hs.h.Drain()
	if n := len(hs.h.PendingUpstream()); n != 1 || follower.Done() {
		t.Fatalf("identical batch did not follow: %d upstream, done %v", n, follower.Done())
	}
	// A single request shares the first item and is answered at once.
	single := hs.h.StartExchange(0, embExchange(embReq(items[:1], ""), "Bearer tenant-a"))
	hs.h.Drain()
	for _, p := range hs.h.PendingUpstream() {
		if p != lu {
			hs.answer(p)
		}
	}
	hs.h.Drain()
	if !single.Done() || hs.counter("modelcache_route.emb.items.stored") != 1 {
		t.Fatalf("single request: done %v, items.stored %d", single.Done(), hs.counter("modelcache_route.emb.items.stored"))
	}
	before := len(hs.sim.EmbeddingCalls())
	for i := 0; i < 4 && len(hs.h.PendingUpstream()) < 2; i++ {
		hs.h.AdvanceAndTick(time.Second)
		hs.h.Drain()
	}
	for _, p := range hs.h.PendingUpstream() {
		if p != lu {
			hs.answer(p)
		}
	}
	hs.h.Drain()
	if !follower.Done() {
		t.Fatalf("follower not answered past max_wait: %s", follower.State())
	}
	res := follower.Response()
	partialOfThree(t, hs, res, hs.sim.EmbeddingCalls()[before:], body, "after max_wait")
	if got := hs.counter("modelcache_route.emb.items.hit"); got != 1 {
		t.Fatalf("items.hit = %d, want the 1 cached item merged", got)
	}
	_ = leader
}

// The same through a wake-up: the leader of an identical batch fails
// (a 503), and its follower, looking again, finds one of its items
// stored meanwhile by a single request. It leads on (promoted) with only
// the missing items, merged with the cached one, yet its Cache-Status
// says fwd=miss and it is counted requests.miss. Expected: fwd=partial,
// requests.partial, as the same batch arriving now would say.
func TestBatchPromotedFollowerPartialSaysMiss(t *testing.T) {
	hs := newHarness(t, batchFlightConfig)
	hs.holdUpstream()
	items := []string{"x item", "y item", "z item"}
	body := embReq(items, "")
	leader := hs.h.StartExchange(0, embExchange(body, "Bearer tenant-a"))
	hs.h.Drain()
	lu := hs.onlyUpstream()
	follower := hs.h.StartExchange(1, embExchange(body, "Bearer tenant-a"))
	hs.h.Drain()
	single := hs.h.StartExchange(0, embExchange(embReq(items[:1], ""), "Bearer tenant-a"))
	hs.h.Drain()
	for _, p := range hs.h.PendingUpstream() {
		if p != lu {
			hs.answer(p)
		}
	}
	hs.h.Drain()
	if !single.Done() || follower.Done() {
		t.Fatalf("single done %v, follower done %v", single.Done(), follower.Done())
	}
	before := len(hs.sim.EmbeddingCalls())
	lu.Respond(503, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":{"message":"overloaded"}}`))
	hs.h.Drain()
	for _, p := range hs.h.PendingUpstream() {
		hs.answer(p)
	}
	hs.h.Drain()
	if !leader.Done() || !follower.Done() {
		t.Fatalf("leader done %v, follower %s", leader.Done(), follower.State())
	}
	partialOfThree(t, hs, follower.Response(), hs.sim.EmbeddingCalls()[before:], body, "after the leader's failure")
}

// partialOfThree checks a follower's answer to the batch body of three
// items, one cached meanwhile: one upstream call (when: after what) for
// the two missing items, the model's vectors, 1/3 cached, fwd=partial
// and requests.partial.
func partialOfThree(t *testing.T, hs *harness, res *wasmhost.ClientResponse, calls [][]string, body, when string) {
	t.Helper()
	if len(calls) != 1 || len(calls[0]) != 2 {
		t.Fatalf("upstream calls %s %v: want the 2 missing items", when, calls)
	}
	if res.Status != 200 || strings.Join(vectors(t, res.Body), "|") != strings.Join(vectors(t, reference(t, body)), "|") {
		t.Fatalf("follower's answer: %d %.200s", res.Status, res.Body)
	}
	if got := hdr(res, "x-modelcache-cached-items"); got != "1/3" {
		t.Fatalf("cached-items %q", got)
	}
	counts, _ := requestCounters(hs, "emb")
	if !strings.Contains(hdr(res, "cache-status"), "fwd=partial") || counts["partial"] != 1 {
		t.Fatalf("a batch answered with 1 of 3 items from the cache says Cache-Status %q (age %q), request counters %s: want fwd=partial and requests.partial=1",
			hdr(res, "cache-status"), hdr(res, "age"), fmtCounters(counts))
	}
}
