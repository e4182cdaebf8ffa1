//go:build !wasip1

package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/internal/hammer"
	"github.com/modelcache/modelcache/wasmhost"
)

const coalesceConfig = `{
  "upstream_cluster": "model",
  "routes": [
    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s",
     "coalesce": {"max_wait": "10s", "max_retries": 2, "hit_for_miss": "30s"}}
  ]
}`

func chatRequest(content string) wasmhost.Request {
	return wasmhost.Request{
		Headers: [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, {":authority", "models"},
			{"content-type", "application/json"}, {"authorization", "Bearer tenant-a"}},
		Body: []byte(chatBody(content)),
	}
}

// onlyUpstream is the one upstream request pending (the test fails if there
// are more or none).
func (hs *harness) onlyUpstream() *wasmhost.UpstreamRequest {
	hs.t.Helper()
	up := hs.h.PendingUpstream()
	if len(up) != 1 {
		hs.t.Fatalf("%d upstream requests", len(up))
	}
	return up[0]
}

// lead starts req on worker 0, with the upstream held (holdUpstream), and
// returns its exchange and the one upstream request it made.
func (hs *harness) lead(req wasmhost.Request) (*wasmhost.Exchange, *wasmhost.UpstreamRequest) {
	hs.t.Helper()
	ex := hs.h.StartExchange(0, req)
	hs.h.Drain()
	return ex, hs.onlyUpstream()
}

// holdUpstream makes the harness keep every upstream request pending until
// the test answers it (through h.PendingUpstream()).
func (hs *harness) holdUpstream() {
	hs.fault = func(u *wasmhost.UpstreamRequest) bool { return true }
}

// answer lets the simulator answer a held upstream request.
func (hs *harness) answer(u *wasmhost.UpstreamRequest) {
	hs.fault = nil
	hs.upstream.Add(-1) // serveUpstream counts again
	hs.serveUpstream(u)
	hs.holdUpstream()
}

func startMany(hs *harness, n int, content string) []*wasmhost.Exchange {
	var exs []*wasmhost.Exchange
	for i := 0; i < n; i++ {
		exs = append(exs, hs.h.StartExchange(i%hs.h.Workers(), chatRequest(content)))
	}
	hs.h.Drain()
	return exs
}

func TestSingleFlightAcrossWorkers(t *testing.T) {
	hs := newHarness(t, coalesceConfig, withWorkers(4))
	hs.holdUpstream()
	exs := startMany(hs, 40, "stampede")
	pending := hs.h.PendingUpstream()
	if len(pending) != 1 {
		t.Fatalf("%d upstream requests in flight, want exactly 1", len(pending))
	}
	for _, ex := range exs[1:] {
		if ex.Done() {
			t.Fatal("a follower finished before the leader")
		}
	}
	if g, _ := hs.h.Gauge("modelcache.coalesce_waiting"); g != 0 {
		t.Logf("waiting gauge before tick: %d", g)
	}
	hs.answer(pending[0])
	hs.h.Drain()
	var body []byte
	collapsed := 0
	for i, ex := range exs {
		if !ex.Done() {
			t.Fatalf("exchange %d not done: %s", i, ex.State())
		}
		r := ex.Response()
		if r.Status != 200 {
			t.Fatalf("exchange %d: status %d", i, r.Status)
		}
		if body == nil {
			body = r.Body
		} else if !bytes.Equal(body, r.Body) {
			t.Fatal("followers got a different body")
		}
		if strings.Contains(hdr(r, "cache-status"), "collapsed") {
			collapsed++
		}
	}
	if collapsed != 39 {
		t.Fatalf("collapsed = %d, want 39", collapsed)
	}
	if hs.sim.Calls("/v1/chat/completions") != 1 {
		t.Fatalf("model calls = %d", hs.sim.Calls("/v1/chat/completions"))
	}
	if hs.counter("modelcache_route.chat.requests.collapsed") != 39 || hs.counter("modelcache_route.chat.coalesce.leaders") != 1 ||
		hs.counter("modelcache_route.chat.coalesce.followers") != 39 {
		t.Fatalf("stats: collapsed %d leaders %d followers %d", hs.counter("modelcache_route.chat.requests.collapsed"),
			hs.counter("modelcache_route.chat.coalesce.leaders"), hs.counter("modelcache_route.chat.coalesce.followers"))
	}
	if hs.counter("modelcache_route.chat.coalesce.tick_wakeups") != 0 {
		t.Fatal("followers needed a tick: the queue wake-up did not arrive")
	}
}

