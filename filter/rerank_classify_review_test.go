//go:build !wasip1

package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z139. A reranker's answer to the same request is the same on every
// call: a server that ignores top_n (returns every document), numbers its
// results from 1, or reports a score as null does so on each call. The
// admission check refuses such answers (refused.rerank_results,
// rerank_index, rerank_score), rightly, but counts them as failures that
// may pass rather than lasting refusals: a burst of identical requests is
// led one after another into the same answer, and after max_retries+1
// leaders the followers still waiting are answered 502 leader-failed,
// although the model answered every call 200. Without the cache every
// client gets its 200. Review Z104 fixed this very stampede for
// rerank_document and Z130 for chat's "fewer choices than n" (bad_shape, a
// server that ignores n): a reranker that ignores top_n is the same case.
// Expected: every client gets the model's 200 (the key goes hit-for-miss).
func TestRerankRefusedShapeBurstGetsNoLeaderFailed(t *testing.T) {
	for _, tc := range []struct{ name, req, answer, refused string }{
		{
			// top_n ignored: every document ranked (a server without top_n).
			name:    "top_n ignored",
			req:     `{"model":"bge-reranker","query":"what is a cache","top_n":1,"documents":["a cache keeps answers","bananas"]}`,
			answer:  `{"model":"bge-reranker","results":[{"index":0,"relevance_score":0.91},{"index":1,"relevance_score":0.02}],"usage":{"total_tokens":9}}`,
			refused: "rerank_results",
		},
		{
			// Results numbered from 1 (a wrapper's off-by-one): index 2 names no document.
			name:    "one-based index",
			req:     `{"model":"bge-reranker","query":"what is a cache","documents":["a cache keeps answers","bananas"]}`,
			answer:  `{"model":"bge-reranker","results":[{"index":1,"relevance_score":0.91},{"index":2,"relevance_score":0.02}]}`,
			refused: "rerank_index",
		},
		{
			// A score the server could not compute, as null.
			name:    "null score",
			req:     `{"model":"bge-reranker","query":"what is a cache","documents":["a cache keeps answers",""]}`,
			answer:  `{"model":"bge-reranker","results":[{"index":0,"relevance_score":0.91},{"index":1,"relevance_score":null}]}`,
			refused: "rerank_score",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			burstOfOneAnswer(t, newHarness(t, foreignConfig, withWorkers(2)), "rerank", "/v1/rerank", tc.req, tc.answer, tc.refused, "the model")
		})
	}
}

// Review Z139. A classifier answers the same input the same way every
// time. A classify route's validation rule (README: "a classifier route
// wants at least" a rule on its label) that refuses a label the model gives
// for some input — here one_of ["positive","negative"] and the model says
// "neutral" — refuses it on every call, yet counts as a failure that may
// pass: a burst of identical requests is led one by one into the same
// answer and the followers left after max_retries+1 leaders get 502
// leader-failed, although the model answered every call 200. Expected:
// every client gets the model's 200, as for low_confidence (lasting).
func TestClassifyValidationRefusalBurstGetsNoLeaderFailed(t *testing.T) {
	classifyBurst(t, `{"label":"neutral","score":0.97}`, "validation")
}

// Review Z139. A Python classifier server (Flask's jsonify writes NaN) that
// scores an input NaN (a softmax over an empty input) does so on every
// call; its clients' JSON parsers (Python's, the default) read it. The cache
// refuses it (malformed_json), rightly, but as a failure that may pass: the
// body arrived whole (its content-length), so a retry gets the same bytes,
// yet a burst's followers get 502 leader-failed after max_retries+1 leaders.
// Expected: every client gets the model's 200.
func TestClassifyNaNScoreBurstGetsNoLeaderFailed(t *testing.T) {
	classifyBurst(t, `{"label":"positive","score":NaN}`, "malformed_json")
}

// classifyBurst sends ten identical classify requests at once and answers
// every upstream call with answer (200), which the route refuses for
// refused; every client must get a 200.
func classifyBurst(t *testing.T, answer, refused string) {
	t.Helper()
	const cfg = `{"upstream_cluster": "model", "routes": [
	  {"name": "cls", "kind": "classify", "path_exact": "/predict", "ttl": "60s",
	   "validate": [{"path": "label", "type": "string", "one_of": ["positive", "negative"]}],
	   "confidence": {"path": "score", "tiers": [{"min": 0.5, "ttl": "60s"}]},
	   "coalesce": {"max_wait": "10s", "max_retries": 2, "hit_for_miss": "30s"}}]}`
	const req = `{"model":"sentiment-1","inputs":"it is a chair"}`
	burstOfOneAnswer(t, newHarness(t, cfg, withWorkers(2)), "cls", "/predict", req, answer, refused, "the classifier")
}

// burstOfOneAnswer sends ten identical requests for path at once over two
// workers of hs and answers every upstream call with answer (200), which
// route refuses for refused: every client must get a 200 (who: whose
// answer, for the message).
func burstOfOneAnswer(t *testing.T, hs *harness, route, path, req, answer, refused, who string) {
	t.Helper()
	hs.holdUpstream()
	var exs []*wasmhost.Exchange
	for i := 0; i < 10; i++ {
		exs = append(exs, hs.h.StartExchange(i%2, foreignRequest(path, req)))
	}
	hs.h.Drain()
	calls := 0
	for round := 0; round < 50; round++ {
		pending := hs.h.PendingUpstream()
		if len(pending) == 0 {
			break
		}
		for _, u := range pending {
			u.Respond(200, [][2]string{{"content-type", "application/json"}, {"content-length", strconv.Itoa(len(answer))}}, []byte(answer))
			calls++
		}
		hs.h.Drain()
	}
	if n := hs.counter("modelcache_route." + route + ".refused." + refused); n == 0 {
		t.Fatalf("setup: refused.%s not counted: the answer was judged otherwise", refused)
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
		t.Fatalf("%s answered all %d calls 200, yet %d of 10 clients got a failure "+
			"(refused.%s %d, requests.leader_failed %d), e.g. %q",
			who, calls, len(bad), refused, hs.counter("modelcache_route."+route+".refused."+refused),
			hs.counter("modelcache_route."+route+".requests.leader_failed"), bad[0])
	}
}
