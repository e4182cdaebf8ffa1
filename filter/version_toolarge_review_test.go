//go:build !wasip1

package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// README (model_version): "an answer the cache does not store, of a status
// the route caches, switches the version too". An answer refused because it
// is over max_entry_bytes reports its version in a header like any other:
// the predecessor's entries must not be served after it. The sized answer
// (content-length over the limit, refused at the headers) does retire them;
// the same answer without content-length (chunked, refused while it is
// copied) does not.
func TestAVersionSwitchInATooLargeAnswerRetiresItsPredecessor(t *testing.T) {
	for _, mode := range []string{"content-length", "chunked", "stream"} {
		sized, stream := mode == "content-length", mode == "stream"
		t.Run(mode, func(t *testing.T) {
			cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","model_version":{"header":"x-model-version"}}]}`
			hs := newHarness(t, cfg)
			expectCacheStatus(t, hs.post(0, "/v1/chat/completions", chatBody("first")), "stored")
			expectCacheStatus(t, hs.post(1, "/v1/chat/completions", chatBody("first")), "hit")
			v1 := hs.counter("modelcache.model_version_changes")

			big := `{"id":"x","object":"chat.completion","created":1,"model":"sim-chat","choices":[{"index":0,"message":{"role":"assistant","content":"` +
				strings.Repeat("a", 200<<10) + `"},"finish_reason":"stop"}]}`
			hs.fault = func(u *wasmhost.UpstreamRequest) bool {
				if !strings.Contains(string(u.Body), "second") {
					return false
				}
				h := [][2]string{{"content-type", "application/json"}, {"x-model-version", "v2"}}
				if sized {
					h = append(h, [2]string{"content-length", strconv.Itoa(len(big))})
				}
				b := []byte(big)
				if stream {
					h[0][1] = "text/event-stream"
					ev := `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"sim-chat","choices":[{"index":0,"delta":{"content":"` + strings.Repeat("a", 1000) + `"},"finish_reason":null}]}` + "\n\n"
					var chunks [][]byte
					for i := 0; i < 200; i++ {
						chunks = append(chunks, []byte(ev))
					}
					chunks = append(chunks, []byte(`data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"sim-chat","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n"), []byte("data: [DONE]\n\n"))
					u.RespondChunks(200, h, chunks)
					return true
				}
				u.RespondChunks(200, h, [][]byte{b[:len(b)/2], b[len(b)/2:]})
				return true
			}
			body := chatBody("second")
			if stream {
				body = streamBody("second")
			}
			res := hs.post(0, "/v1/chat/completions", body)
			if hdr(res, "x-model-version") != "v2" || res.Status != 200 {
				t.Fatalf("setup: status %d version %q", res.Status, hdr(res, "x-model-version"))
			}
			expectCacheStatus(t, res, "fwd=miss")
			hs.fault = nil

			again := hs.post(1, "/v1/chat/completions", chatBody("first"))
			if cs := hdr(again, "cache-status"); strings.Contains(cs, "hit") {
				t.Errorf("the upstream reported v2 in a 200 answer refused as too large (%q); v1's entry is still served: %q (x-model-version %q), model_version_changes %d -> %d, refused.too_large %d",
					hdr(res, "cache-status"), cs, hdr(again, "x-model-version"), v1, hs.counter("modelcache.model_version_changes"), hs.counter("modelcache_route.chat.refused.too_large"))
			}
		})
	}
}
