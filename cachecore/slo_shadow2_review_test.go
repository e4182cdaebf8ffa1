package cachecore

import (
	"fmt"
	"testing"
)

// Review Z207 (slo_shadow2). A shadow comparison's call is out while the
// namespace moves on: another comparison invalidates it (or a purge, or a
// version switch). Its answer then compares an entry of the generation the
// namespace has left, and ObserveShadow counts it in the new generation's
// window all the same (res.moved is only used to key the store). After an
// invalidation the calls still out (up to shadow.max_concurrent per route,
// process-wide) all come back diverged — they compared the old model's
// entries with the new model — and seed the new generation's window with
// divergence that no entry of it has: a few agreeing samples of the new
// model's own answers then invalidate it again, and every new-model entry
// cached since is thrown away for nothing. Expected: a comparison of an
// entry served under a generation the namespace has since left says
// nothing about the current one and is not counted in its window.
func TestShadowSamplesOfALeftGenerationDoNotInvalidateTheNewOne(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"u","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat","ttl":"1h",`+
		`"shadow":{"sample":1,"max_concurrent":4,"min_samples":5,"max_divergence":0.5,"min_tenants":1}}]}`)
	// Eight hits of the old model's entries, each starting a comparison.
	var old []*Request
	for i := 0; i < 8; i++ {
		body := chatRequest(fmt.Sprint("question ", i))
		req, _ := env.lookup("chat", alice, body)
		env.fill(req, jsonCT, chatResponse(fmt.Sprint("old answer ", i)), 10)
		hit, d := env.lookup("chat", alice, body)
		if d != Serve {
			t.Fatalf("setup: question %d not a hit (%v)", i, d)
		}
		old = append(old, hit)
	}
	// The model was retrained: the first five comparisons diverge and
	// invalidate the namespace.
	var res ShadowResult
	for i := 0; i < 5; i++ {
		var err error
		if res, err = env.cache.ObserveShadow(old[i], true); err != nil {
			t.Fatal(err)
		}
	}
	if !res.Invalidated {
		t.Fatalf("setup: 5 of 5 divergent samples did not invalidate: %+v", res)
	}
	// The three calls that were still out come back: they compared the
	// old generation's entries, diverged.
	for i := 5; i < 8; i++ {
		if _, err := env.cache.ObserveShadow(old[i], true); err != nil {
			t.Fatal(err)
		}
	}
	// The new model's answers are cached under the new generation, and
	// its hits' comparisons agree with the model.
	invalidations := 0
	for i := 0; i < 2; i++ {
		body := chatRequest(fmt.Sprint("question ", i))
		req, d := env.lookup("chat", alice, body)
		if d == Serve {
			t.Fatalf("question %d served from the invalidated generation", i)
		}
		env.fill(req, jsonCT, chatResponse(fmt.Sprint("new answer ", i)), 10)
		hit, d := env.lookup("chat", alice, body)
		if d != Serve {
			t.Fatalf("setup: new question %d not a hit", i)
		}
		r, err := env.cache.ObserveShadow(hit, false)
		if err != nil {
			t.Fatal(err)
		}
		if r.Invalidated {
			invalidations++
			t.Logf("new generation: %d of %d samples counted diverged", r.Diverged, r.Samples)
		}
	}
	if invalidations != 0 {
		t.Fatalf("the new generation, whose every compared entry agreed with the model, was invalidated %d time(s): "+
			"3 divergent samples of entries of the generation already left were counted in its window", invalidations)
	}
}
