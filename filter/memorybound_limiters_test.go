//go:build !wasip1

package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// README "Memory bound": besides the table, the model-state and the lease
// keys, shared data holds per route the SLO window and the shadow limiter,
// and a few fixed keys, the background limiter among them. Both limiters
// hold 8 bytes per slot of their max_concurrent, written whole at their
// first call; the bound had them at a fixed 800 bytes a route and 1,024
// fixed, which the largest limiters pass (review Z1, stop 72). The bound
// now counts them, and a route's name, in those keys, at most 64 bytes.
// Checked here at the largest limiters and the longest name.
func TestMemoryBoundHoldsAtTheLargestLimiters(t *testing.T) {
	const bgMax, shadowMax = 1024, 64
	name := strings.Repeat("r", 64)
	cfg := fmt.Sprintf(`{
	  "upstream_cluster": "model",
	  "background": {"max_concurrent": %d},
	  "store": {"buckets": 1, "ways": 1, "max_entry_bytes": 8192, "lease_slots": 1},
	  "routes": [
	    {"name": %q, "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "1h",
	     "freshness_slo": {"max_age": "1h"},
	     "shadow": {"sample": 1.0, "max_concurrent": %d, "min_tenants": 1}}
	  ]
	}`, bgMax, name, shadowMax)
	hs := newHarness(t, cfg, withHTTPCalls())
	body := chatBody("what is the capital of France")
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "stored")
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", body), "hit")
	hs.clock.Advance(2 * time.Second) // the SLO window is flushed
	hs.h.TickAll()
	if hs.counter("modelcache_route."+name+".shadow.agree")+hs.counter("modelcache_route."+name+".shadow.diverge") == 0 {
		t.Fatal("setup: no shadow comparison ran")
	}
	const routes, perKey = 1, 100
	var other int
	var listed []string
	for _, k := range hs.h.SharedDataKeys() {
		switch {
		case strings.HasPrefix(k, "mc:i:"), strings.HasPrefix(k, "mc:e:"), strings.HasPrefix(k, "mc:l:"), strings.HasPrefix(k, "mc:m:"):
			continue // the table, leases and model state: budgeted apart
		}
		v, _, _ := hs.h.SharedData(k)
		other += len(k) + len(v) + perKey
		listed = append(listed, fmt.Sprintf("%s=%d", k, len(v)))
	}
	if bound := routes*(800+8*shadowMax) + 1536 + 8*bgMax; other > bound {
		t.Fatalf("per-route and fixed keys hold %d bytes with Envoy's per-key overhead; README's bound allows routes × (800 + 8 × shadow.max_concurrent) + 1536 + 8 × background.max_concurrent = %d: %v", other, bound, listed)
	}
}
