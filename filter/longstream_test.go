//go:build !wasip1

package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/modelcache/modelcache/wasmhost"
)

// A leader whose event stream flows for longer than coalesce.max_wait is
// alive: its lease, taken for max_wait when it led, must not expire under
// it while its answer flows. It did: at max_wait a follower that had
// waited 11 s took it for a dead leader and counted a failure — with
// max_retries 0 it was answered 502 leader-failed while the leader's
// client got a 200 that was then stored; with the default it led a second
// upstream call for the same answer, 9 s before the first was stored.
func TestFollowerOfALongStreamKeepsWaiting(t *testing.T) {
	for _, tc := range []struct{ name, coalesce string }{
		{"max_retries 0", `{"max_wait":"30s","max_retries":0}`},
		{"default retries", `{"max_wait":"30s"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"60s","coalesce":` + tc.coalesce + `}]}`
			hs := newHarness(t, cfg)
			hs.holdUpstream()
			req := longStory()
			leader, u := hs.lead(req)
			ev := func(s string) []byte { return []byte("data: " + s + "\n\n") }
			u.RespondHeaders(200, [][2]string{{"content-type", "text/event-stream"}}, false)
			u.SendChunk(ev(`{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`), false)
			hs.h.Drain()
			var follower *wasmhost.Exchange
			for i := 1; i <= 40; i++ { // a word a second for 40 s
				hs.h.AdvanceAndTick(time.Second)
				u.SendChunk(ev(fmt.Sprintf(`{"id":"c1","choices":[{"index":0,"delta":{"content":"word %d "}}]}`, i)), false)
				hs.h.Drain()
				if i == 20 {
					follower = hs.h.StartExchange(1, req)
					hs.h.Drain()
				}
				if follower != nil && follower.Done() {
					r := follower.Response()
					t.Fatalf("after %d s of a flowing stream (the follower waited %d s of 30): answered %d, Cache-Status %q, %d upstream calls",
						i, i-20, r.Status, hdr(r, "cache-status"), hs.upstream.Load())
				}
			}
			if n := hs.upstream.Load(); n != 1 {
				t.Fatalf("%d upstream calls for one answer still flowing", n)
			}
			u.SendChunk(ev(`{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`), false)
			u.SendChunk([]byte("data: [DONE]\n\n"), true)
			hs.h.Drain()
			if !leader.Done() || leader.Response().Status != 200 || hs.counter("modelcache_route.chat.stored") != 1 {
				t.Fatalf("leader's stream not stored")
			}
			r := follower.Response()
			if !follower.Done() || r.Status != 200 || string(r.Body) != string(leader.Response().Body) {
				t.Fatalf("follower: done %v, %d %q", follower.Done(), r.Status, hdr(r, "cache-status"))
			}
			expectCacheStatus(t, r, "collapsed")
		})
	}
}

// A leader whose answer is not streamed sends nothing until its end: a long
// completion asked for without streaming (30–90 s is common) is a leader
// alive and waiting, for longer than coalesce.max_wait, with no chunk to
// move its lease (Flight.KeepLease, as its chunks pass). Its lease must not expire under it
// either. It did: at max_wait a follower that had joined at 20 s took it
// for a dead leader and counted a failure — with max_retries 0 it was
// answered 502 leader-failed, with the default it led a second upstream
// call for the same key — and the first leader's release, at 45 s, found
// the lease no longer its own and woke nobody.
func TestFollowerOfALongAnswerKeepsWaiting(t *testing.T) {
	for _, tc := range []struct{ name, coalesce string }{
		{"max_retries 0", `{"max_wait":"30s","max_retries":0}`},
		{"default retries", `{"max_wait":"30s"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"60s","coalesce":` + tc.coalesce + `}]}`
			hs := newHarness(t, cfg)
			hs.holdUpstream()
			req := chatRequest("a long answer, not streamed")
			leader, u := hs.lead(req)
			var follower *wasmhost.Exchange
			for i := 1; i <= 45; i++ { // the answer takes 45 s
				hs.h.AdvanceAndTick(time.Second)
				if i == 20 {
					follower = hs.h.StartExchange(1, req)
					hs.h.Drain()
				}
				if follower != nil && follower.Done() {
					r := follower.Response()
					t.Fatalf("after %d s of a leader waiting for its answer (the follower waited %d s of 30): answered %d, Cache-Status %q, %d upstream calls",
						i, i-20, r.Status, hdr(r, "cache-status"), hs.upstream.Load())
				}
			}
			if n := hs.upstream.Load(); n != 1 {
				t.Fatalf("%d upstream calls for one answer still awaited", n)
			}
			hs.answer(u)
			hs.h.Drain()
			if !leader.Done() || leader.Response().Status != 200 || hs.counter("modelcache_route.chat.stored") != 1 {
				t.Fatalf("leader's answer not stored")
			}
			r := follower.Response()
			if !follower.Done() || r.Status != 200 || string(r.Body) != string(leader.Response().Body) {
				t.Fatalf("follower: done %v, %d %q", follower.Done(), r.Status, hdr(r, "cache-status"))
			}
			expectCacheStatus(t, r, "collapsed")
			if n := hs.counter("modelcache_route.chat.coalesce.leader_failures"); n != 0 {
				t.Fatalf("%d leader failures counted for a leader that answered", n)
			}
			if n := hs.upstream.Load(); n != 1 {
				t.Fatalf("%d upstream calls for one answer", n)
			}
		})
	}
}

// What keeping a waiting leader's lease costs: nothing for an answer that
// arrives within half of max_wait, one shared-data read and write per
// max_wait/2 after that (at 15 and 30 s of a 45 s answer), no change to
// the tick (the idle tick keeps a 30 s lease).
func TestKeepingALeaseCostsOneWritePerHalfMaxWait(t *testing.T) {
	calls := []string{"env.proxy_get_shared_data", "env.proxy_set_shared_data", "env.proxy_set_tick_period_milliseconds"}
	miss := func(after int) []uint64 {
		cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"60s","coalesce":{"max_wait":"30s"}}]}`
		hs := newHarness(t, cfg)
		hs.holdUpstream()
		var n []uint64
		for _, c := range calls {
			n = append(n, hs.h.HostCallCount(c))
		}
		ex, u := hs.lead(chatRequest("what a lease costs"))
		hs.h.AdvanceAndTick(time.Duration(after) * time.Second)
		hs.answer(u)
		hs.h.Drain()
		if !ex.Done() || ex.Response().Status != 200 || hs.counter("modelcache_route.chat.stored") != 1 {
			t.Fatalf("answer at %d s not stored", after)
		}
		for i, c := range calls {
			n[i] = hs.h.HostCallCount(c) - n[i]
		}
		return n
	}
	base, within := miss(1), miss(14)
	if fmt.Sprint(within) != fmt.Sprint(base) {
		t.Fatalf("host calls %v for an answer at 14 s, %v at 1 s: keeping a lease cost a miss within max_wait/2", within, base)
	}
	if long := miss(45); long[0] != base[0]+2 || long[1] != base[1]+2 || long[2] != base[2] {
		t.Fatalf("host calls %v for an answer at 45 s, %v at 1 s: want two more reads and writes of shared data", long, base)
	}
}
