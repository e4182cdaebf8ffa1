//go:build !wasip1

package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// A partly cached embeddings batch is answered with cached items merged
// into the upstream's: the answer is as fresh as its least fresh item and
// as old as its oldest, as a fully cached batch says. Its Cache-Status ttl
// reported the new items' whole TTL (3600 where half the answer expires in
// 600 s) and it carried no Age, though 3000 s old items were in it.
func TestPartialBatchSaysTheFreshnessOfItsCachedItems(t *testing.T) {
	hs := newHarness(t, embConfig) // ttl 1h
	odd, all := oddOf(8)
	hs.post(0, "/v1/embeddings", embReq(odd, ""))
	hs.clock.Advance(50 * time.Minute)
	res := hs.post(1, "/v1/embeddings", embReq(all, ""))
	expectCacheStatus(t, res, "fwd=partial", "stored")
	if got := hdr(res, "x-modelcache-cached-items"); got != "4/8" {
		t.Fatalf("cached-items = %q", got)
	}
	cs := hdr(res, "cache-status")
	_, ttl, ok := strings.Cut(cs, "; ttl=")
	ttl, _, _ = strings.Cut(ttl, ";")
	if n, err := strconv.Atoi(ttl); !ok || err != nil || n > 600 {
		t.Errorf("Cache-Status %q: the cached half of the answer is fresh for 600 s only", cs)
	}
	if age, err := strconv.Atoi(hdr(res, "age")); err != nil || age < 3000 {
		t.Errorf("Age %q: the answer holds items stored 3000 s ago (headers %v)", hdr(res, "age"), res.Headers)
	}
	// The same batch, now wholly cached, says so.
	full := hs.post(0, "/v1/embeddings", embReq(all, ""))
	expectCacheStatus(t, full, "hit", "ttl=600")
	if hdr(full, "age") != "3000" {
		t.Fatalf("full hit age %q", hdr(full, "age"))
	}
}
