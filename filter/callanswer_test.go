//go:build !wasip1

package main

import (
	"bytes"
	"strconv"
	"testing"

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