// The leader's answer is an error: nobody gets it but the leader's client,
// nothing is stored, one follower leads next and the rest get its answer.
func TestLeaderFailurePromotesAFollower(t *testing.T) {
	hs := newHarness(t, coalesceConfig, withWorkers(2))
	hs.holdUpstream()
	exs := startMany(hs, 10, "fail first")
	first := hs.h.PendingUpstream()
	if len(first) != 1 {
		t.Fatalf("%d in flight", len(first))
	}
	first[0].Respond(500, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":{"message":"boom"}}`))
	hs.h.Drain()
	second := hs.h.PendingUpstream()
	if len(second) != 1 {
		t.Fatalf("after the leader failed: %d in flight, want 1 (the promoted follower)", len(second))
	}
	hs.answer(second[0])
	hs.h.Drain()
	statuses := map[int]int{}
	for i, ex := range exs {
		if !ex.Done() {
			t.Fatalf("exchange %d stuck: %s", i, ex.State())
		}
		statuses[ex.Response().Status]++
	}
	if statuses[500] != 1 || statuses[200] != 9 {
		t.Fatalf("statuses %v, want one 500 (the first leader's client) and nine 200", statuses)
	}
	if hs.counter("modelcache_route.chat.coalesce.promoted") != 1 || hs.counter("modelcache_route.chat.coalesce.leader_failures") != 1 {
		t.Fatal("promotion not counted")
	}
	if got := hs.upstream.Load(); got != 2 {
		t.Fatalf("upstream calls = %d, want 2", got)
	}
}

func TestLeaderClientAbortPromotesAFollower(t *testing.T) {
	hs := newHarness(t, coalesceConfig)
	hs.holdUpstream()
	exs := startMany(hs, 4, "abort")
	exs[0].Abort() // the leader's client goes away; Envoy cancels the upstream request
	hs.h.Drain()
	var live []*wasmhost.UpstreamRequest
	for _, u := range hs.h.PendingUpstream() {
		if !u.Cancelled() {
			live = append(live, u)
		}
	}
	if len(live) != 1 {
		t.Fatalf("%d live upstream requests after the leader's abort, want 1", len(live))
	}
	hs.answer(live[0])
	hs.h.Drain()
	for i, ex := range exs[1:] {
		if !ex.Done() || ex.Response().Status != 200 {
			t.Fatalf("follower %d: %s", i, ex.State())
		}
	}
}

func TestFollowerGivesUpAfterMaxWait(t *testing.T) {
	hs := newHarness(t, coalesceConfig)
	hs.holdUpstream()
	exs := startMany(hs, 3, "slow leader")
	hs.h.AdvanceAndTick(11 * time.Second)
	if n := len(hs.h.PendingUpstream()); n != 3 {
		t.Fatalf("%d upstream requests after max_wait, want 3 (followers went upstream themselves)", n)
	}
	if hs.counter("modelcache_route.chat.coalesce.timeouts") != 2 {
		t.Fatalf("timeouts = %d", hs.counter("modelcache_route.chat.coalesce.timeouts"))
	}
	for _, u := range hs.h.PendingUpstream() {
		hs.answer(u)
	}
	hs.h.Drain()
	for _, ex := range exs {
		if !ex.Done() {
			t.Fatal(ex.State())
		}
	}
}

func TestUncacheableAnswerReleasesEveryone(t *testing.T) {
	hs := newHarness(t, coalesceConfig)
	hs.holdUpstream()
	exs := startMany(hs, 5, "no-store")
	noStore := func(u *wasmhost.UpstreamRequest) {
		u.Respond(200, [][2]string{{"content-type", "application/json"}, {"cache-control", "no-store"}},
			[]byte(`{"choices":[{"message":{"content":"x"},"finish_reason":"stop"}]}`))
	}
	noStore(hs.h.PendingUpstream()[0])
	hs.h.Drain()
	if n := len(hs.h.PendingUpstream()); n != 4 {
		t.Fatalf("%d upstream requests, want the 4 followers at once", n)
	}
	for _, u := range hs.h.PendingUpstream() {
		noStore(u)
	}
	hs.h.Drain()
	for _, ex := range exs {
		if !ex.Done() {
			t.Fatal(ex.State())
		}
	}
	// Hit-for-miss: the next request for the key does not wait for anyone.
	hs.fault = func(u *wasmhost.UpstreamRequest) bool { noStore(u); return true }
	res := hs.post(0, "/v1/chat/completions", chatBody("no-store"))
	expectCacheStatus(t, res, "fwd=miss")
	if hs.counter("modelcache_route.chat.coalesce.hit_for_miss") != 1 {
		t.Fatalf("hit_for_miss = %d", hs.counter("modelcache_route.chat.coalesce.hit_for_miss"))
	}
}

// A lost wake-up costs one tick: followers re-check on their tick when the
// lease is gone, and one of them leads.
func TestLostWakeupRecoveredOnTick(t *testing.T) {
	hs := newHarness(t, coalesceConfig)
	hs.holdUpstream()
	exs := startMany(hs, 3, "lost")
	for _, k := range hs.h.SharedDataKeys() {
		if strings.HasPrefix(k, "mc:l:") {
			hs.h.SetSharedData(k, nil, 0) // the leader's lease vanishes, and with it the wake-up
		}
	}
	hs.h.AdvanceAndTick(150 * time.Millisecond)
	if n := len(hs.h.PendingUpstream()); n != 2 {
		t.Fatalf("%d upstream requests after a tick, want 2 (old leader + one new)", n)
	}
	if hs.counter("modelcache_route.chat.coalesce.tick_wakeups") == 0 {
		t.Fatal("tick re-check not counted")
	}
	for _, u := range hs.h.PendingUpstream() {
		hs.answer(u)
	}
	hs.h.Drain()
	for i, ex := range exs {
		if !ex.Done() || ex.Response().Status != 200 {
			t.Fatalf("exchange %d: %s", i, ex.State())
		}
	}
}

// TestSingleFlightHammer drives 8 worker VMs from 8 goroutines, each sending
// every key of a round at once: exactly one request per key may reach the
// upstream, every client gets the same answer, for many rounds.
func TestSingleFlightHammer(t *testing.T) {
	const workers, keys, rounds = 8, 6, 15
	hs := newHarness(t, coalesceConfig, withWorkers(workers), withManualDrain())
	// Two keys sharing a lease slot do not coalesce (by design), and lease
	// slots come from a hash keyed by the process secret, which the VM
	// that wins the race to create it draws. A fixed secret, under which
	// no two keys of a round share one of the 1,024 slots, keeps the test
	// deterministic.
	hs.h.SetSharedData("mc:secret", append([]byte("MS\x01"), "hammer-test-secret-32-bytes-lon2"...), 0)
	hs.holdUpstream()
	for round := 0; round < rounds; round++ {
		exs := make([][]*wasmhost.Exchange, workers)
		hammer.Run(t, workers, func(w int) error {
			for k := 0; k < keys; k++ {
				exs[w] = append(exs[w], hs.h.StartExchange(w, chatRequest(fmt.Sprintf("round %d key %d", round, (k+w)%keys))))
				hs.h.DrainVM(w)
			}
			return nil
		})
		hs.h.Drain()
		perKey := map[string]int{}
		for _, u := range hs.h.PendingUpstream() {
			perKey[string(u.Body)]++
		}
		if len(perKey) != keys {
			t.Fatalf("round %d: %d keys upstream, want %d", round, len(perKey), keys)
		}
		for k, n := range perKey {
			if n != 1 {
				t.Fatalf("round %d: %d leaders for %s", round, n, k)
			}
		}
		for _, u := range hs.h.PendingUpstream() {
			hs.answer(u)
		}
		hs.h.Drain()
		for w := range exs {
			for _, ex := range exs[w] {
				if !ex.Done() || ex.Response().Status != 200 {
					t.Fatalf("round %d worker %d: %s", round, w, ex.State())
				}
			}
		}
	}
	if got := hs.sim.Calls("/v1/chat/completions"); got != keys*rounds {
		t.Fatalf("model calls = %d, want %d", got, keys*rounds)
	}
}

const swrConfig = `{
  "upstream_cluster": "model",
  "routes": [
    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s",
     "stale_while_revalidate": "30s", "stale_if_error": "5m"}
  ]
}`

func TestStaleWhileRevalidate(t *testing.T) {
	hs := newHarness(t, swrConfig, withHTTPCalls())
	hs.holdCalls = true
	body := chatBody("swr")
	first := hs.post(0, "/v1/chat/completions", body)
	hs.clock.Advance(70 * time.Second) // 10 s stale, inside the 30 s window
	for i := 0; i < 10; i++ {
		res := hs.post(i%2, "/v1/chat/completions", body)
		expectCacheStatus(t, res, "hit", "fwd=stale", "ttl=-10")
		if !bytes.Equal(res.Body, first.Body) {
			t.Fatal("stale body differs")
		}
	}
	calls := hs.h.PendingHTTPCalls()
	if len(calls) != 1 {
		t.Fatalf("%d background refreshes, want exactly 1", len(calls))
	}
	if calls[0].Cluster != "model" || string(calls[0].Body) != body || !hasHeader(calls[0].Headers, "authorization", "Bearer tenant-a") {
		t.Fatalf("refresh call: %s %q %v", calls[0].Cluster, calls[0].Body, calls[0].Headers)
	}
	if hs.sim.Calls("/v1/chat/completions") != 1 {
		t.Fatal("a stale hit went upstream")
	}
	hs.answerCall(calls[0])
	hs.h.Drain()
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "hit", "ttl=60")
	if hs.counter("modelcache_route.chat.background.stored") != 1 || hs.counter("modelcache_route.chat.background.started") != 1 {
		t.Fatal("refresh not counted")
	}
	// A failed refresh keeps the stale entry.
	hs.clock.Advance(65 * time.Second)
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "fwd=stale")
	hs.h.PendingHTTPCalls()[0].Fail()
	hs.h.Drain()
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", body), "fwd=stale")
	if hs.counter("modelcache_route.chat.background.failed") != 1 {
		t.Fatal("failed refresh not counted")
	}
}

