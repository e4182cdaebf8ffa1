//go:build !wasip1

package main

import (
	"bytes"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Judging a recorded stream must cost memory linear in its size with a
// small constant (README "Hostile bytes"): a stream of many tiny events
// within max_entry_bytes (an accepted 32 MiB) may be refused, but must
// not take the VM down. Judging once materialised every event first (a
// 48-byte SSEEvent, plus its data, per 5-byte "id:\n\n"), about 10x the
// stream: a 31 MiB stream ran the VM out of its 1 GiB, while the same
// bytes in 1 KB events were judged and stored.
func TestStreamOfManyTinyEventsDoesNotExhaustTheVM(t *testing.T) {
	const mib = 1 << 20
	cfg := `{"store":{"buckets":16,"ways":2,"max_entry_bytes":33554432},"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions"}]}`
	for _, tc := range []struct{ name, event string }{
		{"id-only events", "id:\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, cfg)
			chunk := bytes.Repeat([]byte(tc.event), mib/len(tc.event))
			first := `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}` + "\n\n"
			hs.fault = func(u *wasmhost.UpstreamRequest) bool {
				u.RespondHeaders(200, [][2]string{{"content-type", "text/event-stream"}}, false)
				u.SendChunk([]byte(first), false)
				for i := 0; i < 31; i++ {
					u.SendChunk(chunk, false)
				}
				u.SendChunk([]byte("data: [DONE]\n\n"), true)
				return true
			}
			req := chatRequest("")
			req.Body = []byte(streamBody("tiny events " + tc.name))
			ex := hs.h.StartExchange(0, req)
			hs.h.Drain()
			if failed := hs.h.FailedVMs(); len(failed) != 0 {
				t.Fatalf("a %d MiB stream of %q events (max_entry_bytes 32 MiB) took the VM down: %v", 31, tc.event, failed)
			}
			if r := ex.Response(); !ex.Done() || r.Status != 200 || !bytes.HasSuffix(r.Body, []byte("data: [DONE]\n\n")) {
				t.Fatalf("the client's stream was affected: %s", ex.State())
			}
		})
	}
}
