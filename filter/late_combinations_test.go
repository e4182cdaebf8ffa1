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

// Late decisions (Istio's WasmPlugin) beside the features they meet: L2,
// semantic, embeddings, directives, followers, aborts, streams, purges
// (review Z62's probes, kept as regression tests).

// late + stale_if_error: the model fails, the stale entry answers.
func TestLateWithStaleIfError(t *testing.T) {
	hs := lateHarness(t, swrConfig, withWorkers(1))
	body := chatBody("sie late")
	first := hs.post(0, "/v1/chat/completions", body)
	if first.Status != 200 {
		t.Fatalf("first %d", first.Status)
	}
	hs.clock.Advance(2 * time.Minute)
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		u.Respond(503, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":"overloaded"}`))
		return true
	}
	res := hs.post(0, "/v1/chat/completions", body)
	if res.Status != 200 || !bytes.Equal(res.Body, first.Body) {
		t.Fatalf("status %d body %s cs %q", res.Status, res.Body, hdr(res, "cache-status"))
	}
	expectCacheStatus(t, res, "fwd=stale", "detail=stale-if-error")
	got, sum := requestCounters(hs, "chat")
	if sum != 2 {
		t.Fatalf("counters %s", fmtCounters(got))
	}
}

// late + partly cached embeddings batch: the upstream gets the client's
// body as sent, the client the model's answer.
func TestLateWithEmbeddingsPartialBatch(t *testing.T) {
	hs := lateHarness(t, strings.Replace(embConfig, `"upstream_cluster": "model",`, `"upstream_cluster": "model",`, 1), withWorkers(1))
	odd, all := oddOf(8)
	if r := hs.post(0, "/v1/embeddings", embReq(odd, "")); r.Status != 200 {
		t.Fatalf("warm %d", r.Status)
	}
	var ups []*wasmhost.UpstreamRequest
	hs.fault = func(u *wasmhost.UpstreamRequest) bool { ups = append(ups, u); return false }
	body := embReq(all, "")
	res := hs.post(0, "/v1/embeddings", body)
	if len(ups) != 1 || string(ups[0].Body) != body {
		t.Fatalf("upstream got %d requests, body %.200s", len(ups), ups[0].Body)
	}
	if cl := hdrOf(ups[0].Headers, "content-length"); cl != "" && cl != strconv.Itoa(len(ups[0].Body)) {
		t.Fatalf("content-length %s for %d bytes", cl, len(ups[0].Body))
	}
	if got, want := vectors(t, res.Body), vectors(t, reference(t, body)); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatal("vectors differ from the reference")
	}
	if cl := hdr(res, "content-length"); cl != "" && cl != strconv.Itoa(len(res.Body)) {
		t.Fatalf("response content-length %s for %d bytes", cl, len(res.Body))
	}
	if n := hs.counter("modelcache_route.emb.items.hit"); n != 0 {
		t.Fatalf("items.hit %d, cs %q", n, hdr(res, "cache-status"))
	}
	got, sum := requestCounters(hs, "emb")
	if sum != 2 || got["miss"] != 2 {
		t.Fatalf("counters %s (cs %q)", fmtCounters(got), hdr(res, "cache-status"))
	}
}

// late + a chunked body over max_request_bytes: it passes whole.
func TestLateWithChunkedBodyOverLimitPassesWhole(t *testing.T) {
	cfg := strings.Replace(chatConfig, `"upstream_cluster": "model",`, `"upstream_cluster": "model", "max_request_bytes": 1024,`, 1)
	hs := lateHarness(t, cfg, withWorkers(1))
	var ups []*wasmhost.UpstreamRequest
	hs.fault = func(u *wasmhost.UpstreamRequest) bool { ups = append(ups, u); return false }
	body := chatBody(strings.Repeat("x", 3000))
	var chunks [][]byte
	for i := 0; i < len(body); i += 500 {
		chunks = append(chunks, []byte(body[i:min(i+500, len(body))]))
	}
	req := chatRequest("")
	req.Body = nil
	req.BodyChunks = chunks
	ex := hs.h.StartExchange(0, req)
	hs.h.Drain()
	if !ex.Done() {
		t.Fatalf("not done: %s", ex.State())
	}
	if len(ups) != 1 || string(ups[0].Body) != body {
		t.Fatalf("upstream: %d requests, body %d bytes (want %d)", len(ups), len(ups[0].Body), len(body))
	}
	if r := ex.Response(); r.Status != 200 {
		t.Fatalf("status %d", r.Status)
	}
	expectCacheStatus(t, ex.Response(), "bypass")
}

