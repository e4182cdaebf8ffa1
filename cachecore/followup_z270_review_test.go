package cachecore

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Review Z270 (follow-up of 4e29559). maxBatchBuild now bounds "the
// cached vectors [lookupItems] copies" for a batch at 24 MiB, and the
// arena grows by 1 MiB blocks. But the arena's first reservation, at the
// batch's first hit, is still sized min(first vector x 1.25 x distinct
// items, max_entry_bytes + vector): on a route whose max_entry_bytes is
// raised for large batches of wide vectors (README "Embeddings": "a route
// for large batches of wide vectors needs it raised"), one cached 40 KB
// vector at the head of a 2,048-item batch of new short items reserves
// 64 MiB, for 40 KB copied. The batch then goes upstream whole
// (mergeTooLarge), yet the reservation stays pinned for the request's
// life (the first hit's kept header strings, b.hdrs, b.model, point into
// it): a few such 15 KB requests in flight on one worker hold hundreds of
// MiB of its linear memory, which never shrinks (the Z166 defect, back
// under a raised max_entry_bytes, past the 24 MiB bound 4e29559 states).
// Expected: the reservation is bounded by maxBatchBuild too (about
// 24 MiB at most allocated, and held, per request).
func TestZ270BatchArenaReservationBoundedByMaxBatchBuild(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"store":{"max_entry_bytes":67108864},
  "routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var n uint64
	c := New(cfg, Options{Store: NewMemStore(), Now: func() time.Time { return now }, Rand: func() uint64 { n++; return n * 0x9E3779B97F4A7C15 }})
	r := cfg.Routes[0]
	jsonHdr := [][2]string{{"content-type", "application/json"}}
	vec := wideVector()
	first := embRequest(c, r, `{"model":"e","input":["wide"]}`)
	if c.Lookup(first) != Forward {
		t.Fatalf("setup: first lookup %s", first.Status)
	}
	ans := []byte(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":` + vec + `}],"model":"e","usage":{"prompt_tokens":1,"total_tokens":1}}`)
	adm := c.AdmitBody(first, jsonHdr, ans)
	if res := c.Store(first, 200, jsonHdr, ans, adm, 1); res.Reason != ReasonNone || res.ItemsStored != 1 {
		t.Fatalf("setup: store %+v (admission %s)", res, adm.Reason)
	}
	items := []string{`"wide"`}
	for i := range maxBatchItems - 1 {
		items = append(items, strconv.Quote(fmt.Sprint(i)))
	}
	body := `{"model":"e","input":[` + strings.Join(items, ",") + `]}`
	if len(body) > c.cfg.MaxRequestBytes {
		t.Fatalf("setup: body of %d bytes over max_request_bytes", len(body))
	}
	// Four such requests in flight on one worker.
	var inFlight []*Request
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 4 {
		req := embRequest(c, r, body)
		if req.Bypassed() {
			t.Fatalf("setup: bypassed (%s)", req.Reason)
		}
		c.Lookup(req)
		if cached, total := req.ItemCounts(); total != maxBatchItems || (cached != 1 && cached != 0) {
			t.Fatalf("setup: items %d/%d", cached, total)
		}
		inFlight = append(inFlight, req)
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	runtime.KeepAlive(inFlight)
	t.Logf("4 lookups of a %d-byte batch (one cached %d-byte vector): allocated %d MiB, held %d MiB while in flight",
		len(body), len(vec), allocated>>20, held>>20)
	const bound = 4 * (maxBatchBuild + (4 << 20)) // 4 requests, each within maxBatchBuild (and the rest of a lookup)
	if allocated > bound {
		t.Errorf("4 lookups of a %d-byte batch with one cached %d-byte vector allocated %d MiB (bound %d MiB: each within maxBatchBuild, %d MiB)",
			len(body), len(vec), allocated>>20, bound>>20, maxBatchBuild>>20)
	}
	if held > bound {
		t.Errorf("4 in-flight %d-byte batches, each with one cached %d-byte vector, hold %d MiB of the worker's heap after GC (the first hit's arena reservation, pinned by its kept header strings; bound %d MiB)",
			len(body), len(vec), held>>20, bound>>20)
	}
}

// Review Z270 (follow-up of 4e29559). A batch whose cached vectors pass
// maxBatchBuild goes upstream whole (fetchAll), "its answer passed on as
// any miss's, never held" — but the up to 24 MiB of cached vectors
// lookupItems copied before it judged so stay referenced by the batch
// (b.entries keeps its Body slices into every arena block, b.hdrs the
// first) for as long as the request lives: the whole upstream call, for
// a batch of hundreds of items seconds of the model's work. Nothing reads
// them any more (the answer is the model's). Each such request in flight
// pins ~24 MiB of its worker VM's linear memory, which never shrinks:
// some 40 in flight at once, from one tenant re-embedding a corpus, take
// the worker past its 1 GiB (the out-of-memory of review Z266, reached by
// concurrency instead of one request). Expected: a batch sent upstream
// whole holds none of the vectors it copied (a few MiB at most for four
// such requests in flight).
func TestZ270BatchSentWholeKeepsItsCopiedVectors(t *testing.T) {
	c, r := newEmbCache(t)
	jsonHdr := [][2]string{{"content-type", "application/json"}}
	vec := wideVector()
	const n = 700 // 700 x 38 KB: past maxBatchBuild
	if n*len(vec) <= maxBatchBuild {
		t.Fatalf("setup: %d vectors of %d bytes within maxBatchBuild", n, len(vec))
	}
	var items []string
	for i := range n {
		item := strconv.Quote(fmt.Sprintf("chunk number %d", i))
		items = append(items, item)
		req := embRequest(c, r, `{"model":"e","input":[`+item+`]}`)
		if c.Lookup(req) != Forward {
			t.Fatalf("setup: lookup %d: %s", i, req.Status)
		}
		ans := []byte(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":` + vec + `}],"model":"e","usage":{"prompt_tokens":1,"total_tokens":1}}`)
		adm := c.AdmitBody(req, jsonHdr, ans)
		if res := c.Store(req, 200, jsonHdr, ans, adm, 1); res.Reason != ReasonNone || res.ItemsStored != 1 {
			t.Fatalf("setup: store %d: %+v (admission %s)", i, res, adm.Reason)
		}
	}
	body := `{"model":"e","input":[` + strings.Join(items, ",") + `]}`
	var inFlight []*Request
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 4 {
		req := embRequest(c, r, body)
		if d := c.Lookup(req); d != Forward {
			t.Fatalf("setup: a batch of %d cached wide vectors: %v, want Forward (sent upstream whole)", n, d)
		}
		if cached, total := req.ItemCounts(); cached != 0 || total != n {
			t.Fatalf("setup: items %d/%d, want 0/%d (sent upstream whole)", cached, total, n)
		}
		inFlight = append(inFlight, req)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	runtime.KeepAlive(inFlight)
	t.Logf("4 batches of %d cached %d-byte vectors, sent upstream whole: %d MiB held while in flight", n, len(vec), held>>20)
	if held > 8<<20 {
		t.Errorf("4 in-flight batches sent upstream whole (their %d cached vectors past maxBatchBuild) hold %d MiB of the worker's heap: the vectors copied before the batch was judged too large", n, held>>20)
	}
}
