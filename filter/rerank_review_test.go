//go:build !wasip1

package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z104. A rerank request whose documents have no text (Cohere v1's
// documents as objects ranked by rank_fields; a multimodal reranker's
// image documents) with return_documents: the model returns each document
// as the client sent it, and README says "a document without text cannot
// be compared, so such an answer is not stored" (refused.rerank_document).
// That refusal is certain to recur — the cache knows it from the request
// alone — yet it is judged "invalid output", a failure that may pass: a
// burst of identical requests is led one after another into the same
// answer, and after max_retries+1 leaders the followers still waiting are
// answered 502 leader-failed, although the model answered every call 200.
// Without the cache every client gets its 200. Review Z33 fixed this same
// stampede for another API's shape (foreign_shape, now lasting); a
// ranking the cache can never check is no different.
func TestRerankUncheckableDocumentsBurstGetsNoLeaderFailed(t *testing.T) {
	for _, tc := range []struct{ name, req, answer string }{
		{
			name: "cohere rank_fields",
			req: `{"model":"rerank-english-v3.0","query":"what is a cache","return_documents":true,"rank_fields":["title","body"],` +
				`"documents":[{"title":"caches","body":"a cache keeps answers"},{"title":"fruit","body":"bananas"}]}`,
			answer: `{"id":"r1","results":[` +
				`{"index":0,"relevance_score":0.91,"document":{"title":"caches","body":"a cache keeps answers"}},` +
				`{"index":1,"relevance_score":0.02,"document":{"title":"fruit","body":"bananas"}}],"meta":{"api_version":{"version":"1"}}}`,
		},
		{
			name: "image documents",
			req: `{"model":"jina-reranker-m0","query":"a cat","return_documents":true,` +
				`"documents":[{"image":"https://example.com/cat.png"},{"image":"https://example.com/dog.png"}]}`,
			answer: `{"model":"jina-reranker-m0","results":[` +
				`{"index":0,"relevance_score":0.88,"document":{"image":"https://example.com/cat.png"}},` +
				`{"index":1,"relevance_score":0.11,"document":{"image":"https://example.com/dog.png"}}],"usage":{"total_tokens":9}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, foreignConfig, withWorkers(2))
			hs.holdUpstream()
			var exs []*wasmhost.Exchange
			for i := 0; i < 10; i++ {
				exs = append(exs, hs.h.StartExchange(i%2, foreignRequest("/v1/rerank", tc.req)))
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
					"(refused.rerank_document %d, requests.leader_failed %d), e.g. %q",
					calls, len(bad), hs.counter("modelcache_route.rerank.refused.rerank_document"),
					hs.counter("modelcache_route.rerank.requests.leader_failed"), bad[0])
			}
		})
	}
}