// late + only-if-cached with nothing cached: a 504, its upstream request
// reset.
func TestLateWithOnlyIfCachedMiss(t *testing.T) {
	hs := lateHarness(t, chatConfig, withWorkers(1))
	hs.holdUpstream()
	res := hs.post(0, "/v1/chat/completions", chatBody("nothing here"), "cache-control", "only-if-cached")
	if res.Status != 504 {
		t.Fatalf("status %d", res.Status)
	}
	expectCacheStatus(t, res, "detail=only-if-cached")
	if n := len(hs.h.PendingUpstream()); n != 0 {
		t.Fatalf("%d upstream pending", n)
	}
	if hs.counter("modelcache_route.chat.late.upstream_aborted") != 1 {
		t.Fatalf("late.upstream_aborted %d", hs.counter("modelcache_route.chat.late.upstream_aborted"))
	}
}

// late + a follower whose leader's answer is refused: the follower goes
// upstream with its whole body.
func TestLateWithFollowerOfRefusedLeader(t *testing.T) {
	hs := lateHarness(t, coalesceConfig, withWorkers(1))
	hs.holdUpstream()
	a, ua := hs.lead(chatRequest("refused"))
	b := hs.h.StartExchange(0, chatRequest("refused"))
	hs.h.Drain()
	if b.Done() || len(hs.h.PendingUpstream()) != 1 {
		t.Fatalf("b not following: done %v, %d upstream", b.Done(), len(hs.h.PendingUpstream()))
	}
	respondChat(ua, 500, "boom")
	hs.h.Drain()
	if !a.Done() || a.Response().Status != 500 {
		t.Fatalf("a: %v %d", a.Done(), a.Response().Status)
	}
	for i := 0; i < 5 && len(hs.h.PendingUpstream()) == 0 && !b.Done(); i++ {
		hs.h.AdvanceAndTick(100 * time.Millisecond)
		hs.h.Drain()
	}
	ups := hs.h.PendingUpstream()
	if b.Done() {
		t.Logf("b done: %d %q", b.Response().Status, hdr(b.Response(), "cache-status"))
		return
	}
	if len(ups) != 1 || string(ups[0].Body) != chatBody("refused") {
		t.Fatalf("b's upstream: %d", len(ups))
	}
	respondChat(ups[0], 200, "ok")
	hs.h.Drain()
	if !b.Done() || b.Response().Status != 200 {
		t.Fatalf("b: %v %d", b.Done(), b.Response().Status)
	}
}

// late + stale-while-revalidate: the stale hit answers, a refresh starts.
func TestLateWithStaleWhileRevalidate(t *testing.T) {
	hs := lateHarness(t, swrConfig, withWorkers(1), withHTTPCalls())
	hs.holdCalls = true
	body := chatBody("swr late")
	first := hs.post(0, "/v1/chat/completions", body)
	hs.clock.Advance(70 * time.Second)
	res := hs.post(0, "/v1/chat/completions", body)
	expectCacheStatus(t, res, "hit", "fwd=stale")
	if !bytes.Equal(res.Body, first.Body) {
		t.Fatal("stale body differs")
	}
	calls := hs.h.PendingHTTPCalls()
	if len(calls) != 1 || string(calls[0].Body) != body {
		t.Fatalf("%d refresh calls", len(calls))
	}
	if n := len(hs.h.PendingUpstream()); n != 0 {
		t.Fatalf("%d upstream pending", n)
	}
}

const lateL2HarnessConfig = `{"upstream_cluster": "model", "l2": {"cluster": "webdis", "timeout": "1s"},
  "routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s"}]}`

func lateL2Harness(t *testing.T, w *l2Webdis, call func(*wasmhost.HTTPCall)) *harness {
	return lateHarness(t, lateL2HarnessConfig, withWorkers(1), func(_ *harness, c *wasmhost.Config) {
		c.Clusters = append(c.Clusters, "webdis")
		c.HTTPCall = call
	})
}

