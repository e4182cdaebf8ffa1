//go:build !wasip1

package main

import (
	"strings"
	"testing"
)

// Guarantee: Envoy stats are truthful. Commit dc0fa25 makes a batch none
// of whose items was kept "not stored" in Cache-Status (Flight.Complete:
// ItemsStored == 0 → Refused), but Complete still emits ActStored with
// Stored.Reason None first, so the route's "stored" counter counts the
// answer as stored and no refusal (too_large) is counted: the stats say
// stored while Cache-Status and items.stored say nothing was.
func TestDiffReviewBatchWithNoItemKeptIsNotCountedStored(t *testing.T) {
	hs := newHarness(t, strings.Replace(embConfig, `"ttl": "1h",`, `"ttl": "1h", "max_entry_bytes": 2048,`, 1))
	body := embReq([]string{strings.Repeat("long chunk ", 300)}, "")
	res := hs.post(0, "/v1/embeddings", body)
	if res.Status != 200 {
		t.Fatalf("status %d", res.Status)
	}
	if s := hs.counter("modelcache_route.emb.items.stored"); s != 0 || strings.Contains(hdr(res, "cache-status"), "; stored") {
		t.Fatalf("test premise: items.stored %d, Cache-Status %q", s, hdr(res, "cache-status"))
	}
	var moved []string
	for _, n := range hs.h.MetricNames() {
		if strings.HasPrefix(n, "modelcache_route.emb.") && hs.counter(n) > 0 {
			moved = append(moved, n)
		}
	}
	if n := hs.counter("modelcache_route.emb.stored"); n != 0 {
		t.Errorf("modelcache_route.emb.stored = %d for an answer none of whose items was kept (Cache-Status %q); counters moved: %v", n, hdr(res, "cache-status"), moved)
	}
	if n := hs.counter("modelcache_route.emb.refused.too_large"); n != 1 {
		t.Errorf("modelcache_route.emb.refused.too_large = %d, want 1; counters moved: %v", n, moved)
	}
}
