//go:build !wasip1

package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/e2e/modelsim"
)

const shadowConfig = `{
  "upstream_cluster": "model",
  "routes": [
    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "1h",
     "shadow": {"sample": 1.0, "max_concurrent": 4, "min_samples": 5, "max_divergence": 0.5, "window": "10m", "min_tenants": 1}}
  ]
}`

// The model changes its answers (a retrained model behind the same name and
// no version header): sampled comparisons diverge, the namespace is
// invalidated, and requests get the new model's answers.
func TestShadowDetectsAChangedModel(t *testing.T) {
	hs := newHarness(t, shadowConfig, withHTTPCalls())
	const keys = 10
	for k := 0; k < keys; k++ {
		hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("question ", k)))
	}
	// Two hits agree with the model.
	for k := 0; k < 2; k++ {
		expectCacheStatus(t, hs.post(1, "/v1/chat/completions", chatBody(fmt.Sprint("question ", k))), "hit")
	}
	if hs.counter("modelcache_route.chat.shadow.agree") != 2 {
		t.Fatalf("agree = %d", hs.counter("modelcache_route.chat.shadow.agree"))
	}
	if err := hs.sim.UpdateKnobs(func(k *modelsim.Knobs) { k.ModelVersion = "retrained" }); err != nil {
		t.Fatal(err)
	}
	// Hits keep answering from cache, but their comparisons now diverge;
	// 3 divergent of 5 samples (> 50 %) invalidates.
	hitsUntilInvalidated := 0
	for k := 2; k < keys && hs.counter("modelcache_route.chat.shadow.invalidations") == 0; k++ {
		hs.post(1, "/v1/chat/completions", chatBody(fmt.Sprint("question ", k)))
		hitsUntilInvalidated++
	}
	if hs.counter("modelcache_route.chat.shadow.invalidations") != 1 {
		t.Fatal("no invalidation")
	}
	t.Logf("invalidated after %d divergent hits (%d comparisons)", hitsUntilInvalidated, hs.counter("modelcache_route.chat.shadow.agree")+hs.counter("modelcache_route.chat.shadow.diverge"))
	if hitsUntilInvalidated != 3 {
		t.Fatalf("invalidated after %d divergent hits, want 3", hitsUntilInvalidated)
	}
	if len(hs.h.LogsContaining("no longer match the model; its namespace is invalidated")) != 1 {
		t.Fatal("invalidation not logged once")
	}
	// Every following request gets the new model's answer.
	for k := 0; k < keys; k++ {
		body := chatBody(fmt.Sprint("question ", k))
		res := hs.post(0, "/v1/chat/completions", body)
		want, _ := modelsim.ExpectedBody("retrained", "/v1/chat/completions", []byte(body))
		if !bytes.Equal(res.Body, want) {
			t.Fatalf("question %d: an answer of the old model was served (%s)", k, hdr(res, "cache-status"))
		}
	}
}

func TestShadowNoInvalidationWhileAnswersHold(t *testing.T) {
	hs := newHarness(t, shadowConfig, withHTTPCalls())
	for k := 0; k < 10; k++ {
		hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprint("stable ", k)))
	}
	for i := 0; i < 1000; i++ {
		hs.post(i%2, "/v1/chat/completions", chatBody(fmt.Sprint("stable ", i%10)))
	}
	if got := hs.counter("modelcache_route.chat.shadow.agree"); got != 1000 {
		t.Fatalf("agree = %d, want 1000", got)
	}
	if hs.counter("modelcache_route.chat.shadow.diverge") != 0 || hs.counter("modelcache_route.chat.shadow.invalidations") != 0 {
		t.Fatal("diverged without a change")
	}
}

func TestShadowCallsBoundedAndInvisible(t *testing.T) {
	cfg := strings.Replace(shadowConfig, `"max_concurrent": 4`, `"max_concurrent": 2`, 1)
	hs := newHarness(t, cfg, withHTTPCalls())
	body := chatBody("bounded")
	first := hs.post(0, "/v1/chat/completions", body)
	hs.holdCalls = true
	if err := hs.sim.UpdateKnobs(func(k *modelsim.Knobs) { k.ModelVersion = "other" }); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		res := hs.post(i%2, "/v1/chat/completions", body)
		if !bytes.Equal(res.Body, first.Body) {
			t.Fatal("a shadow call changed what the client received")
		}
	}
	if n := len(hs.h.PendingHTTPCalls()); n != 2 {
		t.Fatalf("%d shadow calls in flight, max_concurrent is 2", n)
	}
	if hs.counter("modelcache_route.chat.shadow.saturated") != 8 {
		t.Fatalf("saturated = %d", hs.counter("modelcache_route.chat.shadow.saturated"))
	}
	for _, c := range hs.h.PendingHTTPCalls() {
		hs.answerCall(c)
	}
	hs.h.Drain()
	// The diverged entry was replaced by the fresh answer at once.
	want, _ := modelsim.ExpectedBody("other", "/v1/chat/completions", []byte(body))
	if res := hs.post(0, "/v1/chat/completions", body); !bytes.Equal(res.Body, want) {
		t.Fatalf("diverged entry not replaced: %s", hdr(res, "cache-status"))
	}
}