func callPath(c *wasmhost.HTTPCall) string {
	for _, h := range c.Headers {
		if h[0] == ":path" {
			return h[1]
		}
	}
	return ""
}

// late + L2: a hit on another proxy, stored by this one.
func TestLateWithL2Hit(t *testing.T) {
	w := &l2Webdis{kv: map[string]string{}}
	answerAll := func(c *wasmhost.HTTPCall) { c.Respond(200, nil, []byte(w.do(callPath(c), c.Body))) }
	a := lateL2Harness(t, w, answerAll)
	r := a.post(0, "/v1/chat/completions", chatBody("l2 late"))
	if r.Status != 200 {
		t.Fatalf("a: %d", r.Status)
	}
	a.h.Drain()
	b := lateL2Harness(t, w, answerAll)
	b.holdUpstream()
	ex := b.h.StartExchange(0, chatRequest("l2 late"))
	b.h.Drain()
	if !ex.Done() {
		t.Fatalf("b not done: %s (webdis %q)", ex.State(), w.paths)
	}
	res := ex.Response()
	if res.Status != 200 || !bytes.Equal(res.Body, r.Body) {
		t.Fatalf("b: %d %q", res.Status, hdr(res, "cache-status"))
	}
	expectCacheStatus(t, res, "hit")
	if n := len(b.h.PendingUpstream()); n != 0 {
		t.Fatalf("%d upstream pending", n)
	}
	if b.counter("modelcache_route.chat.late.upstream_aborted") != 1 {
		t.Fatalf("aborted %d", b.counter("modelcache_route.chat.late.upstream_aborted"))
	}
}

// late + L2 that never answers: the request goes upstream with its body.
func TestLateWithL2Timeout(t *testing.T) {
	w := &l2Webdis{kv: map[string]string{}}
	var held []*wasmhost.HTTPCall
	hs := lateL2Harness(t, w, func(c *wasmhost.HTTPCall) { held = append(held, c) })
	var ups []*wasmhost.UpstreamRequest
	hs.fault = func(u *wasmhost.UpstreamRequest) bool { ups = append(ups, u); return false }
	ex := hs.h.StartExchange(0, chatRequest("l2 timeout"))
	hs.h.Drain()
	for i := 0; i < 10 && !ex.Done(); i++ {
		hs.h.AdvanceAndTick(500 * time.Millisecond)
		hs.h.Drain()
	}
	if !ex.Done() || ex.Response().Status != 200 {
		t.Fatalf("not done: %s; %d calls", ex.State(), len(held))
	}
	if len(ups) != 1 || string(ups[0].Body) != chatBody("l2 timeout") {
		t.Fatalf("upstream %d", len(ups))
	}
}

// late + webdis failing: the request goes upstream with its body.
func TestLateWithL2Failing(t *testing.T) {
	w := &l2Webdis{kv: map[string]string{}}
	hs := lateL2Harness(t, w, func(c *wasmhost.HTTPCall) { c.Respond(500, nil, []byte("-ERR down\r\n")) })
	var ups []*wasmhost.UpstreamRequest
	hs.fault = func(u *wasmhost.UpstreamRequest) bool { ups = append(ups, u); return false }
	for i := 0; i < 3; i++ {
		ex := hs.h.StartExchange(0, chatRequest("l2 failing"))
		hs.h.Drain()
		for j := 0; j < 10 && !ex.Done(); j++ {
			hs.h.AdvanceAndTick(500 * time.Millisecond)
			hs.h.Drain()
		}
		if !ex.Done() || ex.Response().Status != 200 {
			t.Fatalf("%d not done: %s", i, ex.State())
		}
	}
	if len(ups) < 1 || string(ups[0].Body) != chatBody("l2 failing") {
		t.Fatalf("upstream %d", len(ups))
	}
}

