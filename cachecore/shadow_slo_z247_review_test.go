package cachecore

import (
	"testing"
)

// Review Z247. README (Shadow comparison): "`numeric` within `tolerance`
// (these two compare values with no number in them exactly ...)". A
// compared value that holds numbers and text — a prediction's label beside
// its score, a KServe v2 BYTES output beside its shape — is compared by its
// numbers alone: numbers() flattens the value and drops every string. A
// model whose label flipped from "cat" to "dog" at the same score counts as
// an agreement, so the shadow never sees that drift. Expected: the text in
// a value is compared exactly, as in a value with no number; the answers
// diverge.
func TestZ247ShadowNumericIgnoresTextBesideNumbers(t *testing.T) {
	for _, cmp := range []string{`"compare":"numeric","tolerance":0.001`, `"compare":"cosine"`} {
		cfg := `{"upstream_cluster":"u","routes":[{"name":"j","kind":"json","path_exact":"/predict","shared":true,` +
			`"shadow":{"sample":1,"min_samples":1,"min_tenants":1,` + cmp + `,"paths":["predictions"]}}]}`
		const q = `{"model":"clf","instances":[{"text":"a small furry animal"}]}`
		const cached = `{"predictions":[{"label":"cat","score":0.91}]}`
		const fresh = `{"predictions":[{"label":"dog","score":0.91}]}`
		env := newEnv(t, cfg)
		req, _ := env.lookup("j", nil, q)
		env.fill(req, jsonCT, cached, 10)
		hit, d := env.lookup("j", nil, q)
		if d != Serve {
			t.Fatalf("%s: setup: not a hit: %v", cmp, d)
		}
		if agree, ok := env.cache.compareFresh(hit, jsonCT, []byte(fresh)); ok && agree {
			t.Errorf("%s: cached label \"cat\", fresh label \"dog\" (same score) counted as an agreement: "+
				"the text beside a number is never compared, so a changed answer is never seen", cmp)
		}
	}
}

// Review Z247. numbers() flattens an object's values in the order its
// members are written, so the numeric and cosine comparators find two
// answers with the same members in another order unequal: {"cat":0.9,
// "dog":0.1} against {"dog":0.1,"cat":0.9} pairs 0.9 with 0.1. JSON member
// order carries no meaning (the exact comparator, jsonEqual, and text,
// which canonicalises, ignore it); a deterministic model whose server
// writes a map in another order (a hash map, another replica) diverges on
// every sample and has its entries invalidated for nothing (as review Z184
// found for stamped ids). Expected: the same members, reordered, agree.
func TestZ247ShadowNumericMemberOrderIsADivergence(t *testing.T) {
	for _, cmp := range []string{`"compare":"numeric","tolerance":0.001`, `"compare":"cosine"`} {
		cfg := `{"upstream_cluster":"u","routes":[{"name":"j","kind":"json","path_exact":"/predict","shared":true,` +
			`"shadow":{"sample":1,"min_samples":1,"min_tenants":1,` + cmp + `,"paths":["scores"]}}]}`
		const q = `{"model":"clf","instances":[{"text":"a small furry animal"}]}`
		const cached = `{"scores":{"cat":0.9,"dog":0.1}}`
		const fresh = `{"scores":{"dog":0.1,"cat":0.9}}`
		env := newEnv(t, cfg)
		req, _ := env.lookup("j", nil, q)
		env.fill(req, jsonCT, cached, 10)
		hit, d := env.lookup("j", nil, q)
		if d != Serve {
			t.Fatalf("%s: setup: not a hit: %v", cmp, d)
		}
		if agree, ok := env.cache.compareFresh(hit, jsonCT, []byte(fresh)); ok && !agree {
			t.Errorf("%s: the same scores with their members in another order counted as a divergence", cmp)
		}
	}
}