func TestStaleIfError(t *testing.T) {
	hs := newHarness(t, swrConfig)
	body := chatBody("sie")
	first := hs.post(0, "/v1/chat/completions", body)
	hs.clock.Advance(2 * time.Minute) // past ttl + swr, inside stale_if_error
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		u.Respond(503, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":"overloaded"}`))
		return true
	}
	res := hs.post(1, "/v1/chat/completions", body)
	if res.Status != 200 || !bytes.Equal(res.Body, first.Body) {
		t.Fatalf("status %d body %s", res.Status, res.Body)
	}
	expectCacheStatus(t, res, "fwd=stale", "detail=stale-if-error")
	if hs.counter("modelcache_route.chat.requests.stale_if_error") != 1 {
		t.Fatal("stale_if_error not counted")
	}
	// Past the window the error goes through.
	hs.clock.Advance(10 * time.Minute)
	if res := hs.post(1, "/v1/chat/completions", body); res.Status != 503 {
		t.Fatalf("status %d", res.Status)
	}
}

// A request answered with a stale entry because the model failed
// (Cache-Status: hit; fwd=stale; detail=stale-if-error) is counted once,
// as stale_if_error: it went upstream first, and was also counted a miss.
func TestStaleIfErrorIsCountedOnce(t *testing.T) {
	hs := newHarness(t, swrConfig)
	body := chatBody("sie once")
	hs.post(0, "/v1/chat/completions", body) // a miss, stored
	hs.clock.Advance(2 * time.Minute)        // past ttl + swr, inside stale_if_error
	hs.fault = func(u *wasmhost.UpstreamRequest) bool {
		u.Respond(503, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":"overloaded"}`))
		return true
	}
	res := hs.post(1, "/v1/chat/completions", body)
	expectCacheStatus(t, res, "fwd=stale", "detail=stale-if-error")
	got, sum := requestCounters(hs, "chat")
	if sum != 2 || got["miss"] != 1 || got["stale_if_error"] != 1 {
		t.Fatalf("2 requests (a miss, then a stale-if-error answer) counted as %d: %s", sum, fmtCounters(got))
	}
}

func TestEarlyRefreshXFetch(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"60s",
	  "early_refresh":{"enabled":true,"beta":1}}]}`
	hs := newHarness(t, cfg, withHTTPCalls())
	body := chatBody("xfetch")
	// The model takes 2 s to answer: δ = 2000 ms.
	hs.holdUpstream()
	ex := hs.h.StartExchange(0, chatRequest("xfetch"))
	hs.h.Drain()
	hs.clock.Advance(2 * time.Second)
	hs.answer(hs.h.PendingUpstream()[0])
	hs.h.Drain()
	if !ex.Done() {
		t.Fatal(ex.State())
	}
	hs.fault = nil
	hs.holdCalls = true
	// Far from expiry (58 s left ≫ δ): P(refresh) = e^(−58/2) ≈ 2e−13.
	for i := 0; i < 50; i++ {
		expectCacheStatus(t, hs.post(i%2, "/v1/chat/completions", body), "hit")
	}
	if n := len(hs.h.PendingHTTPCalls()); n != 0 {
		t.Fatalf("%d early refreshes far from expiry", n)
	}
	// 100 ms before expiry: P(refresh) = e^(−0.05) ≈ 0.95 per hit. The
	// answer was stored 2 s in, so it expires 62 s in: 59.9 s after
	// that. (57.9 s, as this read before, left 2.1 s: P = e^(−1.05) ≈
	// 0.35 a hit, and no refresh in 10 hits 1.3% of the time — met when a
	// new global map moved the module's seeded random stream, stop 73.)
	hs.clock.Advance(59900 * time.Millisecond)
	for i := 0; i < 10; i++ {
		expectCacheStatus(t, hs.post(i%2, "/v1/chat/completions", body), "hit")
	}
	if n := len(hs.h.PendingHTTPCalls()); n != 1 {
		t.Fatalf("%d early refreshes near expiry, want exactly 1 (single flight)", n)
	}
	hs.answerCall(hs.h.PendingHTTPCalls()[0])
	hs.h.Drain()
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "hit", "ttl=60")
	if hs.sim.Calls("/v1/chat/completions") != 2 {
		t.Fatalf("model calls = %d, want 2 (first + refresh)", hs.sim.Calls("/v1/chat/completions"))
	}
}

func hasHeader(h [][2]string, name, value string) bool {
	for _, kv := range h {
		if kv[0] == name && kv[1] == value {
			return true
		}
	}
	return false
}

// failAllUpstream answers every pending upstream request with status until
// none is left, and returns how many it answered.
func failAllUpstream(t *testing.T, hs *harness, status int) int {
	t.Helper()
	calls := 0
	for round := 0; round < 50; round++ {
		pending := hs.h.PendingUpstream()
		if len(pending) == 0 {
			return calls
		}
		for _, u := range pending {
			u.Respond(status, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":{"message":"overloaded"}}`))
			calls++
		}
		hs.h.Drain()
	}
	t.Fatal("upstream requests kept coming")
	return calls
}