// late + client abort while the L2 lookup is out, then the lookup answers.
func TestLateWithAbortDuringL2Lookup(t *testing.T) {
	w := &l2Webdis{kv: map[string]string{}}
	var held []*wasmhost.HTTPCall
	hs := lateL2Harness(t, w, func(c *wasmhost.HTTPCall) { held = append(held, c) })
	ex := hs.h.StartExchange(0, chatRequest("abort l2"))
	hs.h.Drain()
	if len(held) == 0 {
		t.Fatal("no call")
	}
	ex.Abort()
	hs.h.Drain()
	for len(held) > 0 {
		c := held[0]
		held = held[1:]
		c.Respond(200, nil, []byte(w.do(callPath(c), c.Body)))
		hs.h.Drain()
	}
	hs.h.AdvanceAndTick(2 * time.Second)
	hs.h.Drain()
	for len(held) > 0 {
		c := held[0]
		held = held[1:]
		c.Respond(200, nil, []byte(w.do(callPath(c), c.Body)))
		hs.h.Drain()
	}
	// A fresh request is served normally afterwards.
	ex2 := hs.h.StartExchange(0, chatRequest("abort l2"))
	hs.h.Drain()
	for i := 0; i < 10 && !ex2.Done(); i++ {
		for len(held) > 0 {
			c := held[0]
			held = held[1:]
			c.Respond(200, nil, []byte(w.do(callPath(c), c.Body)))
		}
		hs.h.AdvanceAndTick(200 * time.Millisecond)
		hs.h.Drain()
	}
	if !ex2.Done() || ex2.Response().Status != 200 {
		t.Fatalf("after abort: %s", ex2.State())
	}
	for k := range w.kv {
		if strings.Contains(k, ":l:") {
			t.Fatalf("orphan lease %s", k)
		}
	}
}

// late + client abort of the leader while a late follower waits: the
// follower goes on upstream and is answered.
func TestLateWithLeaderAbortFollowerGoesOn(t *testing.T) {
	hs := lateHarness(t, coalesceConfig, withWorkers(1))
	hs.holdUpstream()
	a, _ := hs.lead(chatRequest("abort lead"))
	b := hs.h.StartExchange(0, chatRequest("abort lead"))
	hs.h.Drain()
	a.Abort()
	hs.h.Drain()
	for i := 0; i < 5 && len(hs.h.PendingUpstream()) == 0; i++ {
		hs.h.AdvanceAndTick(100 * time.Millisecond)
		hs.h.Drain()
	}
	ups := hs.h.PendingUpstream()
	if len(ups) != 1 || string(ups[0].Body) != chatBody("abort lead") {
		t.Fatalf("follower's upstream: %d (b %s)", len(ups), b.State())
	}
	hs.answer(ups[0])
	hs.h.Drain()
	if !b.Done() || b.Response().Status != 200 {
		t.Fatalf("b %s", b.State())
	}
	if hs.counter("modelcache_route.chat.stored") != 1 {
		t.Fatalf("stored %d", hs.counter("modelcache_route.chat.stored"))
	}
}

// late + client abort of a follower: the leader's answer is still stored.
func TestLateWithFollowerAbort(t *testing.T) {
	hs := lateHarness(t, coalesceConfig, withWorkers(1))
	hs.holdUpstream()
	a, ua := hs.lead(chatRequest("abort follow"))
	b := hs.h.StartExchange(0, chatRequest("abort follow"))
	hs.h.Drain()
	b.Abort()
	hs.h.Drain()
	hs.answer(ua)
	hs.h.Drain()
	if !a.Done() || a.Response().Status != 200 || hs.counter("modelcache_route.chat.stored") != 1 {
		t.Fatalf("a %s stored %d", a.State(), hs.counter("modelcache_route.chat.stored"))
	}
	got, sum := requestCounters(hs, "chat")
	if sum != 2 {
		t.Logf("counters %s", fmtCounters(got))
	}
}

func lateChatAnswer(content string) []byte {
	return []byte(`{"id":"r","object":"chat.completion","model":"sim-chat","choices":[{"index":0,"message":{"role":"assistant","content":` +
		strconv.Quote(content) + `},"finish_reason":"stop"}]}`)
}

