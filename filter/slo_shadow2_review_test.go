//go:build !wasip1

package main

import (
	"fmt"
	"testing"

	"github.com/modelcache/modelcache/e2e/modelsim"
)

// Review Z207 (slo_shadow2). The model is retrained: hits' comparisons
// diverge and the namespace is invalidated, as it should be, once. But the
// comparisons still out when it happens (up to shadow.max_concurrent, here
// 4) compared entries of the generation just left; their answers come back
// diverged and are counted in the new generation's window. The new model's
// own answers, cached since, then agree on every comparison — and two of
// them are enough (3 divergent of 5 > 50 %) to invalidate the namespace a
// second time, throwing away every new-model entry for nothing (and, with
// L2, every proxy's). Expected: one invalidation; a comparison of an entry
// of a generation the namespace has left does not count in the current
// generation's window.
func TestShadowInFlightSamplesOfTheOldModelDoNotInvalidateTheNewOne(t *testing.T) {
	hs := newHarness(t, shadowConfig, withHTTPCalls()) // max_concurrent 4, min_samples 5, max_divergence 0.5
	q := func(k int) string { return chatBody(fmt.Sprint("retrain ", k)) }
	for k := 0; k < 10; k++ {
		hs.post(0, "/v1/chat/completions", q(k))
	}
	if err := hs.sim.UpdateKnobs(func(k *modelsim.Knobs) { k.ModelVersion = "retrained" }); err != nil {
		t.Fatal(err)
	}
	hs.holdCalls = true
	next := 0
	hit := func() {
		t.Helper()
		expectCacheStatus(t, hs.post(1, "/v1/chat/completions", q(next)), "hit")
		next++
	}
	answerOldest := func() {
		t.Helper()
		calls := hs.h.PendingHTTPCalls()
		if len(calls) == 0 {
			t.Fatal("no shadow call pending")
		}
		hs.answerCall(calls[0])
		hs.h.Drain()
	}
	// Four comparisons out; each answered one is followed by a new hit,
	// until the fifth divergent answer invalidates the namespace.
	for i := 0; i < 4; i++ {
		hit()
	}
	for hs.counter("modelcache_route.chat.shadow.invalidations") == 0 {
		if next == 10 {
			t.Fatal("setup: no invalidation")
		}
		answerOldest()
		if hs.counter("modelcache_route.chat.shadow.invalidations") == 0 {
			hit()
		}
	}
	inFlight := len(hs.h.PendingHTTPCalls())
	// The new model's answers are cached under the new generation.
	for k := 0; k < 2; k++ {
		expectCacheStatus(t, hs.post(0, "/v1/chat/completions", q(k)), "fwd=")
	}
	// The comparisons that were out (old entries) come back.
	for len(hs.h.PendingHTTPCalls()) > 0 {
		answerOldest()
	}
	// Hits of the new model's entries: their comparisons agree.
	for k := 0; k < 2; k++ {
		expectCacheStatus(t, hs.post(1, "/v1/chat/completions", q(k)), "hit")
		for len(hs.h.PendingHTTPCalls()) > 0 {
			answerOldest()
		}
	}
	if got := hs.counter("modelcache_route.chat.shadow.invalidations"); got != 1 {
		t.Fatalf("one retraining invalidated the namespace %d times (%d comparisons of old entries were out at the first; "+
			"agree %d, diverge %d): the second threw away the new model's entries, which every comparison of theirs agreed with",
			got, inFlight, hs.counter("modelcache_route.chat.shadow.agree"), hs.counter("modelcache_route.chat.shadow.diverge"))
	}
}