// With the upstream failing every call, a stampede makes max_retries+1
// upstream calls, not one per follower: once its leaders have failed
// max_retries+1 times, the followers are answered with the failure
// (coalesce.on_retries_exhausted "fail", the default).
func TestRetriesExhaustedFailsFollowers(t *testing.T) {
	hs := newHarness(t, coalesceConfig, withWorkers(2))
	hs.holdUpstream()
	exs := startMany(hs, 10, "failing upstream")
	calls := failAllUpstream(t, hs, 503)
	if calls != 3 {
		t.Fatalf("%d upstream calls, want max_retries+1 = 3", calls)
	}
	failedLocally := 0
	for i, ex := range exs {
		if !ex.Done() {
			t.Fatalf("exchange %d stuck: %s", i, ex.State())
		}
		r := ex.Response()
		if r.Status != 503 {
			t.Fatalf("exchange %d: status %d, want the leader's 503", i, r.Status)
		}
		if cs := hdr(r, "cache-status"); strings.Contains(cs, "detail=leader-failed") {
			expectCacheStatus(t, r, "fwd=miss", "collapsed", "fwd-status=503")
			failedLocally++
		}
	}
	if failedLocally != 7 {
		t.Fatalf("%d followers answered with the failure, want 7", failedLocally)
	}
	if got := hs.counter("modelcache_route.chat.coalesce.retries_exhausted"); got != 7 {
		t.Fatalf("retries_exhausted = %d", got)
	}
	if got := hs.counter("modelcache_route.chat.requests.leader_failed"); got != 7 {
		t.Fatalf("requests.leader_failed = %d", got)
	}
}

