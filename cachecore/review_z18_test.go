package cachecore

import (
	"testing"
	"time"
)

// Review Z18 (stop 72): the embeddings variant of
// TestEntryPurgeRefusesAShadowAnswerThatInvalidatesTheModel. A shadow of a
// batch hit, in flight across an entry purge of one of its items, whose
// divergence invalidates the model: PrepareShadowStore rebuilds the item
// keys under the new generation before storeEmbeddings runs, so the new
// per-item purgedSince check (keys rebuilt in storeEmbeddings only) never
// looks at the purged key's tombstone.
func TestEntryPurgeRefusesAShadowBatchItemThatInvalidatesTheModel(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"u","purge":{"path":"/purge","token":"0123456789abcdef"},"routes":[{"name":"emb","kind":"embeddings",`+
		`"path_prefix":"/v1/embeddings","ttl":"1h","shadow":{"sample":1,"min_samples":1,"max_divergence":0.5,"min_tenants":1}}]}`)
	batch := `{"model":"e","input":["aa","bbbb"]}`
	first, _ := env.lookup("emb", alice, batch)
	env.fill(first, jsonCT, string(embAnswer([]string{"aa", "bbbb"})), 10)
	req, d := env.lookup("emb", alice, batch)
	if d != Serve {
		t.Fatal("setup: batch not a hit:", d)
	}
	acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/embeddings"))
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("shadow: %s", actionKinds(acts))
	}
	env.clock.Advance(time.Millisecond)
	purge := `{"path":"/v1/embeddings","headers":{"authorization":"Bearer sk-alice"},"body":{"model":"e","input":"aa"}}`
	if res, err := env.cache.Purge([]byte(purge), ""); err != nil || res.Scope != "entry" {
		t.Fatalf("purge: %+v %v", res, err)
	}
	env.clock.Advance(time.Millisecond)
	// Orthogonal vectors: cosine 0, a divergence that invalidates the model.
	fresh := `{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":[-2.5,2]},` +
		`{"object":"embedding","index":1,"embedding":[-4.5,4]}]}`
	out := acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(fresh)})
	invalidated := false
	for _, a := range out {
		if a.Kind == ActCount && a.Event == EvInvalidation {
			invalidated = true
		}
	}
	if !invalidated {
		t.Fatalf("setup: the shadow did not invalidate the model: %s", actionKinds(out))
	}
	if _, d := env.lookup("emb", alice, `{"model":"e","input":["bbbb"]}`); d != Serve {
		t.Fatalf("setup (control): the unpurged item of the replacement was not stored: %v", d)
	}
	if req2, d := env.lookup("emb", alice, `{"model":"e","input":["aa"]}`); d == Serve {
		_, _, body := env.cache.HitResponse(req2)
		t.Fatalf("the shadow's vector of \"aa\", asked for before its entry purge, was stored after it and is served: %s", body)
	}
}

// Review Z18 (stop 72): Tier.atLeast's new sign rule reads a score whose exponent is
// too large to reason about by its sign alone; a negative zero with such
// an exponent is exactly 0, at least a tier's min of 0 (README: "A score
// is compared with a min by its exact value"), as "-0" itself is.
func TestNegativeZeroWithAHugeExponentMeetsAZeroTier(t *testing.T) {
	env := newEnv(t, `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,`+
		`"confidence":{"path":"score","tiers":[{"min":0.5,"ttl":"1h"},{"min":0,"ttl":"10m"}]}}]}`)
	for _, score := range []string{"-0", "-0e-5", "0e-1099511627777", "-0e-1099511627777", "-0.0e+1099511627777"} {
		req := &Request{Route: env.route("cls")}
		a := env.cache.AdmitBody(req, jsonCT, []byte(`{"label":"cat","score":`+score+`}`))
		if a.Reason != ReasonNone || a.TTL != 10*time.Minute {
			t.Errorf("score %s (exactly 0, the lowest tier's min): %s ttl %v, want stored for 10m", score, verdict(a.Reason), a.TTL)
		}
	}
}
