//go:build !wasip1

package main

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A hit in steady state allocates nothing in the VM: the stream, the
// request and the buffers the host's data is read into are those of an
// earlier hit (stream.go newStream, cachecore/recycle.go).
func TestHitsAllocateNothing(t *testing.T) {
	hs := newHarness(t, chatConfig)
	body := chatBody("allocation-free hits")
	hs.post(0, "/v1/chat/completions", body)
	expectNoGarbage(t, hs, 500, "hits", func(int) {
		expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "hit")
	})
}

// expectNoGarbage runs do 20 times to warm up (spare streams, requests and
// buffers then exist), then n times, and fails if those n allocated
// (beyond what the ticks' own reading of the runtime's counters may) or
// collected.
func expectNoGarbage(t *testing.T, hs *harness, n int, what string, do func(i int)) {
	t.Helper()
	for i := 0; i < 20; i++ {
		do(i)
	}
	hs.h.TickAll()
	allocs, gcs := hs.counter("modelcache.vm_heap_allocs"), hs.counter("modelcache.vm_gc_cycles")
	if allocs == 0 {
		t.Fatal("modelcache.vm_heap_allocs not reported")
	}
	for i := 0; i < n; i++ {
		do(100 + i)
	}
	hs.h.TickAll()
	if d := hs.counter("modelcache.vm_heap_allocs") - allocs; d > uint64(n/50) {
		t.Fatalf("%d heap allocations for %d %s", d, n, what)
	}
	if d := hs.counter("modelcache.vm_gc_cycles") - gcs; d != 0 {
		t.Fatalf("%d GC cycles during %d %s", d, n, what)
	}
}

// On a route with key_headers a hit allocates nothing either: the values
// are read from the headers the filter has already (no host call) into a
// buffer the recycled request keeps.
func TestKeyHeaderHitsAllocateNothing(t *testing.T) {
	hs := newHarness(t, `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "key_headers":["openai-project","anthropic-beta"]}]}`)
	body := chatBody("allocation-free hits")
	headers := []string{"openai-project", "proj_A", "anthropic-beta", "tools-2024-04-04", "anthropic-beta", strings.Repeat("b", 200)}
	hs.post(0, "/v1/chat/completions", body, headers...)
	expectNoGarbage(t, hs, 500, "hits", func(int) {
		expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body, headers...), "hit")
	})
}

// A request whose memory may still be read — here one served stale whose
// background refresh is pending — is never reused: the refresh still
// sends that request's body and identity after other tenants' misses and
// hits have gone through the same worker, and stores its answer under the
// right key.
func TestRecycledRequestsNeverMix(t *testing.T) {
	hs := newHarness(t, swrConfig, withHTTPCalls())
	hs.holdCalls = true
	const path = "/v1/chat/completions"
	a := chatBody("the question whose refresh is pending")
	first := hs.post(0, path, a)
	hs.clock.Advance(70 * time.Second)
	expectCacheStatus(t, hs.post(0, path, a), "fwd=stale")
	answers := map[string][]byte{}
	for round := 0; round < 3; round++ {
		for i := 0; i < 10; i++ {
			b := chatBody(fmt.Sprintf("another tenant's question number %d, longer than the first one", i))
			res := hs.post(0, path, b, "authorization", "Bearer tenant-b")
			if round == 0 {
				expectCacheStatus(t, res, "fwd=miss", "stored")
				answers[b] = res.Body
				continue
			}
			expectCacheStatus(t, res, "hit")
			if !bytes.Equal(res.Body, answers[b]) {
				t.Fatalf("hit for %s: got another answer:\n%s", b, res.Body)
			}
		}
	}
	calls := hs.h.PendingHTTPCalls()
	if len(calls) != 1 {
		t.Fatalf("%d pending refreshes, want 1", len(calls))
	}
	if string(calls[0].Body) != a || !hasHeader(calls[0].Headers, "authorization", "Bearer tenant-a") {
		t.Fatalf("the pending refresh changed: %q %v", calls[0].Body, calls[0].Headers)
	}
	hs.answerCall(calls[0])
	hs.h.Drain()
	res := hs.post(0, path, a)
	expectCacheStatus(t, res, "hit", "ttl=60")
	if !bytes.Equal(res.Body, first.Body) {
		t.Fatalf("refreshed answer differs:\n%s\n%s", res.Body, first.Body)
	}
	// Tenant b never gets tenant a's answer, whatever memory it reuses.
	expectCacheStatus(t, hs.post(0, path, a, "authorization", "Bearer tenant-b"), "fwd=miss")
}

