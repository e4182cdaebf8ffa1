//go:build !wasip1

package main

import (
	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/wasmhost"
	"strings"
	"testing"
	"time"
)

// Guarantee: "Nobody waits longer than coalesce.max_wait" (config: "a
// follower goes upstream itself after this"). A follower's wait is measured
// as nowMs() - waitSince on the wall clock, and the leader's lease deadline
// is a wall-clock instant too. When NTP steps the wall clock back (here an
// hour) while a leader's model hangs, the difference goes negative and the
// lease looks live for another hour: the followers keep waiting far past
// max_wait (10s here) — an hour and 10 s instead of 10 s.
func TestFollowerGivesUpAtMaxWaitAfterWallClockStepsBack(t *testing.T) {
	hs := newHarness(t, coalesceConfig)
	hs.holdUpstream()
	startMany(hs, 3, "slow leader, clock steps back")
	if n := len(hs.h.PendingUpstream()); n != 1 {
		t.Fatalf("%d upstream requests before max_wait, want 1 (single flight)", n)
	}
	hs.clock.Set(hs.clock.Now().Add(-time.Hour)) // NTP step; monotonic time stays
	hs.h.AdvanceAndTick(11 * time.Second)        // past max_wait (10s) of real waiting
	if n := len(hs.h.PendingUpstream()); n != 3 {
		t.Fatalf("%d upstream requests 11s into a 10s max_wait after a 1h wall-clock step back, want 3 (followers went upstream themselves); timeouts=%d",
			n, hs.counter("modelcache_route.chat.coalesce.timeouts"))
	}
}

// Guarantee: fail-open / README (Istio): "a request held 250 ms without a
// body is let go and decided late". The hold is timed by the wall clock
// (Stream.HeldTooLong: now-heldSince >= HoldGrace): after NTP steps the
// clock back an hour while a request is held, the difference is negative
// and the request stays held, with no upstream contact, until the clock
// has caught up — an hour instead of 250 ms.
func TestHeldRequestLetGoAfterHoldGraceAfterWallClockStepsBack(t *testing.T) {
	hs := newHarness(t, chatConfig, withWorkers(1), func(_ *harness, c *wasmhost.Config) {
		c.AllowOnHeadersStopIteration = false
	})
	ex := hs.h.StartExchange(0, chatRequest("held across a clock step"))
	hs.h.Drain()
	if ex.Done() || ex.UpstreamContacted() {
		t.Skipf("not held (done %v, upstream %v)", ex.Done(), ex.UpstreamContacted())
	}
	hs.clock.Set(hs.clock.Now().Add(-time.Hour)) // NTP step; monotonic time stays
	for i := 0; i < 4; i++ {
		hs.h.AdvanceAndTick(cachecore.HoldGrace) // 1 s of real time in all
		hs.h.Drain()
	}
	if !ex.Done() && !ex.UpstreamContacted() {
		t.Fatalf("still held %v after its headers (HoldGrace %v) because the wall clock stepped back 1h: %s",
			4*cachecore.HoldGrace, cachecore.HoldGrace, ex.State())
	}
}

// Guarantee: one request per key reaches the model, across proxies (L2
// lease). A leader renews its cross-proxy lease (EXPIRE, lease_ttl 10s)
// every lease_ttl/2 while its answer is out (Flight.keepL2Lease: due when
// now-leaseAt >= lease_ttl/2). After NTP steps the wall clock back an hour,
// now-leaseAt is negative and no renewal is sent for an hour: Redis lets the
// lease lapse after 10 s of real time and another proxy's request for the
// same key goes to the model too.
func TestL2LeaseRenewedAfterWallClockStepsBack(t *testing.T) {
	cfg := `{"upstream_cluster": "model", "l2": {"cluster": "webdis", "timeout": "1s"},
  "routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s"}]}`
	w := &l2Webdis{kv: map[string]string{}}
	hs := newHarness(t, cfg, func(_ *harness, c *wasmhost.Config) {
		c.Clusters = append(c.Clusters, "webdis")
		c.HTTPCall = w.call
	})
	hs.holdUpstream()
	hs.h.StartExchange(0, chatRequest("long answer across a clock step"))
	hs.h.Drain()
	w.mu.Lock()
	held := w.held
	w.held = nil
	w.mu.Unlock()
	if len(held) != 1 {
		t.Fatalf("setup: lease calls held: %d (calls %q)", len(held), w.paths)
	}
	for _, h := range held[0].Headers {
		if h[0] == ":path" {
			held[0].Respond(200, nil, []byte(w.do(h[1], nil))) // Redis gives the lease
		}
	}
	hs.h.Drain()
	if n := len(hs.h.PendingUpstream()); n != 1 {
		t.Fatalf("setup: %d upstream requests, want the leader's 1 (calls %q)", n, w.paths)
	}
	hs.clock.Set(hs.clock.Now().Add(-time.Hour)) // NTP step; monotonic time stays
	for i := 0; i < 8; i++ {
		hs.h.AdvanceAndTick(time.Second) // 8 s: past lease_ttl/2, before lease_ttl
		hs.h.Drain()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	expires := 0
	for _, p := range w.paths {
		if strings.HasPrefix(p, "/EXPIRE/") {
			expires++
		}
	}
	if expires == 0 {
		t.Fatalf("no EXPIRE of the cross-proxy lease in 8 s of a 10 s lease_ttl after a 1h wall-clock step back (%d webdis calls, none a renewal)", len(w.paths))
	}
}

// Guarantee: a follower is answered with the model's answer (or goes
// upstream), never a made-up failure while the model answers 200; an entry
// purge refuses only answers asked for before it. The purge tombstone
// compares wall-clock times (purge time vs the request's lookup): after NTP
// steps the clock back an hour, every answer for the purged key is refused
// as "invalidated" for an hour, which the followers count as a leader
// failure; after max_retries such "failures" a burst of identical requests
// gets 502 leader-failed although every model call answered 200.
func TestPurgedKeyBurstAfterWallClockStepsBackGetsTheModelsAnswer(t *testing.T) {
	cfg := strings.Replace(coalesceConfig, `"upstream_cluster": "model",`,
		`"upstream_cluster": "model", "purge": {"path": "/modelcache/purge", "token": "0123456789abcdef-token"},`, 1)
	hs := newHarness(t, cfg)
	content := "purged then the clock steps back"
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", chatBody(content)), "stored")
	reviewPurge(hs, 0, `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer tenant-a","host":"models"},"body":`+chatBody(content)+`}`)
	hs.h.AdvanceAndTick(time.Second)
	hs.clock.Set(hs.clock.Now().Add(-time.Hour)) // NTP step; monotonic time stays
	hs.h.AdvanceAndTick(time.Minute)             // a minute after the purge
	hs.h.Drain()

	hs.holdUpstream()
	exs := startMany(hs, 4, content)
	for i := 0; i < 10; i++ {
		pending := hs.h.PendingUpstream()
		if len(pending) == 0 {
			break
		}
		for _, u := range pending {
			hs.answer(u)
		}
		hs.h.Drain()
	}
	for i, ex := range exs {
		if !ex.Done() {
			t.Fatalf("request %d not done: %s", i, ex.State())
		}
		if res := ex.Response(); res.Status != 200 {
			t.Fatalf("request %d of a burst a minute after an entry purge (wall clock stepped back 1h): status %d, Cache-Status %q, stored refusals %d; want the model's 200",
				i, res.Status, hdr(res, "cache-status"), hs.counter("modelcache_route.chat.refused.invalidated"))
		}
	}
}
