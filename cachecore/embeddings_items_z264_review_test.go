package cachecore

import (
	"fmt"
	"strings"
	"testing"
)

// A wide vector as a model sends it (text-embedding-3-large: 3,072
// floats, about 61 KB as JSON), one entry well within the default
// max_entry_bytes (128 KiB).
func z264WideAnswer(n int) []byte {
	vec := "[" + strings.TrimSuffix(strings.Repeat("-0.0123456789012345,", 3072), ",") + "]"
	var data []string
	for i := 0; i < n; i++ {
		data = append(data, fmt.Sprintf(`{"object":"embedding","index":%d,"embedding":%s}`, i, vec))
	}
	return []byte(`{"object":"list","data":[` + strings.Join(data, ",") + `],"model":"e-1","usage":{"prompt_tokens":1,"total_tokens":1}}`)
}

func z264Repeats(item string, n int, extra ...string) string {
	items := make([]string, 0, n+len(extra))
	for i := 0; i < n; i++ {
		items = append(items, `"`+item+`"`)
	}
	for _, e := range extra {
		items = append(items, `"`+e+`"`)
	}
	return `{"model":"e","input":[` + strings.Join(items, ",") + `]}`
}

// maxVMAnswer is the largest answer the cache reads into the VM
// (README "Embeddings": a whole batch's answer "is read only up to its
// items, and one more, times max_entry_bytes (64 MiB at most)"; RATIONALE
// "Every parse of untrusted bytes is bounded first": "a wasm memory that
// once held a 64 MiB answer keeps that size until the VM is replaced").
const maxVMAnswer = 64 << 20

// One cached item, asked for 2,048 times in one request of 10 KB: the
// wholly cached batch is built in the VM as 2,048 copies of the 61 KB
// vector, a 125 MB answer — twice the largest answer the cache ever reads
// into the VM, from a request the size of one vector, repeatable at will
// by any tenant that cached one item (several in flight pass the 1 GiB a
// V8 VM may grow to). Nothing bounds the answer a hit or a merge builds:
// mergeTooLarge judges the missing items only, and the reservation of
// lookupItems is sized by distinct items.
func TestZ264WhollyCachedRepeatsBuildAnAnswerPastTheVMBound(t *testing.T) {
	c, r := newEmbCache(t)
	jsonHdr := [][2]string{{"content-type", "application/json"}}
	first := embRequest(c, r, `{"model":"e","input":["x"]}`)
	c.Lookup(first)
	ans := z264WideAnswer(1)
	if res := c.Store(first, 200, jsonHdr, ans, c.AdmitBody(first, jsonHdr, ans), 1); res.ItemsStored != 1 {
		t.Fatalf("store of one wide item: %+v", res)
	}
	body := z264Repeats("x", 2048)
	req := embRequest(c, r, body)
	if req.Bypassed() {
		t.Fatalf("the batch bypassed: %s", req.Reason)
	}
	if c.Lookup(req) != Serve {
		return // went upstream: the model's answer passes as any miss's
	}
	_, _, out := c.HitResponse(req)
	if len(out) > maxVMAnswer {
		t.Fatalf("a %d-byte request of one cached item repeated 2,048 times built a %d MiB answer in the VM (bound %d MiB)",
			len(body), len(out)>>20, maxVMAnswer>>20)
	}
}

// The same through a partial batch: 2,047 repeats of a cached item and
// one new item. mergeTooLarge sees one missing item and lets it through;
// the merged answer is 125 MB.
func TestZ264PartialBatchOfRepeatsMergesAnAnswerPastTheVMBound(t *testing.T) {
	c, r := newEmbCache(t)
	jsonHdr := [][2]string{{"content-type", "application/json"}}
	first := embRequest(c, r, `{"model":"e","input":["x"]}`)
	c.Lookup(first)
	ans := z264WideAnswer(1)
	if res := c.Store(first, 200, jsonHdr, ans, c.AdmitBody(first, jsonHdr, ans), 1); res.ItemsStored != 1 {
		t.Fatalf("store of one wide item: %+v", res)
	}
	req := embRequest(c, r, z264Repeats("x", 2047, "y"))
	if c.Lookup(req) != Forward || req.Status != StatusPartial {
		return // fetched whole: passes as any miss's
	}
	if _, rewritten := req.UpstreamBody(); !rewritten {
		return
	}
	up := z264WideAnswer(1)
	adm := c.AdmitBody(req, jsonHdr, up)
	if adm.Reason != ReasonNone {
		t.Fatalf("admit of the missing item's answer: %s", adm.Reason)
	}
	c.Store(req, 200, jsonHdr, up, adm, 1)
	merged := c.MergedBody(req, up)
	if len(merged) > maxVMAnswer {
		t.Fatalf("a partial batch of one cached item repeated 2,047 times and one new item merged a %d MiB answer in the VM (bound %d MiB)",
			len(merged)>>20, maxVMAnswer>>20)
	}
}
