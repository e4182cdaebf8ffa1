package cachecore

import (
	"slices"
	"testing"
	"time"
)

// Review Z236 (follow-up of Z234/Z235).

// Z234 skips the form-keyed digest of the keying tag for PerItem kinds:
// "A batch's items are keyed from every field whatever the lists say".
// That holds for key_fields only. An embeddings batch's items are keyed
// with the route's ignore_fields (parseEmbeddings: b.ignore is the
// route's selection's Ignore, from which only the form-keyed fields are
// taken back), so which of an embeddings route's ignore_fields are
// keyed anyway depends on the module's form-keyed list, exactly as on a
// chat route. Upgrades have grown that list (Z122: embed_dtype,
// endianness; Z215: output_dimension, output_dimensionality). A route
// with ignore_fields ["user","output_dimension"]: the module before
// Z215 filed the item of a request asking output_dimension 3 under the
// key of the item without it; after the upgrade, in shared data kept
// across it, the same route's tag is unchanged, so a request that asks
// no output_dimension (the model's full length) is served the 3-wide
// vector. Expected: the route's tag digests the form-keyed fields its
// ignore_fields names for embeddings too (as for every other kind), so
// the old module's item is never read.
func TestZ236EmbeddingsIgnoreFieldsFormKeyedGrowthServesOldModulesItem(t *testing.T) {
	const cfg = `{"upstream_cluster":"model","routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h",
	  "ignore_fields":["user","output_dimension"]}]}`
	store, clock := NewMemStore(), newFakeClock()
	hdr := [][2]string{{"content-type", "application/json"}}

	spec, _ := lookupKind(KindEmbeddings)
	saved := spec.formKeyed
	spec.formKeyed = slices.DeleteFunc(slices.Clone(saved), func(f string) bool {
		return f == "output_dimension" || f == "output_dimensionality"
	})
	old := New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(1)})
	spec.formKeyed = saved
	oldRoute := old.routeByName("emb")

	// The old module: a request asking 3 dimensions, answered so, stored.
	req := embRequest(old, oldRoute, `{"model":"e","input":["hello"],"output_dimension":3}`)
	if req.Bypassed() {
		t.Fatalf("setup: bypassed: %s", req.Reason)
	}
	if d := old.Lookup(req); d != Forward {
		t.Fatalf("setup: first lookup %v", d)
	}
	ans := []byte(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2,0.3]}],"model":"e","usage":{"prompt_tokens":1,"total_tokens":1}}`)
	adm := old.AdmitBody(req, hdr, ans)
	if adm.Reason != ReasonNone {
		t.Fatalf("setup: admission: %s", adm.Reason)
	}
	if res := old.Store(req, 200, hdr, ans, adm, 1); res.Reason != ReasonNone || res.ItemsStored != 1 {
		t.Fatalf("setup: store: %+v", res)
	}
	// (The old module itself keys the two requests alike: the item of a
	// request without output_dimension is that entry.)
	if r := embRequest(old, oldRoute, `{"model":"e","input":["hello"]}`); old.Lookup(r) != Serve {
		t.Fatalf("setup: the old module keys output_dimension apart (it is not ignored)")
	}

	// The upgraded module over the same shared data.
	clock.Advance(time.Second)
	now := New(mustParse(t, cfg), Options{Store: store, Now: clock.Now, Rand: seededRand(2)})
	r := embRequest(now, now.routeByName("emb"), `{"model":"e","input":["hello"]}`)
	if r.Bypassed() {
		t.Fatalf("setup: bypassed: %s", r.Reason)
	}
	if d := now.Lookup(r); d == Serve {
		t.Fatalf("after a module upgrade that form-keys output_dimension, an embeddings route whose ignore_fields names it "+
			"kept its keying tag (Z234 skips the form-keyed digest for per-item kinds), so a request asking no "+
			"output_dimension is served the 3-wide vector the old module filed for output_dimension 3 (status %s)", r.Status)
	}
}
