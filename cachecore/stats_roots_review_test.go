package cachecore

import (
	"strings"
	"testing"
)

// Review Z135 (stats_roots). statnames.go: a route's event stats are "only
// those Event.Applies to the route", and Applies "keeps /stats free of
// counters a route can never move". Its semantic range ends at
// EvSemanticVectorCached; EvSemanticModelsFull, appended after it, falls
// through to "true": every route without a semantic cache — chat,
// embeddings, rerank, classify — defines modelcache_route.<route>.semantic.models_full,
// a counter only the semantic cache (semantic.go) ever moves. Expected:
// no semantic.* stat on a route without `semantic`.
func TestRouteWithoutSemanticDefinesNoSemanticStats(t *testing.T) {
	cfg := mustParse(t, `{"upstream_cluster": "model", "routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions"}]}`)
	r := cfg.Routes[0]
	if r.Semantic != nil {
		t.Fatal("setup: the route has a semantic cache")
	}
	var defined []string
	for _, n := range StatNames(r).Events {
		if strings.HasPrefix(n, "modelcache_route.chat.semantic.") {
			defined = append(defined, n)
		}
	}
	if len(defined) > 0 {
		t.Fatalf("a route without a semantic cache defines %v", defined)
	}
}
