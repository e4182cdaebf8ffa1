//go:build !wasip1

package main

import (
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// A stream's tool-call index is the upstream's word, read as an int64:
// assembly bounds the tool calls it creates (maxStreamToolCalls), so a
// chunk naming index 2^63-1 (whose index+1 wraps) must be refused as
// bad_shape, not grow the tool-call list until the VM runs out of memory.
func TestStreamToolCallIndexAtTheInt64LimitIsRefused(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","finish_reasons":["stop","tool_calls"]}]}`
	for _, tc := range []struct{ name, calls string }{
		{"first call at the limit", `[{"index":9223372036854775807,"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]`},
		{"a float past the limit", `[{"index":1e300,"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]`},
		{"after a call at 0", `[{"index":0,"id":"t","type":"function","function":{"name":"f","arguments":"{}"}},{"index":9223372036854775807,"function":{"name":"g","arguments":"{}"}}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, cfg)
			hs.fault = func(u *wasmhost.UpstreamRequest) bool {
				u.RespondHeaders(200, [][2]string{{"content-type", "text/event-stream"}}, false)
				u.SendChunk([]byte(`data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":`+tc.calls+`},"finish_reason":"tool_calls"}]}`+"\n\n"), false)
				u.SendChunk([]byte("data: [DONE]\n\n"), true)
				return true
			}
			req := chatRequest("")
			req.Body = []byte(streamBody("huge tool index " + tc.name))
			ex := hs.h.StartExchange(0, req)
			hs.h.Drain()
			if failed := hs.h.FailedVMs(); len(failed) != 0 {
				t.Fatalf("the VM failed on a %d-byte stream: %v", len(ex.Response().Body), failed)
			}
			if hs.counter("modelcache_route.chat.stored") != 0 || hs.counter("modelcache_route.chat.refused.bad_shape") != 1 {
				t.Fatalf("stored %d, refused.bad_shape %d", hs.counter("modelcache_route.chat.stored"), hs.counter("modelcache_route.chat.refused.bad_shape"))
			}
		})
	}
}
