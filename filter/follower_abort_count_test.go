//go:build !wasip1

package main

import (
	"strconv"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// README (stats): modelcache_route.<route>.requests.<status> counts "each request
// once". A follower whose client goes away while it waits for its leader is
// never counted under any status (Stream.Done/cut count nothing for
// phaseFollowing), while a leader whose client goes away while its request
// is upstream is counted (miss, as it went upstream), and a follower that
// Envoy answers itself while it waits is counted too (Stream.interrupted).
// Here three requests for one key arrive — one leads, two follow (one per
// worker) and their clients leave — so the requests.* counters must sum to
// three, not one.
func TestLifeReviewAbortedFollowerIsCountedOnce(t *testing.T) {
	hs := newHarness(t, coalesceConfig, withWorkers(2))
	var held []*wasmhost.UpstreamRequest
	hs.fault = func(u *wasmhost.UpstreamRequest) bool { held = append(held, u); return true }
	body := chatBody("a follower whose client leaves")
	req := func() wasmhost.Request {
		return wasmhost.Request{Headers: [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, {":authority", "models"},
			{"authorization", "Bearer tenant-a"}, {"content-type", "application/json"}, {"content-length", strconv.Itoa(len(body))}},
			Body: []byte(body)}
	}
	leader := hs.h.StartExchange(0, req())
	hs.h.Drain()
	followers := []*wasmhost.Exchange{hs.h.StartExchange(0, req()), hs.h.StartExchange(1, req())}
	hs.h.Drain()
	if len(held) != 1 {
		t.Fatalf("%d upstream requests, want 1 (the others follow)", len(held))
	}
	for i, f := range followers {
		if f.Done() || f.UpstreamContacted() {
			t.Fatalf("request %d does not follow: %s", i+1, f.State())
		}
		f.Abort()
	}
	hs.h.Drain()
	hs.fault = nil
	hs.serveUpstream(held[0])
	hs.h.Drain()
	if !leader.Done() || leader.Response().Status != 200 {
		t.Fatalf("leader: %s", leader.State())
	}
	counts, sum := requestCounters(hs, "chat")
	if sum != 3 {
		t.Fatalf("requests.* sum to %d for 3 requests (%s): the 2 followers whose clients left are not counted", sum, fmtCounters(counts))
	}
}
