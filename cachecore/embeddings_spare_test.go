package cachecore

import (
	"fmt"
	"strings"
	"testing"
)

// A batch kept for reuse holds only its arenas (≤ maxSpareBatch), not what
// its items pointed to: cached vectors (entries → vecs) and answer slices.
func TestSpareBatchKeepsOnlyItsArenas(t *testing.T) {
	c, r := newEmbCache(t)
	jsonHdr := [][2]string{{"content-type", "application/json"}}
	vec := "[" + strings.TrimSuffix(strings.Repeat("0.125,", 2000), ",") + "]" // 12 KB
	var all []string
	for i := 0; i < 240; i++ {
		all = append(all, fmt.Sprintf("item-%d", i))
	}
	// Store them, 8 per request (each answer ≈ 96 KB < max_entry_bytes).
	for from := 0; from < len(all); from += 8 {
		in := all[from : from+8]
		req := embRequest(c, r, `{"model":"e","input":["`+strings.Join(in, `","`)+`"]}`)
		c.Lookup(req)
		var data []string
		for i := range in {
			data = append(data, fmt.Sprintf(`{"object":"embedding","index":%d,"embedding":%s}`, i, vec))
		}
		ans := []byte(`{"object":"list","data":[` + strings.Join(data, ",") + `],"model":"e-1","usage":{}}`)
		adm := c.AdmitBody(req, jsonHdr, ans)
		if res := c.Store(req, 200, jsonHdr, ans, adm, 1); res.ItemsStored != len(in) {
			t.Fatalf("store: %+v %s", res, adm.Reason)
		}
		// not kept: these batches are dropped
	}
	c.spareBatch = nil
	// A: every item cached, served (a plain hit: Recycle keeps its batch).
	a := embRequest(c, r, `{"model":"e","input":["`+strings.Join(all, `","`)+`"]}`)
	if c.Lookup(a) != Serve {
		t.Fatalf("A: %s", a.Status)
	}
	c.HitResponse(a)
	c.keepBatch(a.batch) // Stream.Recycle
	if c.spareBatch == nil {
		t.Fatal("A's batch was over the bound")
	}
	// B: a one-item batch takes the arenas, misses, is answered and kept.
	b := embRequest(c, r, `{"model":"e","input":["zzz"]}`)
	c.Lookup(b)
	ans2 := embAnswer([]string{"zzz"})
	adm := c.AdmitBody(b, jsonHdr, ans2)
	c.Store(b, 200, jsonHdr, ans2, adm, 1)
	c.keepBatch(b.batch)
	sb := c.spareBatch
	if sb == nil {
		t.Fatal("B's batch not kept")
	}
	pinned := 0
	for _, it := range sb.items[:cap(sb.items)] {
		if it.entry != nil {
			pinned += cap(it.entry.Body)
		}
		pinned += cap(it.fresh)
	}
	if pinned > maxSpareBatch {
		t.Fatalf("the spare batch (one item in use) still reaches %d bytes of A's cached vectors through stale items (bound %d)", pinned, maxSpareBatch)
	}
}
