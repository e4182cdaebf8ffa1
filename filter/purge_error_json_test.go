//go:build !wasip1

package main

import (
	"encoding/json"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// README "Purge API": a purge body the API does not understand gets 400,
// answered with content-type application/json. A replay whose path (or
// method) holds a control character or a byte that is not UTF-8 got a
// body strconv.Quote wrote: Go escapes (\x01, \xff) that are not JSON.
func TestPurgeErrorBodyIsJSONForAnyReplayedPath(t *testing.T) {
	hs := newHarness(t, chatConfig)
	for _, body := range []string{
		`{"method":"POST","path":"/v1/x\u0001","headers":{},"body":{}}`,
		"{\"method\":\"POST\",\"path\":\"/v1/x\xff\",\"headers\":{},\"body\":{}}",
		`{"method":"P\u0000ST","path":"/v1/chat/completions","headers":{},"body":{}}`,
	} {
		ex := hs.h.StartExchange(0, wasmhost.Request{Headers: [][2]string{{":method", "POST"}, {":path", "/modelcache/purge"}, {":authority", "m"},
			{"content-type", "application/json"}, {"authorization", "Bearer 0123456789abcdef-token"}}, Body: []byte(body)})
		hs.h.Drain()
		res := ex.Response()
		if !ex.Done() || res.Status != 400 {
			t.Fatalf("purge %q: done %v, status %d: %s", body, ex.Done(), res.Status, res.Body)
		}
		if hdr(res, "content-type") != "application/json" || !json.Valid(res.Body) {
			t.Errorf("purge %q: 400 answered as %q with a body that is not JSON: %s", body, hdr(res, "content-type"), res.Body)
		}
	}
}
