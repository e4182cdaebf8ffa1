//go:build !wasip1

package main

import (
	"strings"
	"testing"
)

// A boundary guard: Flight.emit
// keeps eight actions per step and drops the rest (a spill costs the miss 39 lines). The
// Complete of a coalesced embeddings batch that is rewritten (a duplicate
// item, sent once) and none of whose items could be kept emits NoteStore,
// Refused, items.refused, ReplaceBody, RecordAge, the cached-items header,
// the leader-failure count and — eighth, the last slot — the followers'
// wake-up. One more action on that path would drop the wake-up: the
// follower would wait for a tick and count the lead as a failure.
func TestRewrittenBatchNoneKeptWakesFollowersAtOnce(t *testing.T) {
	hs := newHarness(t, strings.Replace(embConfig, `"ttl": "1h",`, `"ttl": "1h", "max_entry_bytes": 2048,`, 1))
	long := strings.Repeat("long chunk ", 300)
	// A batch with a duplicate item is rewritten (each item sent once) and,
	// with no item cached, coalesces.
	body := embReq([]string{long, long + "2", long}, "")
	req := embExchange(body, "Bearer tenant-a")
	hs.holdUpstream()
	leader, up := hs.lead(req)
	follower := hs.h.StartExchange(1, req)
	hs.h.Drain()
	if follower.Done() || len(hs.h.PendingUpstream()) != 1 || hs.counter("modelcache_route.emb.coalesce.followers") != 1 {
		t.Fatalf("premise: the second request should follow (done %v, %d upstream)", follower.Done(), len(hs.h.PendingUpstream()))
	}
	hs.answer(up)
	hs.h.Drain()
	if !leader.Done() || leader.Response().Status != 200 {
		t.Fatalf("leader: done %v", leader.Done())
	}
	if cs := hdr(leader.Response(), "cache-status"); !strings.Contains(cs, "too-large") {
		t.Fatalf("premise: the leader's answer should be refused too large: %q", cs)
	}
	// The lead ended uncacheable (too large): the follower is woken at once
	// and sent upstream, with no tick.
	if n := hs.counter("modelcache_route.emb.coalesce.tick_wakeups"); n != 0 {
		t.Errorf("the follower needed a tick (%d): the leader's wake-up was dropped", n)
	}
	if !follower.Done() && len(hs.h.PendingUpstream()) != 1 {
		t.Errorf("follower neither answered nor upstream: %s", follower.State())
	}
	if follower.Done() && follower.Response().Status != 200 {
		t.Errorf("follower status %d", follower.Response().Status)
	}
}
