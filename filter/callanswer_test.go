//go:build !wasip1

package main

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// A call's answer is read into the VM only as far as the protocol can take
// it: the embeddings server's, for one, is refused past maxEmbeddingAnswer
// (320 KiB). Read whole, a 64 MiB answer grew the worker's memory by as
// much, and a wasm memory never shrinks: every answer the protocol refuses
// for its size set the worker's memory at its size until the VM is
// replaced.
func TestCallAnswerIsReadOnlyAsFarAsTheProtocolTakes(t *testing.T) {
	hs := newHarness(t, semanticConfig, withHTTPCalls(), withEmbeddingsCluster())
	hs.holdCalls = true
	body := chatBody("What is the capital of France?")
	ex := hs.h.StartExchange(0, wasmhost.Request{Headers: [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"},
		{":authority", "models"}, {"content-type", "application/json"}, {"authorization", "Bearer tenant-a"},
		{"content-length", strconv.Itoa(len(body))}}, Body: []byte(body)})
	hs.h.Drain()
	calls := hs.h.PendingHTTPCalls()
	if len(calls) != 1 || calls[0].Cluster != "embeddings" {
		t.Fatalf("calls %v", calls)
	}
	before := hs.h.MemoryBytes(0)
	huge := append(append([]byte(`{"data":[{"embedding":[`), bytes.Repeat([]byte("0.5,"), 16<<20)...), "1]}]}"...)
	calls[0].Respond(200, [][2]string{{"content-type", "application/json"}}, huge)
	hs.h.Drain()
	if !ex.Done() {
		t.Fatalf("not resumed after the call: %s", ex.State())
	}
	if hs.counter("modelcache.chat.semantic.embed_error") != 1 {
		t.Fatal("the oversized answer was not refused as an embed error")
	}
	if grown := hs.h.MemoryBytes(0) - before; grown > 8<<20 {
		t.Fatalf("an embeddings answer of %d bytes grew the worker's memory by %d bytes", len(huge), grown)
	}
}

// A background refresh's and a shadow call's answers are read only as far
// as the protocol takes them too: both are refused past the route's
// max_entry_bytes (the refresh's store, the shadow's comparison), so a
// 64 MiB answer to either grew the worker's memory by as much, for good.
// Counted as before: the refresh refused, the shadow an error.
func TestBackgroundAnswersAreReadOnlyAsFarAsTheProtocolTakes(t *testing.T) {
	huge := append(append([]byte(`{"choices":[{"message":{"content":"`), bytes.Repeat([]byte("x"), 64<<20)...), `"}}]}`...)
	for _, tc := range []struct {
		name, config, counter string
		stale                 time.Duration
	}{
		{"refresh", swrConfig, "modelcache.chat.background.refused", 70 * time.Second},
		{"shadow", `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
		  "shadow":{"sample":1.0,"max_concurrent":4,"min_samples":100,"max_divergence":0.5,"window":"10m"}}]}`, "modelcache.chat.shadow.errors", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, tc.config, withHTTPCalls())
			hs.holdCalls = true
			body := chatBody("a large background answer")
			expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "miss", "stored")
			hs.clock.Advance(tc.stale)
			expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "hit")
			calls := hs.h.PendingHTTPCalls()
			if len(calls) != 1 || calls[0].Cluster != "model" {
				t.Fatalf("calls %v", calls)
			}
			before := hs.h.MemoryBytes(0)
			calls[0].Respond(200, [][2]string{{"content-type", "application/json"}}, huge)
			hs.h.Drain()
			if hs.counter(tc.counter) != 1 {
				t.Fatalf("%s = %d, want 1", tc.counter, hs.counter(tc.counter))
			}
			if grown := hs.h.MemoryBytes(0) - before; grown > 8<<20 {
				t.Fatalf("an answer of %d bytes grew the worker's memory by %d bytes", len(huge), grown)
			}
		})
	}
}
