package cachecore

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// README "Hostile bytes": every parse of what comes from someone else —
// purge bodies included — is bounded in size, nesting "and in work
// (linear in the size after that)". A purge of one entry replays its
// request's headers through Begin, which joined every Cache-Control (and
// Pragma) line to the ones before with a string concatenation per line:
// n lines copied O(n²) bytes, and a purge body of 4× the lines allocated
// ~16× the bytes (review Z7, stop 72). Every line is now joined once
// (joinDirectives).
func TestPurgeBodyCacheControlLinesCostLinearWork(t *testing.T) {
	env := newEnv(t, testConfig)
	body := func(lines int) []byte {
		var b strings.Builder
		b.WriteString(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"`)
		for i := 0; i < lines; i++ {
			b.WriteString(`,"cache-control":"max-stale=1"`)
		}
		b.WriteString(`},"body":` + chatRequest("q") + `}`)
		return []byte(b.String())
	}
	measure := func(lines int) (uint64, time.Duration, int) {
		b := body(lines)
		if _, err := env.cache.Purge(b, ""); err != nil { // warm, and a valid purge
			t.Fatalf("purge of %d bytes: %v", len(b), err)
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		t0 := time.Now()
		env.cache.Purge(b, "")
		d := time.Since(t0)
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc, d, len(b)
	}
	a1, d1, n1 := measure(500)
	a4, d4, n4 := measure(2000)
	t.Logf("%d-byte purge body: %d KiB allocated, %v; %d-byte body: %d KiB allocated, %v",
		n1, a1>>10, d1, n4, a4>>10, d4)
	if ratio := float64(a4) / float64(a1); ratio > 8 {
		t.Fatalf("a purge body 4x the size allocated %.1fx the bytes (%d KiB for a %d-byte body): work quadratic in its Cache-Control lines", ratio, a4>>10, n4)
	}
}

// README "Hostile bytes": work is linear in the size once bounded; RATIONALE
// "Keyed hashing for shared control state" keys every slot choice made from
// request bytes because XXH64 with a fixed seed "inverts easily". The
// embeddings batch's table of identical items (parseEmbeddings) is an
// open-addressing table with linear probing, slotted by Hash64(item, 0):
// a client can pick 2,048 distinct items sharing their low 12 bits
// offline, and each item then probes past all the ones before it —
// ~2 million probes for one request of ~20 KB, every time it is sent.
func TestEmbeddingsBatchDedupTableResistsChosenCollisions(t *testing.T) {
	const n = 2048 // maxBatchItems; the table has 4096 slots
	var colliding, plain []string
	var buf []byte
	for i := 0; len(colliding) < n; i++ {
		buf = strconv.AppendInt(append(buf[:0], '"'), int64(i), 10)
		buf = append(buf, '"')
		if Hash64(buf, 0)&4095 == 0 {
			colliding = append(colliding, string(buf))
		}
	}
	for i := 0; len(plain) < n; i++ {
		plain = append(plain, `"`+strconv.Itoa(1_000_000+i*4099)+`"`) // as long as the colliding ones
	}
	c, r := newEmbCache(t)
	best := func(items []string) (time.Duration, int) {
		body := `{"model":"e","input":[` + strings.Join(items, ",") + `]}`
		d := time.Duration(1 << 62)
		for i := 0; i < 7; i++ {
			t0 := time.Now()
			req := embRequest(c, r, body)
			if e := time.Since(t0); e < d {
				d = e
			}
			if req.Bypassed() || len(req.batch.distinct) != n {
				t.Fatalf("batch not split: %s/%s", req.Status, req.Reason)
			}
		}
		return d, len(body)
	}
	dp, np := best(plain)
	dc, nc := best(colliding)
	t.Logf("%d distinct items: %d-byte body %v; %d-byte body of chosen colliding items %v", n, np, dp, nc, dc)
	if dc > 4*dp {
		t.Fatalf("a batch of %d items chosen to collide in Hash64 took %v, %.1fx a batch of as many items of the same size (%v): quadratic probing",
			n, dc, float64(dc)/float64(dp), dp)
	}
}

// The brief's "memory amplification": a request within max_request_bytes
// must not make the VM allocate many times its size. parseRerank keeps a
// string header (16 bytes) and a bool for every document, grown by
// append, over a copy of the whole body (gjson.ParseBytes), and holds
// them until the answer is judged: a 128 KiB request of 65,000 one-byte
// documents ("documents":[0,0,…]) allocated over 6 MiB (review Z7, stop
// 72). A request of more than maxRerankDocuments now passes uncached. The embeddings
// kind holds a request of that size to 3 MiB
// (TestEmbeddingsBatchKeyPrefixesAreBounded: "the body, its canonical
// form, the params, the items: a few times 128 KiB"); rerank has no bound
// on its document count at all.
func TestRerankRequestMemoryIsBoundedBySize(t *testing.T) {
	env := newEnv(t, rerankCfg)
	env.request("rerank", alice, `{"model":"m","query":"q","documents":["a"]}`) // warm
	// The most documents a request may have, and as many as fit in
	// max_request_bytes (more than it may have: bypassed).
	for _, n := range []int{maxRerankDocuments, (DefaultMaxRequestBytes - 64) / 2} {
		body := `{"model":"m","query":"q","documents":[0` + strings.Repeat(",0", n-1) + `]}`
		if len(body) > DefaultMaxRequestBytes {
			t.Fatalf("body of %d bytes over max_request_bytes", len(body))
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		req := env.request("rerank", alice, body)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		runtime.GC()
		runtime.ReadMemStats(&after)
		held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		runtime.KeepAlive(req)
		t.Logf("%d-byte rerank request of %d documents (%s/%s): %d KiB allocated, %d KiB held while in flight", len(body), n, req.Status, req.Reason, alloc>>10, held>>10)
		if bypassed := req.Bypassed(); bypassed != (n > maxRerankDocuments) {
			t.Fatalf("%d documents: bypassed %v", n, bypassed)
		}
		if alloc > 3<<20 {
			t.Fatalf("one %d-byte rerank request allocated %d KiB (%dx its size)", len(body), alloc>>10, alloc/uint64(len(body)))
		}
	}
}

// The map that sorts out a batch whose items collide finds its repeats as
// the table does: each repeat points at its item's first occurrence, and
// the distinct items are listed once, in order.
func TestEmbeddingsBatchOfCollidingItemsFindsItsRepeats(t *testing.T) {
	var colliding []string
	var buf []byte
	for i := 0; len(colliding) < 300; i++ {
		buf = strconv.AppendInt(append(buf[:0], '"'), int64(i), 10)
		buf = append(buf, '"')
		if Hash64(buf, 0)&1023 == 0 {
			colliding = append(colliding, string(buf))
		}
	}
	items := append(append([]string(nil), colliding...), colliding[7], colliding[0], colliding[299])
	c, r := newEmbCache(t)
	req := embRequest(c, r, `{"model":"e","input":[`+strings.Join(items, ",")+`]}`)
	if req.Bypassed() {
		t.Fatalf("bypassed: %s", req.Reason)
	}
	b := req.batch
	if len(b.distinct) != 300 || b.distinct[0] != 0 || b.distinct[299] != 299 {
		t.Fatalf("%d distinct items", len(b.distinct))
	}
	for i, want := range map[int]int{300: 7, 301: 0, 302: 299, 5: 5} {
		if got := b.items[i].first; got != want {
			t.Fatalf("item %d: first occurrence %d, want %d", i, got, want)
		}
	}
}
