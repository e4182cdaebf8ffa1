//go:build !wasip1

package main

import (
	"testing"

	"github.com/modelcache/modelcache/e2e/modelsim"
	"github.com/tidwall/gjson"
)

// Review Z95. A model rollout to wider vectors: the cached items are the
// old model's (16 dimensions), the missing items of the first partial
// batch after the rollout come back at 3,072. mergeTooLarge judges the
// missing items' answer by the cached vector (about 300 bytes an item),
// so the batch is rewritten; its answer (about 1.2 MB) is held past
// max_entry_bytes to be replaced by the whole batch (a new version, new
// dimensions) and meets the proxy's buffer limit first: the client gets
// the proxy's 500 for a batch the model answers without the cache.
func TestEmbeddingsRolloutToWiderVectorsPartialBatchPassesWithinTheBufferLimit(t *testing.T) {
	for _, tc := range []struct {
		name, version string
	}{
		{"new version", "v2"},
		{"same version (model drift)", modelsim.DefaultModelVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, embConfig, withWorkers(1), withHTTPCalls())
			hs.post(0, "/v1/embeddings", embReq([]string{"cached"}, ""))
			// The rollout: the model now answers 3,072 dimensions.
			hs.sim = modelsim.New(modelsim.Options{Now: hs.clock.Now, EmbeddingDims: 3072,
				Defaults: modelsim.Knobs{ModelVersion: tc.version}})
			body := embReq(append([]string{"cached"}, chunks(0, 32)...), "")
			res := hs.post(0, "/v1/embeddings", body)
			calls := hs.sim.EmbeddingCalls()
			if res.Status != 200 {
				t.Fatalf("status %d (cache-status %q), upstream calls of %v items, body %.120s: want the batch's 200, as without the cache",
					res.Status, hdr(res, "cache-status"), callSizes(calls), res.Body)
			}
			if n := gjson.GetBytes(res.Body, "data.#").Int(); n != 33 {
				t.Fatalf("%d vectors, want 33", n)
			}
		})
	}
}

func callSizes(calls [][]string) []int {
	var out []int
	for _, c := range calls {
		out = append(out, len(c))
	}
	return out
}
