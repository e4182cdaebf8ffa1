package cachecore

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// wideVector is a float vector as OpenAI writes text-embedding-3-large's:
// 3,072 numbers of about 13 characters, some 40 KB of JSON.
func wideVector() string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i := range 3072 {
		if i > 0 {
			sb.WriteByte(',')
		}
		if i%2 == 1 {
			sb.WriteByte('-')
		}
		sb.WriteString("0.0" + strconv.Itoa(10000000+i*37%9000000))
	}
	sb.WriteByte(']')
	return sb.String()
}

// A batch's cached vectors are copied into an arena that lookupItems
// sizes, at the first hit, as that hit's vector (and a quarter more)
// times the number of distinct items in the batch, whether they are
// cached or not. One cached 40 KB vector first, then 2,047 new short
// items (a 15 KB request within the default max_request_bytes) makes the
// VM allocate about 100 MB on the lookup alone, for one entry of 40 KB
// read; under wasm the linear memory grown for it is never given back,
// and a few such requests in flight at once trap the VM. The README
// ("Memory bound") has a VM copy the entries it reads; the storing side's
// same sizing was bounded in review Z112. Expected: the arena grows with
// the vectors actually read, not the batch's length times the first one.
func TestBatchItemsLookupArenaSizedByEntriesRead(t *testing.T) {
	c, r := newEmbCache(t)
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
	req := embRequest(c, r, body)
	if req.Bypassed() {
		t.Fatalf("setup: bypassed (%s)", req.Reason)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c.Lookup(req)
	runtime.ReadMemStats(&after)
	if cached, total := req.ItemCounts(); total != maxBatchItems || (cached != 1 && cached != 0) {
		t.Fatalf("setup: items %d/%d", cached, total)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Errorf("looking up a %d-byte batch with one cached %d-byte vector allocated %d MiB", len(body), len(vec), got>>20)
	}
}