// Requests whose headers differ in size keep reusing one header buffer:
// a smaller request's headers do not shrink it.
func TestHitsWithVaryingHeadersAllocateNothing(t *testing.T) {
	hs := newHarness(t, chatConfig)
	body := chatBody("allocation-free hits")
	hs.post(0, "/v1/chat/completions", body)
	extra := strings.Repeat("v", 200)
	for i := 0; i < 20; i++ {
		expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "hit")
		expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body, "x-trace", extra), "hit")
	}
	hs.h.TickAll()
	allocs := hs.counter("modelcache.vm_heap_allocs")
	const hits = 500
	for i := 0; i < hits/2; i++ {
		expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "hit")
		expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body, "x-trace", extra), "hit")
	}
	hs.h.TickAll()
	if n := hs.counter("modelcache.vm_heap_allocs") - allocs; n > hits/50 {
		t.Fatalf("%d heap allocations for %d hits", n, hits)
	}
}

// A miss whose answer is not stored (the upstream says no-store), each with
// a new question, allocates nothing in steady state either: the response's
// headers and code details are read into the stream's reused buffers too.
func TestUncacheableMissesAllocateNothing(t *testing.T) {
	hs := newHarness(t, chatConfig)
	expectNoGarbage(t, hs, 500, "uncacheable misses", func(i int) {
		res := hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprintf("uncacheable question %d", i)),
			"x-sim-cache-control", "no-store")
		expectCacheStatus(t, res, "fwd=miss", "detail=no-store")
	})
}

// A batch of embeddings whose every item is cached is a hit, and in
// steady state allocates nothing either: the keys, the items' vectors and
// headers, the answer and its headers are built in the batch's and the
// request's reused arenas.
func TestCachedEmbeddingBatchesAllocateNothing(t *testing.T) {
	hs := newHarness(t, embConfig)
	body := embReq(chunks(0, 64), "")
	want := vectors(t, reference(t, body))
	hs.post(0, "/v1/embeddings", body)
	first := hs.post(0, "/v1/embeddings", body) // the first hit, its arenas new
	expectCacheStatus(t, first, "hit")
	if got := vectors(t, first.Body); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatal("a cached batch's vectors differ from the uncached reference")
	}
	expectNoGarbage(t, hs, 200, "cached batches", func(int) {
		res := hs.post(0, "/v1/embeddings", body)
		expectCacheStatus(t, res, "hit")
		// Answers built in reused arenas are the first hit's, byte for
		// byte, headers included (but its age).
		if !bytes.Equal(res.Body, first.Body) {
			t.Fatalf("a cached batch's answer changed:\n%s\n%s", res.Body, first.Body)
		}
		for _, h := range first.Headers {
			if h[0] == "age" || h[0] == "cache-status" {
				continue
			}
			if !hasHeader(res.Headers, h[0], h[1]) {
				t.Fatalf("header %s is not the first hit's %q: %q", h[0], h[1], res.Headers)
			}
		}
	})
}

// Embeddings requests are recycled too (the request, its batch's arenas
// and the stream's buffers are reused): batches of two tenants,
// each part cached and part new, interleaved on one worker, always get
// exactly the uncached reference's vectors, and a tenant's items are never
// served from the other's.
func TestRecycledEmbeddingsNeverMix(t *testing.T) {
	hs := newHarness(t, embConfig)
	const path = "/v1/embeddings"
	tenants := []string{"Bearer tenant-a", "Bearer tenant-b"}
	cached := map[string]map[string]bool{}
	for round := 0; round < 6; round++ {
		for ti, tenant := range tenants {
			// Each tenant's batch overlaps its previous one by half; tenant
			// b's items are tenant a's shifted by 4, so some are cached
			// for a but not yet for b.
			from := round*8 + ti*4
			items := chunks(from, from+16+round)
			body := embReq(items, "")
			res := hs.post(0, path, body, "authorization", tenant)
			if got, want := vectors(t, res.Body), vectors(t, reference(t, body)); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("round %d, %s: vectors differ from the uncached reference", round, tenant)
			}
			if cached[tenant] == nil {
				cached[tenant] = map[string]bool{}
			}
			hits := 0
			for _, it := range items {
				if cached[tenant][it] {
					hits++
				}
				cached[tenant][it] = true
			}
			if got, want := hdr(res, "x-modelcache-cached-items"), fmt.Sprintf("%d/%d", hits, len(items)); got != want {
				t.Fatalf("round %d, %s: cached-items %q, want %q (only the tenant's own items)", round, tenant, got, want)
			}
		}
	}
}