// "forward" keeps the fail-open behaviour: every follower left goes upstream.
func TestRetriesExhaustedForward(t *testing.T) {
	cfg := strings.Replace(coalesceConfig, `"hit_for_miss": "30s"`, `"hit_for_miss": "30s", "on_retries_exhausted": "forward"`, 1)
	hs := newHarness(t, cfg, withWorkers(2))
	hs.holdUpstream()
	exs := startMany(hs, 10, "failing upstream")
	if calls := failAllUpstream(t, hs, 503); calls != 10 {
		t.Fatalf("%d upstream calls, want 10 (3 leaders, then the 7 followers left)", calls)
	}
	for i, ex := range exs {
		if !ex.Done() || ex.Response().Status != 503 {
			t.Fatalf("exchange %d: %s", i, ex.State())
		}
	}
}

// A leader whose client goes away before any answer came says nothing about
// the upstream: its followers take over without counting a failure. With
// the default on_retries_exhausted "fail", three such aborts in a row used
// to answer every remaining follower 502 "the upstream failed" although
// the model never failed (a client — or an attacker sharing the key on a
// shared route — that leads and hangs up, three times).
func TestLeaderClientAbortIsNotAnUpstreamFailure(t *testing.T) {
	hs := newHarness(t, coalesceConfig, withWorkers(2))
	hs.holdUpstream()
	exs := startMany(hs, 10, "impatient leaders")
	aborted := map[*wasmhost.Exchange]bool{}
	for round := 0; round < 3; round++ {
		if n := len(hs.h.PendingUpstream()); n != 1 {
			t.Fatalf("round %d: %d upstream requests in flight, want 1", round, n)
		}
		var leader *wasmhost.Exchange
		for _, ex := range exs {
			if !aborted[ex] && ex.UpstreamContacted() {
				leader = ex
			}
		}
		if leader == nil {
			t.Fatalf("round %d: no leader among the exchanges", round)
		}
		leader.Abort()
		aborted[leader] = true
		hs.h.Drain()
	}
	pending := hs.h.PendingUpstream()
	if len(pending) != 1 {
		t.Fatalf("after 3 client aborts: %d upstream requests in flight, want 1 (a follower leads next)", len(pending))
	}
	hs.answer(pending[0])
	hs.h.Drain()
	for i, ex := range exs {
		if aborted[ex] {
			continue
		}
		if !ex.Done() {
			t.Fatalf("exchange %d stuck: %s", i, ex.State())
		}
		if r := ex.Response(); r.Status != 200 {
			t.Fatalf("exchange %d: status %d (%s), want the model's answer", i, r.Status, hdr(r, "cache-status"))
		}
	}
	if got := hs.counter("modelcache_route.chat.requests.leader_failed"); got != 0 {
		t.Fatalf("requests.leader_failed = %d, want 0", got)
	}
}

