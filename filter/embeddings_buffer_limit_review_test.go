//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// Review Z92. A batch with repeated items and nothing cached was sent
// rewritten, each item once, with no cached vector to judge its answer's
// size by; its answer, over max_entry_bytes, was held on to its end to be
// replaced by the whole batch, and held past the proxy's buffer limit
// (1 MiB, Envoy's shipped per-connection limit, which the test host
// applies as Envoy does) it became the proxy's own 500: an answer that
// passes without the cache failed with it. 32 items twice at 3,072
// dimensions answer about 1.2 MB.
func TestEmbeddingsRepeatedItemsWithALargeAnswerPassWithinTheBufferLimit(t *testing.T) {
	hs := newHarness(t, embConfig)
	items := append(chunks(0, 32), chunks(0, 32)...)
	body := embReq(items, `,"dimensions":3072`)
	before := len(hs.sim.EmbeddingCalls())
	res := hs.post(0, "/v1/embeddings", body)
	calls := hs.sim.EmbeddingCalls()[before:]
	if res.Status != 200 {
		t.Fatalf("status %d (cache-status %q), %d upstream calls, body %.120s: want the batch's 200, as without the cache",
			res.Status, hdr(res, "cache-status"), len(calls), res.Body)
	}
	if got := gjson.GetBytes(res.Body, "data.#").Int(); got != 64 ||
		strings.Join(vectors(t, res.Body), "|") != strings.Join(vectors(t, reference(t, body)), "|") {
		t.Fatalf("%d vectors, not the uncached answer", got)
	}
	if len(calls) != 1 {
		t.Fatalf("%d upstream calls, want 1", len(calls))
	}
}