// When a request's work started a garbage collection, the collector is let
// run at the end of the request (modelcache.vm_gc_yields) instead of only
// through later allocations' assists, with the write barrier on all along.
func TestMarkingCollectorRunsAtTheEndOfARequest(t *testing.T) {
	hs := newHarness(t, chatConfig)
	gcs, yields := hs.counter("modelcache.vm_gc_cycles"), hs.counter("modelcache.vm_gc_yields")
	// Stored misses allocate (the entry's encoding, the answer's checks):
	// collections start sooner or later.
	for i := 0; hs.counter("modelcache.vm_gc_cycles") == gcs; i++ {
		if i == 5000 {
			t.Fatal("no garbage collection ran: the test proves nothing")
		}
		expectCacheStatus(t, hs.post(0, "/v1/chat/completions", chatBody(fmt.Sprintf("question %d", i))), "fwd=miss", "stored")
		if i%100 == 99 {
			hs.h.TickAll()
		}
	}
	if hs.counter("modelcache.vm_gc_yields") == yields {
		t.Fatal("collections ran, but never by a yield at the end of a request")
	}
}

// A stream taken from the free list starts as a new one (but for its
// buffers): newStream does not clear it again, so the free list must only
// ever hold streams zeroed when their context was deleted.
func TestReusedStreamsStartZeroed(t *testing.T) {
	p := newPlugin(1)
	s := p.newStream(7)
	s.rs, s.authority, s.bufs.body = &routeStats{}, "models.example", make([]byte, 0, 64)
	s.OnHttpStreamDeleted()
	if len(p.free) != 1 {
		t.Fatalf("free list holds %d streams, want 1", len(p.free))
	}
	r := p.newStream(8)
	if r != s {
		t.Fatal("the deleted stream's memory was not reused")
	}
	if r.p != p || r.id != 8 || r.rs != nil || r.authority != "" || cap(r.bufs.body) != 64 {
		t.Fatalf("reused stream: p %v id %d rs %v authority %q body cap %d", r.p == p, r.id, r.rs, r.authority, cap(r.bufs.body))
	}
	if !reflect.DeepEqual(*r, stream{streamFields: streamFields{p: p, id: 8, bufs: r.bufs}}) {
		t.Fatalf("reused stream is not a new one: %+v", *r)
	}
}

// TestBuffersOversizeMatchesTrim: a deleted stream asks oversize before
// it calls trim, so the two must agree on every buffer's bound: oversize
// is true exactly when trim lets go of something.
func TestBuffersOversizeMatchesTrim(t *testing.T) {
	caps := []int{0, maxKeptDetails, maxKeptDetails + 1, maxKeptHeaders, maxKeptHeaders + 1, maxKeptBody, maxKeptBody + 1}
	n := len(caps)
	for i := 0; i < n*n*n*n*n; i++ {
		var d [5]int // i's digits in base n: each buffer's capacity
		for k, v := 0, i; k < len(d); k, v = k+1, v/n {
			d[k] = caps[v%n]
		}
		b := &buffers{body: make([]byte, 0, d[0]), respBody: make([]byte, 0, d[1]), headersRaw: make([]byte, 0, d[2]),
			respRaw: make([]byte, 0, d[3]), details: make([]byte, 0, d[4])}
		before := [...]int{cap(b.body), cap(b.respBody), cap(b.headersRaw), cap(b.respRaw), cap(b.details)}
		over := b.oversize()
		b.trim()
		after := [...]int{cap(b.body), cap(b.respBody), cap(b.headersRaw), cap(b.respRaw), cap(b.details)}
		if dropped := before != after; dropped != over {
			t.Fatalf("caps %v: oversize %v, but trim dropped something: %v", before, over, dropped)
		}
	}
}