// The same for a streamed answer: a leader's client that stops reading
// mid-stream (a chat UI's stop button) leaves, it does not fail; an
// upstream that resets mid-stream does fail, and is counted.
func TestStreamingLeaderAbortVersusUpstreamReset(t *testing.T) {
	streamReq := func() wasmhost.Request {
		req := chatRequest("")
		req.Body = []byte(streamBody("stopped by the user"))
		return req
	}
	sseHead := [][2]string{{"content-type", "text/event-stream"}}
	firstChunk := []byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n")
	for _, tc := range []struct {
		name        string
		cut         func(leader *wasmhost.Exchange, u *wasmhost.UpstreamRequest)
		wantFailed  bool // the followers end with the failure
		wantPending int  // upstream calls in flight after 3 cuts
	}{
		{"client abort", func(leader *wasmhost.Exchange, _ *wasmhost.UpstreamRequest) { leader.Abort() }, false, 1},
		{"upstream reset", func(_ *wasmhost.Exchange, u *wasmhost.UpstreamRequest) { u.Reset() }, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, coalesceConfig, withWorkers(2))
			hs.holdUpstream()
			var exs []*wasmhost.Exchange
			for i := 0; i < 10; i++ {
				exs = append(exs, hs.h.StartExchange(i%2, streamReq()))
			}
			hs.h.Drain()
			cut := map[*wasmhost.Exchange]bool{}
			for round := 0; round < 3; round++ {
				pending := hs.h.PendingUpstream()
				if len(pending) != 1 {
					t.Fatalf("round %d: %d upstream requests in flight, want 1", round, len(pending))
				}
				var leader *wasmhost.Exchange
				for _, ex := range exs {
					if !cut[ex] && ex.UpstreamContacted() && !ex.Done() {
						leader = ex
					}
				}
				pending[0].RespondHeaders(200, sseHead, false)
				pending[0].SendChunk(firstChunk, false)
				hs.h.Drain()
				tc.cut(leader, pending[0])
				cut[leader] = true
				hs.h.Drain()
			}
			if n := len(hs.h.PendingUpstream()); n != tc.wantPending {
				t.Fatalf("after 3 cut streams: %d upstream requests in flight, want %d", n, tc.wantPending)
			}
			if tc.wantPending == 1 {
				hs.answer(hs.h.PendingUpstream()[0])
				hs.h.Drain()
			}
			for i, ex := range exs {
				if cut[ex] {
					continue
				}
				if !ex.Done() {
					t.Fatalf("exchange %d stuck: %s", i, ex.State())
				}
				r := ex.Response()
				failed := strings.Contains(hdr(r, "cache-status"), "detail=leader-failed")
				if failed != tc.wantFailed || !failed && r.Status != 200 {
					t.Fatalf("exchange %d: status %d, Cache-Status %q", i, r.Status, hdr(r, "cache-status"))
				}
			}
		})
	}
}

