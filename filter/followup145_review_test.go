//go:build !wasip1

package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z145 (follow-up of Z139's refusedWhole). An embeddings server that
// ignores "dimensions" (asked 2, it answers its model's full size) or that
// embeds only the first input of a batch answers every call of the same
// request so: the answer is refused (refused.dimensions, refused.item_count)
// on each call, rightly, yet counts as a failure that may pass, and is not
// marked refusedWhole either (leadStatus marks only validation,
// malformed_json and empty_content): a burst of identical requests is led
// one by one into the same answer, and the followers left after
// max_retries+1 leaders get 502 leader-failed although the model answered
// every call 200 — the stampede Z139 mended for rerank's top_n (made
// lasting) and for a classifier's refused label (refusedWhole).
// Expected: every client gets the model's 200.
func TestEmbeddingsRefusedShapeBurstGetsNoLeaderFailed(t *testing.T) {
	const cfg = `{"upstream_cluster": "model", "routes": [
	  {"name": "emb", "kind": "embeddings", "path_exact": "/v1/embeddings", "ttl": "60s",
	   "coalesce": {"max_wait": "10s", "max_retries": 2, "hit_for_miss": "30s"}}]}`
	for _, tc := range []struct{ name, req, answer, refused string }{
		{
			// A server without "dimensions": the model's own size, every time.
			name:    "dimensions ignored",
			req:     `{"model":"e5","input":["a cache keeps answers","bananas"],"dimensions":2}`,
			answer:  `{"object":"list","model":"e5","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2,0.3]},{"object":"embedding","index":1,"embedding":[0.4,0.5,0.6]}]}`,
			refused: "dimensions",
		},
		{
			// A server that embeds a batch's first input only.
			name:    "first input only",
			req:     `{"model":"e5","input":["a cache keeps answers","bananas"]}`,
			answer:  `{"object":"list","model":"e5","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2,0.3]}]}`,
			refused: "item_count",
		},
		{
			// A JavaScript server's JSON.stringify writes a NaN element as
			// null: every time, for this input.
			name:    "null element",
			req:     `{"model":"e5","input":["a cache keeps answers","bananas"]}`,
			answer:  `{"object":"list","model":"e5","data":[{"object":"embedding","index":0,"embedding":[0.1,null,0.3]},{"object":"embedding","index":1,"embedding":[0.4,0.5,0.6]}]}`,
			refused: "bad_vector",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, cfg, withWorkers(2))
			hs.holdUpstream()
			var exs []*wasmhost.Exchange
			for i := 0; i < 10; i++ {
				exs = append(exs, hs.h.StartExchange(i%2, foreignRequest("/v1/embeddings", tc.req)))
			}
			hs.h.Drain()
			calls := 0
			for round := 0; round < 50; round++ {
				pending := hs.h.PendingUpstream()
				if len(pending) == 0 {
					break
				}
				for _, u := range pending {
					u.Respond(200, [][2]string{{"content-type", "application/json"}, {"content-length", strconv.Itoa(len(tc.answer))}}, []byte(tc.answer))
					calls++
				}
				hs.h.Drain()
			}
			if n := hs.counter("modelcache.emb.refused." + tc.refused); n == 0 {
				t.Fatalf("setup: refused.%s not counted: the answer was judged otherwise", tc.refused)
			}
			var bad []string
			for i, ex := range exs {
				if !ex.Done() {
					t.Fatalf("exchange %d stuck: %s", i, ex.State())
				}
				r := ex.Response()
				if r.Status != 200 || strings.Contains(hdr(r, "cache-status"), "leader-failed") {
					bad = append(bad, strconv.Itoa(r.Status)+" "+hdr(r, "cache-status"))
				}
			}
			if len(bad) > 0 {
				t.Fatalf("the model answered all %d calls 200, yet %d of 10 clients got a failure "+
					"(refused.%s %d, requests.leader_failed %d), e.g. %q",
					calls, len(bad), tc.refused, hs.counter("modelcache.emb.refused."+tc.refused),
					hs.counter("modelcache.emb.requests.leader_failed"), bad[0])
			}
		})
	}
}

// Review Z145 (follow-up of Z139's refusedWhole). A server whose JSON
// writer repeats a member (a hand-built body: "score" written twice) does
// so on every answer, as a Python server that writes NaN does: the answer
// arrived whole with a 200 and is refused for what it says
// (refused.duplicate_key). Z139 marked malformed_json refusals
// refusedWhole, so followers past max_retries go upstream, but leadStatus
// leaves duplicate_key out: the burst's followers still get 502
// leader-failed although the classifier answered every call 200.
// Expected: every client gets the model's 200.
func TestClassifyDuplicateMemberBurstGetsNoLeaderFailed(t *testing.T) {
	classifyBurst(t, `{"label":"positive","score":0.97,"score":0.97}`, "duplicate_key")
}
