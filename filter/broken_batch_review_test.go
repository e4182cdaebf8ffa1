//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// A partial embeddings batch is sent upstream rewritten: only the items
// the cache lacks. The upstream's answer then covers those items alone,
// numbered from 0, and must be merged with the cached ones before it may
// reach the client. A panic in the response headers callback fails the
// stream open: the binding lets the upstream's answer pass untouched. The
// client, who asked for 4 items, must never get a 200 whose data holds 2
// vectors at the wrong places (item 0's place holding item 1's vector).
func TestPanicOnPartialBatchServesNoWrongVectors(t *testing.T) {
	hs := crashHarnessWith(t, embConfig)
	odd, all := oddOf(4)
	hs.post(0, "/v1/embeddings", embReq(odd, "")) // items 1 and 3 cached
	body := embReq(all, "")
	res := hs.post(1, "/v1/embeddings", body, "x-modelcache-crash", "panic-on-response")
	if hs.counter("modelcache.panics") != 1 {
		t.Fatalf("setup: panics %d, want 1", hs.counter("modelcache.panics"))
	}
	if res.Status != 200 {
		// An error is an honest answer: the binding's (SetBrokenReply).
		if res.Status != 502 || !strings.Contains(string(res.Body), "retry the request") || !strings.Contains(hdr(res, "cache-status"), "detail=internal") {
			t.Fatalf("a broken partial batch answered %d %q %s; want the 502 asking for a retry", res.Status, hdr(res, "cache-status"), res.Body)
		}
		return
	}
	got := gjson.GetBytes(res.Body, "data").Array()
	ref := gjson.GetBytes(reference(t, body), "data").Array()
	if len(got) != len(ref) {
		t.Fatalf("a 4-item request was answered 200 with %d vectors (the upstream's answer for the 2 missing items, unmerged): %.300s",
			len(got), res.Body)
	}
	for i := range ref {
		if got[i].Get("embedding").Raw != ref[i].Get("embedding").Raw {
			t.Fatalf("vector %d differs from the uncached answer", i)
		}
	}
}
