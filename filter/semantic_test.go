//go:build !wasip1

package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

const semanticConfig = `{
  "upstream_cluster": "model",
  "routes": [
    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "1h",
     "semantic": {"embedding": {"cluster": "embeddings", "model": "sim-embed", "timeout": "1s"}}}
  ]
}`

func withEmbeddingsCluster() harnessOpt {
	return func(_ *harness, c *wasmhost.Config) { c.Clusters = append(c.Clusters, "embeddings") }
}

// The request is held while its turn is embedded (the simulator's
// deterministic vectors answer the call) and continues on the call's
// result: upstream on a miss, from the cache on an exact hit (no call).
func TestSemanticRequestContinuesOnTheEmbeddingCall(t *testing.T) {
	hs := newHarness(t, semanticConfig, withHTTPCalls(), withEmbeddingsCluster())
	hs.holdCalls = true
	body := chatBody("What is the capital of France?")
	ex := hs.h.StartExchange(0, wasmhost.Request{Headers: [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"},
		{":authority", "models"}, {"content-type", "application/json"}, {"authorization", "Bearer tenant-a"},
		{"content-length", strconv.Itoa(len(body))}}, Body: []byte(body)})
	hs.h.Drain()
	calls := hs.h.PendingHTTPCalls()
	if len(calls) != 1 || calls[0].Cluster != "embeddings" || !strings.Contains(string(calls[0].Body), "capital of France") {
		t.Fatalf("calls %v", calls)
	}
	if ex.Done() || hs.sim.Calls("/v1/chat/completions") != 0 {
		t.Fatal("the request went on before its turn was embedded")
	}
	hs.answerCall(calls[0])
	hs.h.Drain()
	if !ex.Done() {
		t.Fatalf("not resumed after the call: %s", ex.State())
	}
	expectCacheStatus(t, ex.Response(), "fwd=miss", "stored")
	if hs.counter("modelcache_route.chat.semantic.misses") != 1 || hs.counter("modelcache_route.chat.semantic.indexed") != 1 {
		t.Fatalf("misses %d indexed %d", hs.counter("modelcache_route.chat.semantic.misses"), hs.counter("modelcache_route.chat.semantic.indexed"))
	}
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", body), "hit")
	if n := len(hs.h.PendingHTTPCalls()); n != 0 {
		t.Fatalf("an exact hit called the embeddings server (%d calls)", n)
	}
	// A failed call: the request still goes upstream.
	ex2 := hs.h.StartExchange(1, wasmhost.Request{Headers: [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"},
		{":authority", "models"}, {"content-type", "application/json"}, {"authorization", "Bearer tenant-a"},
		{"content-length", strconv.Itoa(len(chatBody("another question")))}}, Body: []byte(chatBody("another question"))})
	hs.h.Drain()
	hs.h.PendingHTTPCalls()[0].Fail()
	hs.h.Drain()
	if !ex2.Done() {
		t.Fatalf("not resumed after a failed call: %s", ex2.State())
	}
	expectCacheStatus(t, ex2.Response(), "fwd=miss")
	if hs.counter("modelcache_route.chat.semantic.embed_timeout") != 1 {
		t.Fatal("embed failure not counted")
	}
}
