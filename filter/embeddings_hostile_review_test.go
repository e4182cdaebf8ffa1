//go:build !wasip1

package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// ignoreDimensions answers as a server that does not support "dimensions"
// and silently ignores it (llama.cpp, LocalAI and other OpenAI-compatible
// servers do): the model's own dimension comes back.
func ignoreDimensions(hs *harness) {
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		var m map[string]any
		if json.Unmarshal(u.Body, &m) != nil {
			return false
		}
		delete(m, "dimensions")
		b, _ := json.Marshal(m)
		status, h, out := hs.simulate(u.Headers, b)
		var kept [][2]string
		for _, kv := range h {
			if kv[0] != "content-length" {
				kept = append(kept, kv)
			}
		}
		u.Respond(status, kept, out)
		return true
	}
}

// Guarantee (README "Embeddings: one entry per item"; RATIONALE "That move
// is model-wide even when one tenant's batch finds the drift"): a model's
// vectors are all invalidated only when a drift is found — vectors of a new
// dimension beside cached ones of the old. A batch with nothing cached, whose
// answer merely does not have the dimension the request asked for, is
// refused and nothing else (the same batch without a repeated item is).
// But a batch rewritten only to send a repeated item once goes through
// Refetch(ReasonDimensions), which calls modelDrifted: PurgeModel of the
// whole model, every tenant's vectors. Any client of a server that ignores
// "dimensions" (or a hostile tenant) wipes the model's cache for all
// tenants at will, with one request.
func TestRepeatedItemWithIgnoredDimensionsIsNoDrift(t *testing.T) {
	hs := newHarness(t, embConfig, withHTTPCalls())
	ignoreDimensions(hs)
	// Tenant A's vectors, cached.
	aBody := embReq([]string{"tenant a chunk 1", "tenant a chunk 2"}, "")
	hs.post(0, "/v1/embeddings", aBody)
	expectCacheStatus(t, hs.post(1, "/v1/embeddings", aBody), "hit")

	// Control: tenant B's batch with a dimension the server ignores, no
	// repeated item: refused, nothing else happens.
	one := hs.post(0, "/v1/embeddings", embReq([]string{"b item"}, `,"dimensions":8`), "authorization", "Bearer tenant-b")
	if one.Status != 200 {
		t.Fatalf("control request: %d %s", one.Status, one.Body)
	}
	expectCacheStatus(t, hs.post(1, "/v1/embeddings", aBody), "hit")

	// The same with its item repeated (as RAG batches repeat boilerplate
	// chunks): rewritten to send it once, and the answer's dimension is
	// then taken for a drift of the model.
	two := hs.post(0, "/v1/embeddings", embReq([]string{"b item", "b item"}, `,"dimensions":8`), "authorization", "Bearer tenant-b")
	if two.Status != 200 {
		t.Fatalf("repeated-item request: %d %s", two.Status, two.Body)
	}
	res := hs.post(1, "/v1/embeddings", aBody)
	if drift := hs.counter("modelcache_route.emb.model_drift"); drift != 0 || !strings.Contains(hdr(res, "cache-status"), "hit") {
		t.Fatalf("tenant B's batch (a repeated item, dimensions the server ignores) invalidated tenant A's cached vectors: model_drift=%d, tenant A now gets Cache-Status %q", drift, hdr(res, "cache-status"))
	}
}