// Review Z247. README (Shadow comparison, Automatic invalidation): "The
// diverged entry is replaced by the fresh answer at once if it passes
// admission ...; if it does not (low confidence, a rule, its size), this
// proxy drops the diverged entry instead, if its key still holds that one,
// so that it is not served here for the rest of its ttl". And (Embeddings)
// vectors of a new dimension under an unchanged version are model drift.
// A shadow of a wholly cached embeddings batch whose fresh answer has a new
// dimension is a divergence (review Z43) that admission refuses to store
// (ReasonDimensions), but Shadow's drop is skipped for batches
// (req.batch == nil), and no model_drift purge is made either: the same
// old-dimension vectors are served on here, hit after hit, until enough
// samples (min_samples, and min_tenants on a tenant route) invalidate the
// model. On the request path one such answer purges the model at once.
// Expected: the diverged items are not served again after the comparison.
func TestZ247ShadowBatchDivergedItemsRefusedAreServedOn(t *testing.T) {
	env, batch := shadowEmbeddingsEnv(t, "", []string{"[1,0,0]", "[0,1,0]"})
	fresh := []byte(`{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":[1,0,0,0]},` +
		`{"object":"embedding","index":1,"embedding":[0,1,0,0]}]}`)
	req, d := env.lookup("embed", nil, batch)
	if d != Serve {
		t.Fatalf("setup: batch of cached items not a hit: %v", d)
	}
	acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/embeddings"))
	var events []string
	for _, a := range acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: fresh}) {
		if a.Kind == ActCount {
			events = append(events, EventNames[a.Event])
		}
	}
	if _, d := env.lookup("embed", nil, batch); d == Serve {
		t.Fatalf("after a shadow found the cached vectors diverged (the model now answers in 4 dimensions; counted %v) "+
			"and the fresh answer could not replace them, the same 3-dimension vectors are still served here", events)
	}
}

// Review Z247. On a versioned route (model_version) a new version reported
// by the upstream is itself the invalidation (README, model_version: "a new
// version makes older entries unreachable for good"; counted in
// model_version_changes). A shadow whose fresh answer reports another
// version than the cached entry's compares the answers of two different
// models anyway: the rollout is counted as shadow.diverge and, with the
// window's samples, as a shadow invalidation with the WARN "sampled answers
// ... no longer match the model" — the signal README gives for a model that
// changed silently — on top of the version switch the same answer makes
// (two generation moves, two mesh-wide invalidations with an L2). An alert
// on shadow.invalidations fires on every ordinary versioned deployment.
// Expected: an answer of another version is not compared with the entry
// (no shadow.diverge, no shadow invalidation); the version switch alone
// invalidates.
func TestZ247ShadowComparesAnswersOfDifferentVersions(t *testing.T) {
	cfg := `{"upstream_cluster":"u","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat","shared":true,` +
		`"model_version":{"header":"x-model-version"},"shadow":{"sample":1,"min_samples":1,"min_tenants":1}}]}`
	env := newEnv(t, cfg)
	q := chatRequest("capital of France?")
	v1 := hdr("content-type", "application/json", "x-model-version", "v1")
	v2 := hdr("content-type", "application/json", "x-model-version", "v2")
	req, _ := env.lookup("chat", nil, q)
	env.fill(req, v1, chatResponse("Paris"), 10)
	hit, d := env.lookup("chat", nil, q)
	if d != Serve {
		t.Fatalf("setup: not a hit: %v", d)
	}
	acts := env.cache.Shadow(hit, hdr(":method", "POST", ":path", "/v1/chat"))
	var events, logs []string
	switched := false
	for _, a := range acts[0].Call.Done(CallResult{Status: 200, Headers: v2, Body: []byte(chatResponse("Paris is the capital of France."))}) {
		switch {
		case a.Kind == ActCount:
			events = append(events, EventNames[a.Event])
		case a.Kind == ActLog:
			logs = append(logs, string(a.Message))
		case a.Stored != nil && a.Stored.Result.VersionChanged:
			switched = true
		}
	}
	if !switched {
		t.Fatalf("setup: the v2 answer did not switch the version (events %v)", events)
	}
	for _, e := range events {
		if e == "shadow.diverge" || e == "shadow.invalidations" {
			t.Fatalf("a v2 answer compared with a v1 entry: counted %v, logged %q (the version switch already invalidates; "+
				"a rollout reads as a silently changed model)", events, logs)
		}
	}
}
