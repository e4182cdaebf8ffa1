//go:build !wasip1

package main

import (
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// README "Purge API": `POST <purge.path>`. Any other method carried the
// purge out all the same (review Z14, stop 72). It is now answered 405
// with Allow: POST, acts on nothing, and goes nowhere upstream (with the
// token in it).
func TestPurgeWithAnotherMethodIsRefused(t *testing.T) {
	hs := newHarness(t, chatConfig)
	a := chatBody("kept")
	hs.post(0, "/v1/chat/completions", a)
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		ex := hs.h.StartExchange(0, wasmhost.Request{Headers: [][2]string{{":method", m}, {":path", "/modelcache/purge"}, {":authority", "m"},
			{"authorization", "Bearer 0123456789abcdef-token"}}, Body: []byte(`{"all":true}`)})
		hs.h.Drain()
		res := ex.Response()
		if !ex.Done() || res.Status != 405 || hdr(res, "allow") != "POST" || ex.UpstreamContacted() {
			t.Fatalf("%s to the purge path: done %v, status %d, allow %q, upstream contacted %v: %s",
				m, ex.Done(), res.Status, hdr(res, "allow"), ex.UpstreamContacted(), res.Body)
		}
		expectCacheStatus(t, hs.post(1, "/v1/chat/completions", a), "hit")
	}
}
