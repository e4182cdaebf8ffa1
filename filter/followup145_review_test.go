//go:build !wasip1

package main

import "testing"

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
			burstOfOneAnswer(t, newHarness(t, cfg, withWorkers(2)), "emb", "/v1/embeddings", tc.req, tc.answer, tc.refused, "the model")
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