// leaderFailedWakeQueued runs a leader on worker 0 and its follower on
// worker 1 (max_retries 0) until the leader's upstream answers 503: the
// leader is done, and its wake-up waits in worker 1's queue.
func leaderFailedWakeQueued(t *testing.T, prompt string) (*harness, *wasmhost.Exchange) {
	t.Helper()
	cfg := strings.Replace(coalesceConfig, `"max_retries": 2`, `"max_retries": 0`, 1)
	hs := newHarness(t, cfg, withManualDrain())
	hs.holdUpstream()
	leader := hs.h.StartExchange(0, chatRequest(prompt))
	hs.h.DrainVM(0)
	follower := hs.h.StartExchange(1, chatRequest(prompt))
	hs.h.DrainVM(1)
	pending := hs.h.PendingUpstream()
	if len(pending) != 1 {
		t.Fatalf("%d upstream requests", len(pending))
	}
	pending[0].Respond(503, [][2]string{{"content-type", "application/json"}}, []byte(`{"error":"overloaded"}`))
	hs.h.DrainVM(0)
	if !leader.Done() || leader.Response().Status != 503 {
		t.Fatalf("leader: %s", leader.State())
	}
	return hs, follower
}

// A follower's tick can run before its pending wake-up is delivered (Envoy
// orders a timer and a posted queue event as it likes; under load the e2e
// TestStampedeFailingUpstreamRetriesExhausted saw it). The tick must not
// answer with a 502 of unknown cause when the wake-up with the leader's
// status is already in the queue.
func TestTickBeforeWakeupKeepsLeaderStatus(t *testing.T) {
	hs, follower := leaderFailedWakeQueued(t, "tick race")
	hs.h.Tick(1) // the tick comes first
	hs.h.Drain()
	if !follower.Done() {
		t.Fatalf("follower: %s", follower.State())
	}
	res := follower.Response()
	if res.Status != 503 {
		t.Fatalf("follower got %d (%s), want the leader's 503", res.Status, hdr(res, "cache-status"))
	}
	expectCacheStatus(t, res, "detail=leader-failed", "fwd-status=503")
}

