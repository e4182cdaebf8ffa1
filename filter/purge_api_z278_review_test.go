//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z278 (1). README "Purge API": a purge needs
// `Authorization: Bearer <token>`; one without it is refused 401
// (startPurge). RFC 9110 §15.5.2: "The server generating a 401 response
// MUST send a WWW-Authenticate header field containing at least one
// challenge applicable to the target resource" — as the 405 the same
// function sends carries the Allow header §15.5.6 requires. The purge
// API's 401 carries none: clients and libraries that act on the
// challenge (or conformance checks) see a malformed 401. Expected:
// WWW-Authenticate naming the Bearer scheme.
func TestZ278UnauthorizedPurgeCarriesABearerChallenge(t *testing.T) {
	hs := newHarness(t, chatConfig)
	for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Basic dXNlcjpwYXNz"} {
		h := [][2]string{{":method", "POST"}, {":path", "/modelcache/purge"}, {":authority", "m"}, {"content-type", "application/json"}}
		if auth != "" {
			h = append(h, [2]string{"authorization", auth})
		}
		ex := hs.h.StartExchange(0, wasmhost.Request{Headers: h, Body: []byte(`{"all":true}`)})
		hs.h.Drain()
		res := ex.Response()
		if !ex.Done() || res.Status != 401 || ex.UpstreamContacted() {
			t.Fatalf("setup: purge with authorization %q: done %v, status %d, upstream %v", auth, ex.Done(), res.Status, ex.UpstreamContacted())
		}
		if ch := hdr(res, "www-authenticate"); !strings.HasPrefix(strings.ToLower(ch), "bearer") {
			t.Fatalf("purge with authorization %q answered 401 with WWW-Authenticate %q (headers %q); RFC 9110 §15.5.2 requires a challenge (Bearer)", auth, ch, res.Headers)
		}
	}
}
