//go:build !wasip1

package main

import (
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
	"github.com/tidwall/gjson"
)

// Never a wrong answer: a partly cached embeddings batch goes upstream
// asking only for its missing items; the client's answer is the merge
// (ActReplaceBody). When that one write (proxy_set_buffer_bytes of the
// response body) fails, plugin.perform drops the error and still replaces
// content-length and the headers: the client gets the upstream's answer
// to the rewritten request — the missing items only, at the wrong
// indices — as the answer to its whole batch, and no fault is counted.
func TestPartialBatchWhoseMergeCannotBeWrittenIsNotServedShort(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, embConfig, withFaults(f), withHTTPCalls())
	odd, all := oddOf(8)
	if res := hs.post(0, "/v1/embeddings", embReq(odd, "")); res.Status != 200 {
		t.Fatalf("priming: %d", res.Status)
	}
	f.set(func(c wasmhost.HostCall) (wasmhost.Status, bool) {
		return wasmhost.StatusInternalFailure, c.Name == "proxy_set_buffer_bytes" && len(c.Args) > 0 &&
			wasmhost.BufferType(uint32(c.Args[0])) == wasmhost.BufferHTTPResponseBody
	})
	body := embReq(all, "")
	internal := hs.counter("modelcache.internal_errors")
	res := hs.post(0, "/v1/embeddings", body)
	f.set(nil)
	if f.failed() == 0 {
		t.Fatal("no response body write was attempted (not a partial batch?)")
	}
	got := gjson.GetBytes(res.Body, "data.#").Int()
	if res.Status == 200 && got != int64(len(all)) {
		t.Errorf("client got 200 %q with %d vectors for its %d inputs (body %.200s)", hdr(res, "cache-status"), got, len(all), res.Body)
	}
	if hs.counter("modelcache.internal_errors") == internal {
		t.Errorf("the failed write was not counted (internal_errors %d)", internal)
	}
}