// A leader's wake-up is posted to the worker's queue and delivered in a
// later callback. A request of the same key that arrives on that worker
// in between follows the key's next leader; the queue callback then wakes
// it with the previous leader's failure too (it matches paused streams by
// key only). With max_retries 0 it is answered that leader's 503 while its
// own leader is still upstream and about to succeed.
func TestALateFollowerIsNotFailedByAnEarlierLeader(t *testing.T) {
	hs, b := leaderFailedWakeQueued(t, "late follower")      // A failed; its wake-up waits in worker 1's queue
	c := hs.h.StartExchange(0, chatRequest("late follower")) // leads next
	hs.h.DrainVM(0)
	d := hs.h.StartExchange(1, chatRequest("late follower")) // follows C, before worker 1's queue callback
	hs.h.DrainVM(1)                                          // the queue callback: A's wake-up
	if !b.Done() || b.Response().Status != 503 {
		t.Fatalf("B (A's follower): %s", b.State())
	}
	if d.Done() {
		t.Fatalf("D, which followed C, was answered by A's failure: %d %q", d.Response().Status, hdr(d.Response(), "cache-status"))
	}
	second := hs.h.PendingUpstream()
	if len(second) != 1 {
		t.Fatalf("%d upstream requests, want C's", len(second))
	}
	hs.answer(second[0])
	hs.h.Drain()
	if !c.Done() || c.Response().Status != 200 || !d.Done() || d.Response().Status != 200 {
		t.Fatalf("C: %s; D: %s", c.State(), d.State())
	}
}

// Clients that send Cache-Control: max-age=0 (a browser's reload, many
// SDKs) coalesce on a miss like any other. When the leader stores, their
// look again refuses its answer as too old (its age is the milliseconds
// since the store), which Wake counts as a leader failure: past
// max_retries they get 502 leader_failed though the model answered 200.
func TestMaxAgeZeroFollowersGetNoLeaderFailed(t *testing.T) {
	cfg := strings.Replace(coalesceConfig, `"max_retries": 2`, `"max_retries": 0`, 1)
	hs := newHarness(t, cfg, withManualDrain())
	hs.holdUpstream()
	leader := hs.h.StartExchange(0, chatRequest("reload"))
	hs.h.DrainVM(0)
	var followers []*wasmhost.Exchange
	for i := 0; i < 3; i++ {
		r := chatRequest("reload")
		r.Headers = append(r.Headers, [2]string{"cache-control", "max-age=0"})
		followers = append(followers, hs.h.StartExchange(1, r))
		hs.h.DrainVM(1)
	}
	pending := hs.h.PendingUpstream()
	if len(pending) != 1 {
		t.Fatalf("%d upstream requests", len(pending))
	}
	hs.answer(pending[0])
	hs.h.DrainVM(0)                    // the leader stores; its wake-up waits in worker 1's queue
	hs.clock.Advance(time.Millisecond) // and reaches it a moment later
	hs.h.Drain()
	if !leader.Done() || leader.Response().Status != 200 {
		t.Fatalf("leader: %s", leader.State())
	}
	for i, ex := range followers {
		if ex.Done() && ex.Response().Status != 200 {
			t.Errorf("follower %d: %d %q (model calls: %d, answered 200)", i, ex.Response().Status,
				hdr(ex.Response(), "cache-status"), hs.sim.Calls("/v1/chat/completions"))
		}
	}
}
