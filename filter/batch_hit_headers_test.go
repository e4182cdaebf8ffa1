//go:build !wasip1

package main

import (
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review R6 (stop 71): the mend d5f235f drops the headers that describe the
// upstream's body (Content-Digest, Content-MD5, ETag, Last-Modified) from a
// merged partial batch. A wholly cached batch is merged as well: its body
// is assembled from items (embeddingHit, embeddingBody), yet it replays the
// first item's stored headers. With those headers in stored_headers (which
// config accepts), a hit for one item of an earlier 2-item batch carries
// the digest and ETag of that 2-item body: the same contradiction the mend
// removed from the partial path.
func TestWholeBatchHitReplaysNoDigestOfAnotherBody(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h",
	  "stored_headers":["content-type","content-digest","etag"]}]}`
	hs := newHarness(t, cfg)
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		st, h, b := hs.simulate(u.Headers, u.Body)
		h = append(h, [2]string{"content-digest", "sha-256=:dGhlIHR3by1pdGVtIGJvZHk=:"}, [2]string{"etag", `"two-item-body"`})
		u.Respond(st, h, b)
		return true
	}
	_, all := oddOf(2)
	first := hs.post(0, "/v1/embeddings", embReq(all, "")) // both items stored from one 2-item answer
	expectCacheStatus(t, first, "fwd=miss")
	res := hs.post(1, "/v1/embeddings", embReq(all[:1], "")) // one of them: a wholly cached batch
	expectCacheStatus(t, res, "hit")
	if len(res.Body) >= len(first.Body) {
		t.Fatalf("setup: the 1-item hit (%d bytes) is not smaller than the 2-item answer (%d bytes)", len(res.Body), len(first.Body))
	}
	var kept []string
	for _, name := range []string{"content-digest", "etag"} {
		if v := hdr(res, name); v != "" {
			kept = append(kept, name+": "+v)
		}
	}
	if len(kept) > 0 {
		t.Fatalf("a 1-item batch hit (%d bytes, assembled from the cache) carries the headers of the 2-item upstream body (%d bytes): %q",
			len(res.Body), len(first.Body), kept)
	}
}
