//go:build !wasip1

package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/e2e/modelsim"
	"github.com/modelcache/modelcache/wasmhost"
)

// embTenantExchange starts an embeddings request of one tenant on worker w.
func embTenantExchange(hs *harness, w int, body string) *wasmhost.Exchange {
	return hs.h.StartExchange(w, wasmhost.Request{
		Headers: [][2]string{{":method", "POST"}, {":path", "/v1/embeddings"}, {":authority", "models"}, {":scheme", "http"},
			{"content-type", "application/json"}, {"content-length", strconv.Itoa(len(body))}, {"authorization", "Bearer tenant-a"}},
		Body: []byte(body),
	})
}

// README: "Identical whole batches in flight at the same time coalesce";
// every item is its own entry, keyed by the item. An embeddings route
// that inherited a key_fields list written for chat routes (accepted: the
// parser asks an embeddings route only for the model field) keyed its
// whole-request lease without "input", so two batches with no item in
// common coalesced: the second waited for the first's upstream answer
// (review Z5, stop 72). "input" is now keyed whatever key_fields says.
func TestEmbeddingsBatchesWithNoItemInCommonNeverCoalesce(t *testing.T) {
	cfg := `{
  "upstream_cluster": "model",
  "defaults": {"key_fields": ["model", "messages"]},
  "routes": [
    {"name": "emb", "kind": "embeddings", "path_prefix": "/v1/embeddings", "ttl": "1h"}
  ]
}`
	hs := newHarness(t, cfg)
	hs.holdUpstream()
	a := embTenantExchange(hs, 0, embReq(chunks(0, 4), ""))
	b := embTenantExchange(hs, 1, embReq(chunks(100, 104), ""))
	hs.h.Drain()
	if n := len(hs.h.PendingUpstream()); n != 2 {
		t.Fatalf("%d upstream calls for two batches with no item in common, want 2 (coalesce.followers = %d): "+
			"an unrelated batch waits for another's answer", n, hs.counter("modelcache_route.emb.coalesce.followers"))
	}
	for _, u := range hs.h.PendingUpstream() {
		hs.answer(u)
	}
	hs.h.Drain()
	for _, ex := range []*wasmhost.Exchange{a, b} {
		if !ex.Done() || ex.Response().Status != 200 {
			t.Fatal(ex.State())
		}
	}
}

// The same defect, where it costs a client its answer: batches that the
// model fails (a 500 for something in them) lead in turn, and a batch
// that shares none of their items, never sent upstream, is answered with
// their failure (502 leader_failed) — README: "If the leader fails ...
// nobody else gets its answer".
func TestEmbeddingsBatchNeverGetsAnUnrelatedBatchsFailure(t *testing.T) {
	cfg := `{
  "upstream_cluster": "model",
  "defaults": {"key_fields": ["model", "messages"]},
  "routes": [
    {"name": "emb", "kind": "embeddings", "path_prefix": "/v1/embeddings", "ttl": "1h"}
  ]
}`
	hs := newHarness(t, cfg)
	hs.holdUpstream()
	var bad []*wasmhost.Exchange
	for i := 0; i < 3; i++ {
		bad = append(bad, embTenantExchange(hs, i%2, embReq([]string{"poison " + strconv.Itoa(i)}, "")))
	}
	good := embTenantExchange(hs, 1, embReq([]string{"a good item"}, ""))
	hs.h.Drain()
	for round := 0; round < 10; round++ {
		pending := hs.h.PendingUpstream()
		if len(pending) == 0 {
			break
		}
		for _, u := range pending {
			if strings.Contains(string(u.Body), "poison") {
				u.Respond(500, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":{"message":"boom"}}`))
			} else {
				hs.answer(u)
			}
		}
		hs.h.Drain()
	}
	_ = bad
	if !good.Done() || good.Response().Status != 200 {
		t.Fatalf("a batch sharing no item with the failing ones: %s, status %d, cache-status %q: %.200s",
			good.State(), good.Response().Status, hdr(good.Response(), "cache-status"), good.Response().Body)
	}
}

// A batch with a repeated item and nothing cached goes upstream
// rewritten, each distinct item once. No cached vector takes part in its
// answer, so whatever version that answer reports there is nothing to mix
// it with: it should be stored and answered from that one call.
func TestEmbeddingsBatchWithRepeatsAfterAVersionSwitchIsComputedOnce(t *testing.T) {
	hs := newHarness(t, embConfig, withHTTPCalls())
	// Another item cached under v1; the model then moves to v2.
	hs.post(0, "/v1/embeddings", embReq([]string{"other"}, ""))
	if err := hs.sim.UpdateKnobs(func(k *modelsim.Knobs) { k.ModelVersion = "v2" }); err != nil {
		t.Fatal(err)
	}
	before := len(hs.sim.EmbeddingCalls())
	body := embReq([]string{"x", "y", "x"}, "")
	res := hs.post(0, "/v1/embeddings", body)
	calls := hs.sim.EmbeddingCalls()[before:]
	want, err := modelsim.ExpectedBody("v2", "/v1/embeddings", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 200 || strings.Join(vectors(t, res.Body), "|") != strings.Join(vectors(t, want), "|") {
		t.Fatalf("status %d: %.200s", res.Status, res.Body)
	}
	if len(calls) != 1 {
		t.Fatalf("upstream calls %v (items.refetch = %d, items.stored = %d, cache-status %q): the model computed the batch %d times",
			calls, hs.counter("modelcache_route.emb.items.refetch"), hs.counter("modelcache_route.emb.items.stored"), hdr(res, "cache-status"), len(calls))
	}
	if cs := hdr(res, "cache-status"); !strings.Contains(cs, "stored") {
		t.Fatalf("cache-status %q: its items were stored", cs)
	}
	again := hs.post(0, "/v1/embeddings", body)
	if n := len(hs.sim.EmbeddingCalls()) - before; n != 1 || !strings.Contains(hdr(again, "cache-status"), "hit") {
		t.Fatalf("the same batch again: %d calls in all, cache-status %q", n, hdr(again, "cache-status"))
	}
}
