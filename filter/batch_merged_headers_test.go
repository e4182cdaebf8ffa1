//go:build !wasip1

package main

import (
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review H2 (stop 71): response headers stored and replayed.

// A partly cached embeddings batch goes upstream with only its missing
// items; the filter replaces the answer's body with the merged whole batch
// (and its content-length), but leaves every other header of the
// upstream's answer, including those that describe the upstream's own
// body: Content-Digest (RFC 9530), Content-MD5, an ETag. The client gets a
// body its digest headers contradict (a client or gateway that checks
// Content-Digest rejects a correct answer; an ETag names a representation
// the client never received).
func TestPartialBatchMergedAnswerKeepsNoDigestOfTheUpstreamBody(t *testing.T) {
	hs := newHarness(t, embConfig)
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		st, h, b := hs.simulate(u.Headers, u.Body)
		h = append(h, [2]string{"content-digest", "sha-256=:bm90IHRoZSBtZXJnZWQgYm9keQ==:"},
			[2]string{"content-md5", "bm90IHRoZSBtZXJnZWQ="}, [2]string{"etag", `"upstream-partial-body"`})
		u.Respond(st, h, b)
		return true
	}
	odd, all := oddOf(4)
	hs.post(0, "/v1/embeddings", embReq(odd, "")) // items 1 and 3 cached
	res := hs.post(1, "/v1/embeddings", embReq(all, ""))
	expectCacheStatus(t, res, "fwd=partial")
	if got := string(res.Body); got == "" {
		t.Fatal("no body")
	}
	var kept []string
	for _, name := range []string{"content-digest", "content-md5", "etag"} {
		if v := hdr(res, name); v != "" {
			kept = append(kept, name+": "+v)
		}
	}
	if len(kept) > 0 {
		t.Fatalf("the merged batch (%d bytes, 2 of 4 items from the cache) carries the upstream's headers for its 2-item body: %q",
			len(res.Body), kept)
	}
}
