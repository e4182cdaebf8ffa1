package cachecore

import (
	"fmt"
	"strings"
	"testing"
)

// TestReadmeEmbeddingsElevenItemsBeside100KiBNotSplit (the review's ten, of
// the README then: README now says 11, the smallest that does not fit): README, Embeddings,
// promises that a batch whose items' keys would be too large together is
// not split into items (bypass.embedding_input), and gives as its example
// "10 items beside a 100 KiB extra field do not [fit]". The code's bound is
// distinct items × (namespace + params) > 1 MiB, and 10 × (100 KiB + a
// namespace of about a hundred bytes) is about 1,000 KiB, under 1 MiB: such
// a batch is split, each of its 10 item keys holding the 100 KiB field.
// Expected (as README says): the batch bypasses the cache with
// embedding_input (or the README's example is corrected, e.g. to 11
// items, and this test with it).
func TestReadmeEmbeddingsElevenItemsBeside100KiBNotSplit(t *testing.T) {
	c, r := newEmbCache(t) // default max_request_bytes (128 KiB): the body fits
	items := make([]string, 11)
	for i := range items {
		items[i] = fmt.Sprintf(`"item %d"`, i)
	}
	body := `{"model":"e","input":[` + strings.Join(items, ",") + `],"extra":"` + strings.Repeat("x", 100<<10) + `"}`
	if len(body) > c.cfg.MaxRequestBytes {
		t.Fatalf("body of %d bytes over max_request_bytes %d: the test would not reach the split", len(body), c.cfg.MaxRequestBytes)
	}
	req := embRequest(c, r, body)
	if !req.Bypassed() || req.Reason != ReasonEmbeddingInput {
		shared := req.namespaceLen() + 4
		if req.batch != nil {
			shared += len(req.batch.params)
		}
		t.Errorf("11 items beside a 100 KiB field: bypassed=%v reason=%q (shared part %d bytes, × 11 = %d, bound %d); README says such a batch is not split (bypass.embedding_input)",
			req.Bypassed(), req.Reason, shared, 11*shared, maxBatchKeyPrefixBytes)
	}
}