// late + JSON answer cut mid-body in several ways: never stored.
func TestLateWithCutAnswersNeverStored(t *testing.T) {
	for _, tc := range []struct {
		name  string
		abort bool
	}{{"upstream reset", false}, {"client abort", true}} {
		t.Run(tc.name, func(t *testing.T) {
			hs := lateHarness(t, coalesceConfig, withWorkers(1))
			body := lateChatAnswer(strings.Repeat("word ", 200))
			hs.fault = func(u *wasmhost.UpstreamRequest) bool {
				u.RespondHeaders(200, [][2]string{{"content-type", "application/json"}, {"content-length", strconv.Itoa(len(body))}}, false)
				u.SendChunk(body[:len(body)/2], false)
				if !tc.abort {
					u.Reset()
				}
				return true
			}
			ex := hs.h.StartExchange(0, chatRequest("cut"))
			hs.h.Drain()
			if tc.abort {
				ex.Abort()
				hs.h.Drain()
			}
			hs.h.AdvanceAndTick(time.Second)
			hs.h.Drain()
			if hs.counter("modelcache_route.chat.stored") != 0 {
				t.Fatal("a cut answer was stored")
			}
			hs.fault = func(u *wasmhost.UpstreamRequest) bool { respondChat(u, 200, "fine"); return true }
			res := hs.post(0, "/v1/chat/completions", chatBody("cut"))
			if strings.Contains(hdr(res, "cache-status"), "hit") || strings.Contains(string(res.Body), "word word") {
				t.Fatalf("served the cut answer: %q", hdr(res, "cache-status"))
			}
		})
	}
}

// late + JSON answer larger than max_entry_bytes, in chunks: the client
// gets it whole; nothing stored.
func TestLateWithAnswerOverMaxEntry(t *testing.T) {
	cfg := `{"upstream_cluster": "model", "store":{"max_entry_bytes":2048},"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions"}]}`
	hs := lateHarness(t, cfg, withWorkers(1))
	body := lateChatAnswer(strings.Repeat("long ", 1000))
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		var chunks [][]byte
		for i := 0; i < len(body); i += 700 {
			chunks = append(chunks, body[i:min(i+700, len(body))])
		}
		u.RespondChunks(200, [][2]string{{"content-type", "application/json"}, {"content-length", strconv.Itoa(len(body))}}, chunks)
		return true
	}
	res := hs.post(0, "/v1/chat/completions", chatBody("big"))
	if res.Status != 200 || !bytes.Equal(res.Body, body) {
		t.Fatalf("status %d, %d bytes of %d", res.Status, len(res.Body), len(body))
	}
	if hs.counter("modelcache_route.chat.stored") != 0 || hs.counter("modelcache_route.chat.refused.too_large") != 1 {
		t.Fatalf("stored %d too_large %d", hs.counter("modelcache_route.chat.stored"), hs.counter("modelcache_route.chat.refused.too_large"))
	}
}

// late + a gzip answer (the upstream ignored the missing accept-encoding):
// passes, never stored.
func TestLateWithEncodedAnswerNotStored(t *testing.T) {
	hs := lateHarness(t, chatConfig, withWorkers(1))
	body := []byte("\x1f\x8b\x08\x00garbage")
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		u.Respond(200, [][2]string{{"content-type", "application/json"}, {"content-encoding", "gzip"}, {"content-length", strconv.Itoa(len(body))}}, body)
		return true
	}
	res := hs.post(0, "/v1/chat/completions", chatBody("gz"))
	if !bytes.Equal(res.Body, body) || hs.counter("modelcache_route.chat.stored") != 0 {
		t.Fatalf("body %q stored %d", res.Body, hs.counter("modelcache_route.chat.stored"))
	}
}

// late + a stream: recorded, then replayed (the replay cuts the upstream
// request opened for the headers).
func TestLateWithStreamReplay(t *testing.T) {
	hs := lateHarness(t, chatConfig, withWorkers(1))
	req := chatRequest("")
	req.Body = []byte(streamBody("late story"))
	first, err := hs.h.Exchange(0, req)
	if err != nil || first.Status != 200 {
		t.Fatalf("%v", err)
	}
	if hs.counter("modelcache_route.chat.stored") != 1 {
		t.Fatalf("stored %d", hs.counter("modelcache_route.chat.stored"))
	}
	hs.holdUpstream()
	ex := hs.h.StartExchange(0, req)
	hs.h.Drain()
	if !ex.Done() {
		t.Fatalf("replay: %s", ex.State())
	}
	res := ex.Response()
	expectCacheStatus(t, res, "hit")
	if strings.Join(dataLines(res.Body), "\n") != strings.Join(dataLines(first.Body), "\n") {
		t.Fatal("replay differs")
	}
	if n := len(hs.h.PendingUpstream()); n != 0 || hs.counter("modelcache_route.chat.late.upstream_aborted") != 1 {
		t.Fatalf("%d pending, aborted %d", n, hs.counter("modelcache_route.chat.late.upstream_aborted"))
	}
}

