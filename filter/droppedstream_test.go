//go:build !wasip1

package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// A leader whose event stream outgrew max_entry_bytes will store nothing:
// its recording is dropped. Its lease must not be kept alive while the
// rest of the stream flows (KeepLease): the key is led by nobody who will
// answer the next requests, which would each wait coalesce.max_wait for
// nothing before going upstream, for as long as the stream lasts. As
// before KeepLease, the lease ends max_wait after it was taken, and a
// request that comes later leads at once.
func TestDroppedStreamKeepsNoLease(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"60s","max_entry_bytes":1024,"coalesce":{"max_wait":"30s"}}]}`
	hs := newHarness(t, cfg)
	hs.holdUpstream()
	req := longStory()
	_, u := hs.lead(req)
	ev := func(s string) []byte { return []byte("data: " + s + "\n\n") }
	u.RespondHeaders(200, [][2]string{{"content-type", "text/event-stream"}}, false)
	// Past max_entry_bytes at once: the recording is dropped.
	u.SendChunk(ev(`{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"`+strings.Repeat("x", 2048)+`"}}]}`), false)
	hs.h.Drain()
	var next *wasmhost.Exchange
	for i := 1; i <= 36; i++ { // a word a second
		hs.h.AdvanceAndTick(time.Second)
		u.SendChunk(ev(fmt.Sprintf(`{"id":"c1","choices":[{"index":0,"delta":{"content":"word %d "}}]}`, i)), false)
		hs.h.Drain()
	}
	// 36 s after the lead, 6 s past its lease's max_wait.
	next = hs.h.StartExchange(1, req)
	hs.h.Drain()
	if n := hs.upstream.Load(); n != 2 {
		t.Fatalf("a request 6 s past the max_wait of a leader that will store nothing: %d upstream calls (want 2: it leads at once), done %v, followers %d",
			n, next.Done(), hs.counter("modelcache_route.chat.coalesce.followers"))
	}
}

// Its followers need not wait for it either: a leader whose recording was
// dropped will store nothing, as one refused at its headers, and it tells
// them so at once (it releases its lease as an uncacheable answer), so
// that each goes upstream itself. It did not: it kept the key led until
// its lease expired, coalesce.max_wait after it was taken, and a follower
// then took it for a failed leader — with max_retries 0 it was answered
// 502 leader-failed, 30 s late, while the leader's client got its 200.
func TestFollowerOfADroppedStreamGoesUpstreamAtOnce(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"60s","max_entry_bytes":1024,"coalesce":{"max_wait":"30s","max_retries":0}}]}`
	hs := newHarness(t, cfg)
	hs.holdUpstream()
	req := longStory()
	_, u := hs.lead(req)
	hs.h.AdvanceAndTick(time.Second)
	follower := hs.h.StartExchange(1, req)
	hs.h.Drain()
	if hs.counter("modelcache_route.chat.coalesce.followers") != 1 {
		t.Fatalf("no follower")
	}
	ev := func(s string) []byte { return []byte("data: " + s + "\n\n") }
	u.RespondHeaders(200, [][2]string{{"content-type", "text/event-stream"}}, false)
	// Past max_entry_bytes at once: the recording is dropped.
	u.SendChunk(ev(`{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"`+strings.Repeat("x", 2048)+`"}}]}`), false)
	hs.h.Drain()
	for i := 1; i <= 40; i++ { // a word a second
		hs.h.AdvanceAndTick(time.Second)
		u.SendChunk(ev(fmt.Sprintf(`{"id":"c1","choices":[{"index":0,"delta":{"content":"word %d "}}]}`, i)), false)
		hs.h.Drain()
		if follower.Done() {
			r := follower.Response()
			t.Fatalf("follower answered %d, Cache-Status %q, after %d s of the dropped stream, %d upstream calls",
				r.Status, hdr(r, "cache-status"), i, hs.upstream.Load())
		}
		if i == 1 && hs.upstream.Load() != 2 {
			t.Fatalf("the follower still waits 1 s after its leader's recording was dropped")
		}
	}
	pending := hs.h.PendingUpstream()
	if len(pending) != 2 {
		t.Fatalf("%d upstream requests pending", len(pending))
	}
	hs.answer(pending[1])
	hs.h.Drain()
	if r := follower.Response(); !follower.Done() || r.Status != 200 {
		t.Fatalf("follower: done %v", follower.Done())
	}
}
