//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
	"github.com/tidwall/gjson"
)

// Review Z143's suspicion: a partly cached batch's merged answer is written
// into the held answer's buffer (ActReplaceBody). The missing items' answer
// is bounded by max_entry_bytes (mergeTooLarge), the merged one is not:
// 61 cached items and 3 new at 3,072 dimensions merge to about 2.4 MB, past
// Envoy's buffer limit (1 MiB, as the test host applies it), which made the
// client's answer Envoy's 500. Expected: the batch's 200 with every vector,
// as without the cache.
func TestEmbeddingsMergedAnswerLargerThanTheBufferLimitPasses(t *testing.T) {
	hs := newHarness(t, embConfig)
	// Cached three at a time: each batch's answer (about 110 KB) within
	// max_entry_bytes (128 KiB).
	for i := 0; i < 61; i += 3 {
		first := embReq(chunks(i, min(i+3, 61)), `,"dimensions":3072`)
		if res := hs.post(0, "/v1/embeddings", first); res.Status != 200 {
			t.Fatalf("setup: status %d", res.Status)
		}
	}
	// The answer comes in two chunks, so that it is held in the buffer
	// Envoy limits (one chunk with its end is not).
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		status, headers, b, _ := hs.simulateAbortable(u.Headers, u.Body)
		u.RespondChunks(status, headers, [][]byte{b[:len(b)/2], b[len(b)/2:]})
		return true
	}
	body := embReq(chunks(0, 64), `,"dimensions":3072`)
	res := hs.post(0, "/v1/embeddings", body)
	if res.Status != 200 {
		t.Fatalf("status %d (cache-status %q, %d bytes %.120s): want the batch's 200, as without the cache",
			res.Status, hdr(res, "cache-status"), len(res.Body), res.Body)
	}
	if got := gjson.GetBytes(res.Body, "data.#").Int(); got != 64 ||
		strings.Join(vectors(t, res.Body), "|") != strings.Join(vectors(t, reference(t, body)), "|") {
		t.Fatalf("%d vectors, not the uncached answer", got)
	}
	if cs := hdr(res, "cache-status"); !strings.Contains(cs, "fwd=partial") {
		t.Errorf("cache-status %q, want fwd=partial", cs)
	}
	if hdr(res, "x-modelcache-cached-items") != "61/64" {
		t.Errorf("cached items %q, want 61/64", hdr(res, "x-modelcache-cached-items"))
	}
}
