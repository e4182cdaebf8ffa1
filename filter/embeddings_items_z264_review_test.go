//go:build !wasip1

package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
	"github.com/tidwall/gjson"
)

// wideUpstream answers embeddings with 3,072-float vectors (about 61 KB
// each as JSON, text-embedding-3-large's width), one per input.
func wideUpstream(u *wasmhost.UpstreamRequest) bool {
	vec := "[" + strings.TrimSuffix(strings.Repeat("-0.0123456789012345,", 3072), ",") + "]"
	var data []string
	for i := range gjson.GetBytes(u.Body, "input").Array() {
		data = append(data, fmt.Sprintf(`{"object":"embedding","index":%d,"embedding":%s}`, i, vec))
	}
	b := `{"object":"list","data":[` + strings.Join(data, ",") + `],"model":"text-embedding-3-large","usage":{"prompt_tokens":1,"total_tokens":1}}`
	u.Respond(200, [][2]string{{"content-type", "application/json"}, {"content-length", strconv.Itoa(len(b))}}, []byte(b))
	return true
}

// One tenant caches one item, then asks for it 2,048 times in one 8 KB
// request: the wholly cached batch is built in the worker VM as 2,048
// copies of the vector, 120 MiB, and the VM's memory, which never shrinks,
// grows by that. The cache reads no answer larger than 64 MiB into the VM
// (a refetch's is cut there; RATIONALE "Every parse of untrusted bytes is
// bounded first"), and the same request uncached passes the model's
// answer through without holding it; a few such hits on a worker, with
// other allocations live, reach the 1 GiB a V8 VM may grow to.
func TestZ264RepeatedCachedItemGrowsTheWorkerPastTheAnswerBound(t *testing.T) {
	hs := newHarness(t, `{"upstream_cluster":"model","routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h"}]}`)
	hs.fault = wideUpstream
	if res := hs.post(0, "/v1/embeddings", `{"model":"text-embedding-3-large","input":["x"]}`); res.Status != 200 {
		t.Fatalf("first request: %d", res.Status)
	}
	items := strings.TrimSuffix(strings.Repeat(`"x",`, 2048), ",")
	body := `{"model":"text-embedding-3-large","input":[` + items + `]}`
	before := hs.h.MemoryBytes(0)
	res := hs.post(0, "/v1/embeddings", body)
	grown := hs.h.MemoryBytes(0) - before
	t.Logf("status %d, cache-status %q, cached items %q, answer %d MiB; worker 0 memory %d MiB -> %d MiB",
		res.Status, hdr(res, "cache-status"), hdr(res, "x-modelcache-cached-items"), len(res.Body)>>20, before>>20, (before+grown)>>20)
	if grown > 64<<20 {
		t.Fatalf("one %d-byte request for a cached item repeated 2,048 times grew the worker VM's memory by %d MiB (answer %d MiB, %s)",
			len(body), grown>>20, len(res.Body)>>20, hdr(res, "x-modelcache-cached-items"))
	}
}
