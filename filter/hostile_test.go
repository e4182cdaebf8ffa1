//go:build !wasip1

package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Issue 13 item 4 under the wazero host (which models Envoy's body
// buffering, its buffer limit and the wasm Context's pre-merge of a held
// body): a small first chunk, then one that alone nearly fills the buffer
// limit. A held body over the limit is a 413 in Envoy, whatever the plugin
// answers; the plugin must never hold one that can get there.
func TestOversizedBodyNeverGets413(t *testing.T) {
	big := []byte(chatBody("big " + strings.Repeat("x", 3<<19))) // 1.5 MiB
	for _, tc := range []struct {
		name          string
		contentLength bool
		chunks        [][]byte
	}{
		{"content-length, small first chunk", true, [][]byte{big[:100], big[100:]}},
		{"chunked, small first chunk", false, [][]byte{big[:100], big[100:]}},
		{"chunked, three chunks", false, [][]byte{big[:100], big[100 : 64<<10], big[64<<10:]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, chatConfig)
			h := [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, {":authority", "models"},
				{"authorization", "Bearer tenant-a"}, {"content-type", "application/json"}}
			if tc.contentLength {
				h = append(h, [2]string{"content-length", strconv.Itoa(len(big))})
			}
			res, err := hs.h.Exchange(0, wasmhost.Request{Headers: h, BodyChunks: tc.chunks})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != 200 {
				t.Fatalf("status %d (%s)", res.Status, res.Body)
			}
			expectCacheStatus(t, res, "fwd=bypass", "detail=body-too-large")
			if hs.upstream.Load() != 1 {
				t.Fatalf("upstream requests = %d", hs.upstream.Load())
			}
		})
	}
}

// A chunked body under the limit is cached, and the upstream gets it whole.
func TestChunkedBodyIsCached(t *testing.T) {
	hs := newHarness(t, chatConfig)
	body := []byte(chatBody("chunked " + strings.Repeat("y", 50<<10)))
	send := func(cuts ...int) *wasmhost.ClientResponse {
		var chunks [][]byte
		prev := 0
		for _, c := range append(cuts, len(body)) {
			chunks = append(chunks, body[prev:c])
			prev = c
		}
		res, err := hs.h.Exchange(0, wasmhost.Request{
			Headers: [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, {":authority", "models"},
				{"authorization", "Bearer tenant-a"}, {"content-type", "application/json"}},
			BodyChunks: chunks,
		})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	expectCacheStatus(t, send(10, 1000, 30000), "fwd=miss", "stored")
	expectCacheStatus(t, send(1, 2), "hit")
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", string(body)), "hit")
	if hs.upstream.Load() != 1 {
		t.Fatalf("upstream requests = %d", hs.upstream.Load())
	}
}