// late + a purge while the answer is being copied: not stored.
func TestLateWithPurgeDuringRecording(t *testing.T) {
	hs := lateHarness(t, chatConfig, withWorkers(1))
	body := lateChatAnswer("old answer")
	var up *wasmhost.UpstreamRequest
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		if hdrOf(u.Headers, ":path") == "/modelcache/purge" {
			return false
		}
		up = u
		u.RespondHeaders(200, [][2]string{{"content-type", "application/json"}, {"content-length", strconv.Itoa(len(body))}}, false)
		u.SendChunk(body[:10], false)
		return true
	}
	ex := hs.h.StartExchange(0, chatRequest("purged mid-copy"))
	hs.h.Drain()
	if up == nil || ex.Done() {
		t.Fatalf("setup: %v %v", up, ex.Done())
	}
	p := hs.h.StartExchange(0, purgeExchange())
	hs.h.Drain()
	for i := 0; i < 5 && !p.Done(); i++ {
		hs.h.AdvanceAndTick(time.Second)
		hs.h.Drain()
	}
	if !p.Done() || p.Response().Status != 200 {
		t.Fatalf("purge %s", p.State())
	}
	up.SendChunk(body[10:], true)
	hs.h.Drain()
	if !ex.Done() || hs.counter("modelcache_route.chat.stored") != 0 {
		t.Fatalf("done %v stored %d", ex.Done(), hs.counter("modelcache_route.chat.stored"))
	}
}

func lateSemRequest(body string) wasmhost.Request {
	return wasmhost.Request{Headers: [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"},
		{":authority", "models"}, {"content-type", "application/json"}, {"authorization", "Bearer tenant-a"},
		{"content-length", strconv.Itoa(len(body))}}, Body: []byte(body)}
}

// late + a semantic near hit: answered locally, the upstream request cut.
func TestLateWithSemanticNearHit(t *testing.T) {
	hs := lateHarness(t, semanticConfig, withWorkers(1), withHTTPCalls(), withEmbeddingsCluster())
	hs.holdCalls = true
	q := chatBody("How do I reset my password?")
	para := chatBody("How can I reset my password?")
	var vec []byte
	var vecH [][2]string
	run := func(body string, answer func(c *wasmhost.HTTPCall)) *wasmhost.Exchange {
		ex := hs.h.StartExchange(0, lateSemRequest(body))
		hs.h.Drain()
		for _, c := range hs.h.PendingHTTPCalls() {
			answer(c)
		}
		hs.h.Drain()
		return ex
	}
	ex := run(q, func(c *wasmhost.HTTPCall) {
		st, h, b := hs.simulate(c.Headers, c.Body)
		vec, vecH = b, h
		c.Respond(st, h, b)
	})
	if !ex.Done() || ex.Response().Status != 200 {
		t.Fatalf("first: %s", ex.State())
	}
	first := ex.Response()
	// confirm with an exact hit
	ex = run(q, func(c *wasmhost.HTTPCall) { hs.answerCall(c) })
	expectCacheStatus(t, ex.Response(), "hit")
	hs.holdUpstream()
	ex = run(para, func(c *wasmhost.HTTPCall) {
		c.Respond(200, vecH, vec)
	})
	if !ex.Done() {
		t.Fatalf("paraphrase: %s (pending upstream %d)", ex.State(), len(hs.h.PendingUpstream()))
	}
	res := ex.Response()
	if !strings.Contains(hdr(res, "cache-status"), "semantic") || !bytes.Equal(res.Body, first.Body) {
		t.Fatalf("paraphrase: %d %q", res.Status, hdr(res, "cache-status"))
	}
	if n := len(hs.h.PendingUpstream()); n != 0 || hs.counter("modelcache_route.chat.late.upstream_aborted") < 1 {
		t.Fatalf("%d pending, aborted %d", n, hs.counter("modelcache_route.chat.late.upstream_aborted"))
	}
}

