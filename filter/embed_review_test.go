//go:build !wasip1

package main

import (
	"github.com/modelcache/modelcache/e2e/modelsim"
	"strings"
	"testing"
)

// Guarantee: Cache-Status (RFC 9211) is truthful. An embeddings batch whose
// one item is too large to keep as an entry (its key holds the item's long
// text, so the entry passes max_entry_bytes while the answer does not) is
// stored nowhere (items.stored 0, items.refused 1), yet the response says
// "stored; ttl=3600" — and the identical request that follows misses and
// says "stored" again.
func TestEmbedReviewCacheStatusNotStoredWhenNoItemWasStored(t *testing.T) {
	hs := newHarness(t, strings.Replace(embConfig, `"ttl": "1h",`, `"ttl": "1h", "max_entry_bytes": 2048,`, 1))
	body := embReq([]string{strings.Repeat("long chunk ", 300)}, "")
	res := hs.post(0, "/v1/embeddings", body)
	if res.Status != 200 {
		t.Fatalf("status %d", res.Status)
	}
	stored, refused := hs.counter("modelcache_route.emb.items.stored"), hs.counter("modelcache_route.emb.items.refused")
	if stored != 0 || refused != 1 {
		t.Fatalf("test premise: items.stored %d, items.refused %d (want the item refused as too large)", stored, refused)
	}
	again := hs.post(1, "/v1/embeddings", body)
	expectCacheStatus(t, again, "fwd=miss") // nothing was stored indeed
	for _, r := range []struct {
		name, cs string
	}{{"first", hdr(res, "cache-status")}, {"second", hdr(again, "cache-status")}} {
		if strings.Contains(r.cs, "; stored") {
			t.Errorf("%s request: Cache-Status %q claims the answer was stored, but no item of it was (items.stored 0)", r.name, r.cs)
		}
	}
}

// Guarantee: model-version changes are honoured; a merged answer never
// includes another model's vector. README: "a new version reported by the
// upstream makes every older vector unreachable, even at equal dimensions",
// and an answer to a partial batch "refused … by the store (a version
// missing or moved …)" is replaced by the whole batch. Here the answer to
// a partial batch's missing items reports v2 while its cached item is
// v1's: the store takes it (version_changes counted), and the client gets
// the v1 vector merged with the v2 ones in one answer.
func TestEmbedReviewPartialBatchNeverMergesAnOlderVersionsVector(t *testing.T) {
	hs := newHarness(t, embConfig, withHTTPCalls())
	hs.post(0, "/v1/embeddings", embReq([]string{"cached"}, ""))
	if err := hs.sim.UpdateKnobs(func(k *modelsim.Knobs) { k.ModelVersion = "v2" }); err != nil {
		t.Fatal(err)
	}
	body := embReq([]string{"cached", "new 1", "new 2"}, "")
	res := hs.post(1, "/v1/embeddings", body)
	want, err := modelsim.ExpectedBody("v2", "/v1/embeddings", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	old := vectors(t, reference(t, body))
	got, exp := vectors(t, res.Body), vectors(t, want)
	if len(got) != len(exp) {
		t.Fatalf("%d vectors, want %d (Cache-Status %q)", len(got), len(exp), hdr(res, "cache-status"))
	}
	for i := range exp {
		if got[i] != exp[i] {
			t.Errorf("item %d: not the v2 model's vector (is v1's: %v); Cache-Status %q, cached-items %q, version_changes %d",
				i, got[i] == old[i], hdr(res, "cache-status"), hdr(res, "x-modelcache-cached-items"), hs.counter("modelcache.model_version_changes"))
		}
	}
}
