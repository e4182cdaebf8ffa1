//go:build !wasip1

package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z272 (follow-up of adf43b8). A batch whose answer built from its
// cached vectors would pass 24 MiB goes upstream whole, judged at its
// first cached item (hits 0: a miss). As a miss it coalesces ("Identical
// whole batches in flight at the same time coalesce"): identical batches
// follow the first, which is what a route raised for large batches of
// wide vectors (README: "a route for large batches of wide vectors needs
// [max_entry_bytes] raised") meets when a client retries or two
// ingestion workers send the same chunks. The leader's answer is stored,
// item by item, and wakes its followers; but none of them can ever be
// answered from those items (the same batch is too large again), so each
// woken follower takes the lease and goes upstream, and the others
// follow *it*: the identical batches are sent to the model one after
// another, each waiting for the whole previous call (seconds for
// hundreds of wide vectors), the k-th for k calls, up to max_wait. No
// model call is saved by it. README: "If the answer may never be stored
// (no-store, too large, …) everybody goes upstream at once and the key
// skips coalescing" — an answer the cache stores but can never serve to
// this batch is the same case.
// Expected: once the first answer is in, the other identical batches
// (which the cache cannot serve) are all sent upstream at once.
func TestZ272TooLargeBatchesAreSerializedBehindEachOther(t *testing.T) {
	hs := newHarness(t, `{"upstream_cluster":"model","store":{"max_entry_bytes":67108864},
  "routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h"}]}`, withWorkers(1))
	hs.holdUpstream()
	const n = 450 // 450 vectors of 61 KB: an answer of 27 MiB, past maxBatchBuild (24 MiB)
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`"chunk number %d"`, i)
	}
	body := `{"model":"text-embedding-3-large","input":[` + strings.Join(items, ",") + `]}`
	const copies = 3
	var xs []*wasmhost.Exchange
	for range copies {
		xs = append(xs, hs.h.StartExchange(0, wasmhost.Request{
			Headers: [][2]string{{":method", "POST"}, {":path", "/v1/embeddings"}, {":authority", "models"}, {":scheme", "http"},
				{"content-type", "application/json"}, {"authorization", "Bearer tenant-a"}, {"content-length", strconv.Itoa(len(body))}},
			Body: []byte(body),
		}))
	}
	hs.h.Drain()
	first := hs.h.PendingUpstream()
	if len(first) != 1 {
		t.Fatalf("setup: %d upstream calls for %d identical batches, want 1 (they coalesce)", len(first), copies)
	}
	wideUpstream(first[0])
	hs.h.Drain()
	if !xs[0].Done() || xs[0].Response().Status != 200 {
		t.Fatalf("setup: the leader's batch: %s", xs[0].State())
	}
	stored := hs.counter("modelcache_route.emb.items.stored")
	if stored != n {
		t.Fatalf("setup: items.stored %d, want %d (the leader's answer stored)", stored, n)
	}
	second := hs.h.PendingUpstream()
	t.Logf("after the first answer was stored: %d upstream calls pending for %d batches left", len(second), copies-1)
	if len(second) != copies-1 {
		t.Errorf("after the first answer (%d items stored), %d of the %d identical batches the cache cannot serve went upstream; the others wait for that call to end (serialized)",
			stored, len(second), copies-1)
	}
	// Let everything finish.
	for range copies {
		for _, u := range hs.h.PendingUpstream() {
			wideUpstream(u)
		}
		hs.h.Drain()
	}
	for i, x := range xs {
		if !x.Done() {
			t.Errorf("batch %d not answered: %s", i, x.State())
		}
	}
}
