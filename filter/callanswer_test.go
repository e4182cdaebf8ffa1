//go:build !wasip1

package main

import (
	"bytes"
	"strconv"
	"strings"
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
	// 24 MiB: under Envoy's 32 MiB limit on a call's answer (past it the
	// call fails, unread: wasmhost as Envoy, review Z251).
	huge := append(append([]byte(`{"data":[{"embedding":[`), bytes.Repeat([]byte("0.5,"), 6<<20)...), "1]}]}"...)
	calls[0].Respond(200, [][2]string{{"content-type", "application/json"}}, huge)
	hs.h.Drain()
	if !ex.Done() {
		t.Fatalf("not resumed after the call: %s", ex.State())
	}
	if hs.counter("modelcache_route.chat.semantic.embed_error") != 1 {
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
	// 24 MiB: under Envoy's 32 MiB limit on a call's answer (review Z251).
	huge := append(append([]byte(`{"choices":[{"message":{"content":"`), bytes.Repeat([]byte("x"), 24<<20)...), `"}}]}`...)
	for _, tc := range []struct {
		name, config, counter string
		stale                 time.Duration
	}{
		{"refresh", swrConfig, "modelcache_route.chat.background.refused", 70 * time.Second},
		{"shadow", `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
		  "shadow":{"sample":1.0,"max_concurrent":4,"min_samples":100,"max_divergence":0.5,"window":"10m"}}]}`, "modelcache_route.chat.shadow.errors", 0},
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

// refetchPending caches one item, then sends a batch of it and two new
// ones whose answer (the two only) the upstream marks no-store: the
// whole batch's refetch is left pending, for the test to answer, on
// worker 1.
func refetchPending(t *testing.T, config string) (*harness, *wasmhost.Exchange, []*wasmhost.HTTPCall) {
	t.Helper()
	hs := newHarness(t, config, withHTTPCalls())
	ex, calls := refetchPendingIn(hs)
	return hs, ex, calls
}

// refetchPendingIn is refetchPending in hs (made withHTTPCalls), the batch
// sent with the extra request headers.
func refetchPendingIn(hs *harness, extra ...[2]string) (*wasmhost.Exchange, []*wasmhost.HTTPCall) {
	t := hs.t
	t.Helper()
	hs.post(0, "/v1/embeddings", embReq([]string{"cached"}, ""))
	hs.fault = func(u *wasmhost.UpstreamRequest) bool { // the missing items' answer, refused
		status, h, b := hs.simulate(u.Headers, u.Body)
		u.Respond(status, append(h, [2]string{"cache-control", "no-store"}), b)
		return true
	}
	hs.holdCalls = true
	body := embReq([]string{"cached", "new 1", "new 2"}, "")
	ex := hs.h.StartExchange(1, wasmhost.Request{Headers: append([][2]string{{":method", "POST"}, {":path", "/v1/embeddings"},
		{":authority", "models"}, {":scheme", "http"}, {"content-type", "application/json"}, {"authorization", "Bearer tenant-a"},
		{"content-length", strconv.Itoa(len(body))}}, extra...), Body: []byte(body)})
	hs.h.Drain()
	calls := hs.h.PendingHTTPCalls()
	if len(calls) != 1 || calls[0].Cluster != "model" {
		t.Fatalf("calls %v", calls)
	}
	return ex, calls
}

// The whole batch asked for again after a partial answer was refused
// (Flight.Refetch) is read only as far as such a batch can be: its items
// times max_entry_bytes. Read whole, a 64 MiB answer grew the worker's
// memory by as much, for good; past that bound the client gets a 502.
func TestRefetchAnswerIsReadOnlyAsFarAsTheBatchCanBe(t *testing.T) {
	config := strings.Replace(embConfig, `"ttl": "1h",`, `"ttl": "1h", "max_entry_bytes": 1024,`, 1)
	hs, ex, calls := refetchPending(t, config)
	before := hs.h.MemoryBytes(1)
	// 24 MiB: under Envoy's 32 MiB limit on a call's answer (review Z251).
	huge := append(append([]byte(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[`), bytes.Repeat([]byte("0.5,"), 6<<20)...), "1]}]}"...)
	calls[0].Respond(200, [][2]string{{"content-type", "application/json"}}, huge)
	hs.h.Drain()
	if !ex.Done() {
		t.Fatalf("not resumed after the call: %s", ex.State())
	}
	if res := ex.Response(); res.Status != 502 || len(res.Body) > 1024 {
		t.Fatalf("client got %d with %d bytes, want a 502", res.Status, len(res.Body))
	}
	if grown := hs.h.MemoryBytes(1) - before; grown > 8<<20 {
		t.Fatalf("a refetched answer of %d bytes grew the worker's memory by %d bytes", len(huge), grown)
	}
}

// The whole batch is asked for again without accept-encoding; an answer
// encoded anyway cannot be passed on as the plain JSON its replacement
// says it is: the client gets a 502, not gzip bytes labelled JSON.
func TestRefetchAnswerEncodedIsNotPassedOn(t *testing.T) {
	hs, ex, calls := refetchPending(t, embConfig)
	calls[0].Respond(200, [][2]string{{"content-type", "application/json"}, {"content-encoding", "gzip"}}, []byte("\x1f\x8b\x08\x00not really"))
	hs.h.Drain()
	if !ex.Done() {
		t.Fatalf("not resumed after the call: %s", ex.State())
	}
	if res := ex.Response(); res.Status != 502 || bytes.HasPrefix(res.Body, []byte("\x1f\x8b")) {
		t.Fatalf("client got %d: %q", res.Status, res.Body)
	}
}

// The bound leaves the whole answer room beyond its items' entries (the
// list around them, usage, each item's index): an answer of three items
// each as large as max_entry_bytes allows is passed on, not refused.
func TestRefetchAnswerHasRoomBeyondItsItems(t *testing.T) {
	config := strings.Replace(embConfig, `"ttl": "1h",`, `"ttl": "1h", "max_entry_bytes": 1024,`, 1)
	hs, ex, calls := refetchPending(t, config)
	answer := []byte(`{"object":"list","data":[],"usage":{"prompt_tokens":3,"total_tokens":3},"pad":"` + strings.Repeat("x", 3*1024) + `"}`)
	calls[0].Respond(200, [][2]string{{"content-type", "application/json"}}, answer)
	hs.h.Drain()
	if res := ex.Response(); !ex.Done() || res.Status != 200 || !bytes.Equal(res.Body, answer) {
		t.Fatalf("client got %d with %d bytes, want the refetched answer's %d", res.Status, len(res.Body), len(answer))
	}
}

// The whole batch asked for again reaches the client as the model answered
// it: its status and its own headers (content-type with its charset,
// retry-after, x-model-version), in place of the discarded partial
// answer's (its x-model-version, its cache-control: no-store), but not an
// upstream's x-modelcache- headers and with the content-length of the body
// sent. A reply of the cache's own (an encoded answer's 502) carries none
// of the discarded answer's either.
func TestRefetchAnswerReachesTheClientWithItsOwnHeaders(t *testing.T) {
	overloaded := []byte("model overloaded, try again later\n")
	for _, tc := range []struct {
		name    string
		status  int
		headers [][2]string
		body    []byte
		want    [][2]string // exactly these, once each
		absent  []string
	}{
		{"the model's 503", 503,
			[][2]string{{"content-type", "text/plain; charset=utf-8"}, {"retry-after", "7"}, {"x-model-version", "v2"},
				{"x-modelcache-cached-items", "3/3"}, {"content-length", strconv.Itoa(len(overloaded))}, {"connection", "close"}},
			overloaded,
			[][2]string{{"content-type", "text/plain; charset=utf-8"}, {"retry-after", "7"}, {"x-model-version", "v2"},
				{"content-length", strconv.Itoa(len(overloaded))}},
			[]string{"cache-control", "x-modelcache-cached-items", "connection"}},
		{"the cache's 502", 200,
			[][2]string{{"content-type", "application/json"}, {"content-encoding", "gzip"}, {"x-model-version", "v2"}},
			[]byte("\x1f\x8b\x08\x00not really"),
			[][2]string{{"content-type", "application/json"}},
			[]string{"cache-control", "x-model-version", "content-encoding"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs, ex, calls := refetchPending(t, embConfig)
			calls[0].Respond(tc.status, tc.headers, tc.body)
			hs.h.Drain()
			if !ex.Done() {
				t.Fatalf("not resumed after the call: %s", ex.State())
			}
			res := ex.Response()
			if tc.status == 503 && (res.Status != 503 || !bytes.Equal(res.Body, tc.body)) || tc.status == 200 && res.Status != 502 {
				t.Fatalf("client got %d %q", res.Status, res.Body)
			}
			count := func(name string) (n int, last string) {
				for _, kv := range res.Headers {
					if kv[0] == name {
						n, last = n+1, kv[1]
					}
				}
				return n, last
			}
			for _, w := range tc.want {
				if n, v := count(w[0]); n != 1 || v != w[1] {
					t.Errorf("%s: %d headers, the last %q; want one, %q (headers %v)", w[0], n, v, w[1], res.Headers)
				}
			}
			for _, name := range tc.absent {
				if n, v := count(name); n != 0 {
					t.Errorf("%s: %q reached the client (headers %v)", name, v, res.Headers)
				}
			}
			if n, v := count("content-length"); n != 1 || v != strconv.Itoa(len(res.Body)) {
				t.Errorf("content-length %q (%d of them) for %d bytes", v, n, len(res.Body))
			}
			// fwd-status is the model's (RFC 9211), not the cache's own 502
			// in its place (review Z103; it read the client's status before).
			expectCacheStatus(t, res, "fwd=miss", "fwd-status="+strconv.Itoa(tc.status))
		})
	}
}

// A batch whose partial answer was replaced by the whole batch's is
// counted as its Cache-Status says, a miss (fwd=miss): not a partial, and
// none of its items as hits, since every vector the client got came from
// the refetch.
func TestRefetchedBatchIsCountedAsTheMissItsCacheStatusSays(t *testing.T) {
	hs, ex, calls := refetchPending(t, embConfig)
	hs.answerCall(calls[0])
	hs.h.Drain()
	res := ex.Response()
	if !ex.Done() || res.Status != 200 || hs.counter("modelcache_route.emb.items.refetch") != 1 {
		t.Fatalf("no refetch: %d, items.refetch %d", res.Status, hs.counter("modelcache_route.emb.items.refetch"))
	}
	expectCacheStatus(t, res, "fwd=miss")
	got, sum := requestCounters(hs, "emb")
	if sum != 2 || got["miss"] != 2 || hs.counter("modelcache_route.emb.items.hit") != 0 {
		t.Fatalf("2 misses (the first batch, then the refetched one) counted as %d: %s, items.hit %d",
			sum, fmtCounters(got), hs.counter("modelcache_route.emb.items.hit"))
	}
}
