//go:build !wasip1

package main

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// README, embedding.breaker.failures: "calls in a row (per VM, per
// embeddings server) that failed or timed out, after which the call is
// skipped: a new turn is an exact miss at once (semantic.breaker_open),
// not after the call's deadline". The embeddings call of a turn belongs
// to its request's stream (Call.Stream) and sets no Gone, so the host
// drops its result when the client has left by then (filter/actions.go,
// dispatch: `gone && call.Gone == nil`): the breaker never hears of it
// (embedBreaker.result is only called from Done). With a server that
// hangs and clients that give up before embedding.timeout (here 1s, 10s
// at most), no failure is ever counted and the breaker never opens: every
// new turn goes on holding its request for the call, the very wait the
// breaker is for (RATIONALE, "The embeddings server has a breaker too").
// Expected: after 5 such calls failed in a row, the 6th new turn is
// skipped (semantic.breaker_open, no call).
func TestReviewZ258EmbedBreakerCountsCallsWhoseClientLeft(t *testing.T) {
	hs := newHarness(t, semanticConfig, withHTTPCalls(), withEmbeddingsCluster())
	hs.holdCalls = true
	start := func(i int) *wasmhost.Exchange {
		body := chatBody(fmt.Sprintf("what is question %d about?", i))
		ex := hs.h.StartExchange(0, wasmhost.Request{Headers: [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"},
			{":authority", "models"}, {"content-type", "application/json"}, {"authorization", "Bearer tenant-a"},
			{"content-length", strconv.Itoa(len(body))}}, Body: []byte(body)})
		hs.h.Drain()
		return ex
	}
	for i := 0; i < 5; i++ {
		ex := start(i)
		calls := hs.h.PendingHTTPCalls()
		if len(calls) != 1 || calls[0].Cluster != "embeddings" {
			t.Fatalf("setup: turn %d: calls %v", i, calls)
		}
		ex.Abort() // the client gives up while the server hangs
		hs.h.Drain()
		calls[0].Fail() // the call ends: reset (as its deadline would)
		hs.h.Drain()
	}
	ex := start(5)
	calls := hs.h.PendingHTTPCalls()
	if len(calls) != 0 || hs.counter("modelcache_route.chat.semantic.breaker_open") != 1 {
		t.Errorf("after 5 embeddings calls in a row failed (their clients gone by then): %d call(s) made, breaker_open %d, request held: %v; "+
			"want no call, semantic.breaker_open 1", len(calls), hs.counter("modelcache_route.chat.semantic.breaker_open"), !ex.Done() && len(calls) > 0)
	}
	for _, c := range calls {
		c.Fail()
	}
	hs.h.Drain()
}