// late + a semantic embedding call that times out: the request goes
// upstream with its body.
func TestLateWithSemanticEmbedTimeout(t *testing.T) {
	hs := lateHarness(t, semanticConfig, withWorkers(1), withHTTPCalls(), withEmbeddingsCluster())
	hs.holdCalls = true
	var ups []*wasmhost.UpstreamRequest
	hs.fault = func(u *wasmhost.UpstreamRequest) bool { ups = append(ups, u); return false }
	body := chatBody("What is the tallest mountain?")
	ex := hs.h.StartExchange(0, lateSemRequest(body))
	hs.h.Drain()
	for i := 0; i < 10 && !ex.Done(); i++ {
		hs.h.AdvanceAndTick(300 * time.Millisecond)
		hs.h.Drain()
	}
	if !ex.Done() || ex.Response().Status != 200 {
		t.Fatalf("not done: %s", ex.State())
	}
	if len(ups) != 1 || string(ups[0].Body) != body {
		t.Fatalf("upstream %d", len(ups))
	}
}

// late + L2, another proxy leads: this one waits (its body paused) and is
// served from L2; the model is asked once.
func TestLateWithL2OtherProxyLeads(t *testing.T) {
	w := &l2Webdis{kv: map[string]string{}}
	answerAll := func(c *wasmhost.HTTPCall) { c.Respond(200, nil, []byte(w.do(callPath(c), c.Body))) }
	a := lateL2Harness(t, w, answerAll)
	b := lateL2Harness(t, w, answerAll)
	var ups []*wasmhost.UpstreamRequest
	a.fault = func(u *wasmhost.UpstreamRequest) bool { ups = append(ups, u); return true }
	b.fault = a.fault
	exA := a.h.StartExchange(0, chatRequest("two proxies"))
	a.h.Drain()
	exB := b.h.StartExchange(0, chatRequest("two proxies"))
	b.h.Drain()
	if len(ups) != 1 {
		t.Fatalf("%d upstream requests (webdis %q)", len(ups), w.paths)
	}
	respondChat(ups[0], 200, "one answer")
	a.h.Drain()
	if !exA.Done() || exA.Response().Status != 200 {
		t.Fatalf("a %s", exA.State())
	}
	for i := 0; i < 20 && !exB.Done(); i++ {
		a.h.AdvanceAndTick(100 * time.Millisecond)
		b.h.AdvanceAndTick(100 * time.Millisecond)
		a.h.Drain()
		b.h.Drain()
	}
	if !exB.Done() || exB.Response().Status != 200 || len(ups) != 1 {
		t.Fatalf("b %s, %d upstream", exB.State(), len(ups))
	}
	expectCacheStatus(t, exB.Response(), "hit")
}

// late + a hit the host cannot send: it goes upstream (fail open), the
// upstream getting the client's body.
func TestLateWithHitSendFailsGoesUpstream(t *testing.T) {
	for _, route := range []string{"chat", "emb"} {
		t.Run(route, func(t *testing.T) {
			f := &faultPlan{}
			cfg, path, body := coalesceConfig, "/v1/chat/completions", chatBody("send fails")
			if route == "emb" {
				cfg, path, body = embConfig, "/v1/embeddings", embReq([]string{"a", "b", "a"}, "")
			}
			hs := lateHarness(t, cfg, withWorkers(1), withFaults(f))
			if r := hs.post(0, path, body); r.Status != 200 {
				t.Fatalf("warm %d", r.Status)
			}
			var ups []*wasmhost.UpstreamRequest
			hs.fault = func(u *wasmhost.UpstreamRequest) bool { ups = append(ups, u); return false }
			f.set(failSendLocalResponse)
			res := hs.post(0, path, body)
			f.set(nil)
			if res.Status != 200 || len(ups) != 1 || string(ups[0].Body) != body {
				t.Fatalf("status %d, %d upstream (cs %q)", res.Status, len(ups), hdr(res, "cache-status"))
			}
			if cl := hdr(res, "content-length"); cl != "" && cl != strconv.Itoa(len(res.Body)) {
				t.Fatalf("content-length %s for %d", cl, len(res.Body))
			}
			if route == "emb" {
				if got, want := vectors(t, res.Body), vectors(t, reference(t, body)); strings.Join(got, "|") != strings.Join(want, "|") {
					t.Fatal("vectors differ")
				}
			}
			got, sum := requestCounters(hs, route)
			t.Logf("counters %s", fmtCounters(got))
			if sum != 2 {
				t.Fatalf("counted %d", sum)
			}
		})
	}
}
