//go:build !wasip1

package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/internal/wasmbuild"
	"github.com/modelcache/modelcache/wasmhost"
)

// A leader whose callback panicked is broken: the binding fails it open
// and the plugin hears no more of it — neither its end (so it never
// releases its lease) nor its deletion. Its lease must then end as a gone
// leader's does, coalesce.max_wait after it was last kept. It did not:
// the stream stayed on the VM's leading list for good and every tick kept
// its lease, so the key stayed led by a request that had long ended, and
// every later request for it followed, waited max_wait for nothing and
// went upstream, for as long as the VM lived.
func TestBrokenLeaderKeepsNoLease(t *testing.T) {
	hs := crashHarness(t)
	hs.holdUpstream()
	req := chatRequest("a leader that panics")
	broken := req
	broken.Headers = append(append([][2]string(nil), req.Headers...), [2]string{"x-modelcache-crash", "panic-on-response"})
	leader, u := hs.lead(broken)
	hs.answer(u) // its response headers callback panics: the stream fails open
	hs.h.Drain()
	if !leader.Done() || leader.Response().Status != 200 || hs.counter("modelcache.panics") != 1 {
		t.Fatalf("broken leader: done %v, panics %d", leader.Done(), hs.counter("modelcache.panics"))
	}
	for i := 0; i < 40; i++ { // 10 s past the lease's max_wait
		hs.h.AdvanceAndTick(time.Second)
	}
	next := hs.h.StartExchange(1, req)
	hs.h.Drain()
	if n, f := hs.upstream.Load(), hs.counter("modelcache_route.chat.coalesce.followers"); n != 2 || f != 0 {
		t.Fatalf("a request 40 s after a broken leader's answer ended: %d upstream calls (want 2: it leads at once), %d followers",
			n, f)
	}
	hs.answer(hs.h.PendingUpstream()[0])
	hs.h.Drain()
	if r := next.Response(); !next.Done() || r.Status != 200 {
		t.Fatalf("next request: done %v", next.Done())
	}
}

// crashHarness is a harness on the crash-test module (crashtest.go), one
// chat route that coalesces for up to 30 s.
func crashHarness(t *testing.T, opts ...harnessOpt) *harness {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"60s","coalesce":{"max_wait":"30s"}}]}`
	return crashHarnessWith(t, cfg, opts...)
}

// crashHarnessWith is crashHarness with the given configuration.
func crashHarnessWith(t *testing.T, cfg string, opts ...harnessOpt) *harness {
	ctx := context.Background()
	wasm, err := os.ReadFile(wasmbuild.FilterWithTags(t, "modelcache_crashtest"))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := wasmhost.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mod.Close(ctx) })
	return newHarness(t, cfg, append(opts, withModule(mod))...)
}

// A request whose count waits for its end (it went upstream with a stale
// entry that stale_if_error may serve instead) is counted even when a
// panic breaks its stream, which then never ends for the plugin: the same
// panic on a plain miss is counted, as it goes upstream.
func TestBrokenRequestWhoseCountWaitedIsCounted(t *testing.T) {
	hs := crashHarnessWith(t, swrConfig)
	crash := []string{"x-modelcache-crash", "panic-on-response"}
	hs.post(0, "/v1/chat/completions", chatBody("no entry"), crash...)
	if _, n := requestCounters(hs, "chat"); n != 1 || hs.counter("modelcache.panics") != 1 {
		t.Fatalf("setup: a broken miss counted %d times, panics %d", n, hs.counter("modelcache.panics"))
	}
	body := chatBody("stale-if-error, broken")
	hs.post(0, "/v1/chat/completions", body) // a miss, stored
	hs.clock.Advance(2 * time.Minute)        // past ttl and swr, within stale_if_error
	if res := hs.post(1, "/v1/chat/completions", body, crash...); res.Status != 200 || hs.counter("modelcache.panics") != 2 {
		t.Fatalf("setup: status %d, panics %d", res.Status, hs.counter("modelcache.panics"))
	}
	if got, n := requestCounters(hs, "chat"); n != 3 || got["miss"] != 3 {
		t.Fatalf("3 requests went upstream (2 broken by a panic), counted %d times: %s", n, fmtCounters(got))
	}
}

// A follower whose end panicked (its client left while it waited, and
// OnHttpStreamDone failed) is broken like the leader above: the plugin
// hears no more of it, not its deletion either. It stayed on the VM's
// waiting list for good: coalesce_waiting counted it for as long as the
// VM lived, every tick went over it, and the VM ticked at tick_period
// forever rather than at the idle period.
func TestBrokenFollowerIsNotLeftWaiting(t *testing.T) {
	hs := crashHarness(t, withWorkers(1)) // one VM sets the gauge
	hs.holdUpstream()
	req := chatRequest("a follower that panics at its end")
	leader := hs.h.StartExchange(0, req)
	hs.h.Drain()
	broken := req
	broken.Headers = append(append([][2]string(nil), req.Headers...), [2]string{"x-modelcache-crash", "panic-on-done"})
	follower := hs.h.StartExchange(0, broken)
	hs.h.Drain()
	hs.h.AdvanceAndTick(time.Second)
	if g, _ := hs.h.Gauge("modelcache.coalesce_waiting"); g != 1 || follower.Done() {
		t.Fatalf("the follower does not wait: coalesce_waiting %d, done %v", g, follower.Done())
	}
	follower.Abort() // its end panics
	hs.h.Drain()
	if hs.counter("modelcache.panics") != 1 {
		t.Fatalf("panics: %d", hs.counter("modelcache.panics"))
	}
	hs.answer(hs.onlyUpstream())
	hs.h.Drain()
	if r := leader.Response(); !leader.Done() || r.Status != 200 {
		t.Fatalf("leader: done %v", leader.Done())
	}
	for i := 0; i < 3; i++ {
		hs.h.AdvanceAndTick(time.Second)
	}
	if g, _ := hs.h.Gauge("modelcache.coalesce_waiting"); g != 0 {
		t.Fatalf("coalesce_waiting %d after the broken follower ended and its leader answered", g)
	}
	if p := hs.h.TickPeriod(0); p != time.Second {
		t.Fatalf("the VM ticks every %v with nothing waiting in it", p)
	}
}

// A panic in a root callback (a tick, a wake-up, a call's result) that was
// resuming a request breaks that request as a panic in its own callback
// does: the binding fails it open. It did not: the binding knew only which
// root had panicked, so the request stayed as the panic left it, paused.
// A follower there waited for a leader it was no longer listed with (or
// for max_wait, 30 s here), its client hanging meanwhile. Broken, it goes
// upstream uncached at once.
func TestRequestBrokenInARootCallbackGoesOnUpstream(t *testing.T) {
	hs := crashHarness(t, withWorkers(1))
	hs.holdUpstream()
	req := chatRequest("a follower whose wake-up panics")
	leader, _ := hs.lead(req)
	broken := req
	broken.Headers = append(append([][2]string(nil), req.Headers...), [2]string{"x-modelcache-crash", "panic-in-tick"})
	follower := hs.h.StartExchange(0, broken)
	hs.h.Drain()
	if n, f := len(hs.h.PendingUpstream()), hs.counter("modelcache_route.chat.coalesce.followers"); n != 1 || f != 1 || follower.Done() {
		t.Fatalf("setup: the follower does not wait: %d upstream requests, %d followers, done %v", n, f, follower.Done())
	}
	hs.h.AdvanceAndTick(time.Second) // the tick panics, the follower's context effective
	hs.h.Drain()
	if p := hs.counter("modelcache.panics"); p != 1 {
		t.Fatalf("panics: %d", p)
	}
	up := hs.h.PendingUpstream()
	if len(up) != 2 {
		t.Fatalf("after a panic in a tick resuming it, the follower is not sent upstream: %d upstream requests pending (want 2), follower done %v",
			len(up), follower.Done())
	}
	hs.h.AdvanceAndTick(time.Second) // a tick sets the gauge
	if g, _ := hs.h.Gauge("modelcache.coalesce_waiting"); g != 0 {
		t.Fatalf("coalesce_waiting %d after the follower was broken", g)
	}
	for _, u := range up {
		hs.answer(u)
	}
	hs.h.Drain()
	if !leader.Done() || leader.Response().Status != 200 || !follower.Done() || follower.Response().Status != 200 {
		t.Fatalf("leader done %v, follower done %v", leader.Done(), follower.Done())
	}
	if cs := hdr(follower.Response(), "cache-status"); cs != "" {
		t.Fatalf("the broken follower's answer says Cache-Status %q: the plugin hears no more of a broken stream", cs)
	}
}

// A partly cached embeddings batch whose partial answer was refused is
// asked for again whole, its answer held meanwhile. A panic as that call's
// result arrives (review R5, stop 71) left the held answer paused for good:
// the protocol reported no side paused (the stream is the protocol's to
// finish). The binding now resumes it with the batch's broken reply, a 502
// asking for a retry, never the refused partial answer.
func TestRefetchBrokenInItsCallResultAnswersARetry(t *testing.T) {
	hs := crashHarnessWith(t, embConfig, withHTTPCalls())
	ex, calls := refetchPendingIn(hs, [2]string{"x-modelcache-crash", "panic-in-call"})
	if ex.Done() {
		t.Fatal("setup: the batch is answered before its refetch")
	}
	status, h, b := hs.simulate(calls[0].Headers, calls[0].Body)
	calls[0].Respond(status, h, b) // its result panics
	hs.h.Drain()
	if p := hs.counter("modelcache.panics"); p != 1 {
		t.Fatalf("panics: %d", p)
	}
	if !ex.Done() {
		t.Fatalf("a batch whose refetch's result panicked is left paused: %s", ex.State())
	}
	if res := ex.Response(); res.Status != 502 {
		t.Fatalf("client got %d (%s), want the batch's 502 asking for a retry", res.Status, res.Body)
	}
}

// A request decided late (its headers went upstream at once) whose body
// waits for a call of its own, its turn's embedding, was left with its
// body paused when that call's result panicked: the protocol reported no
// side paused, so the binding resumed nothing and the request waited for
// Envoy's timeout (left alone at stop 71). It now goes on upstream.
func TestLateRequestBrokenInItsCallResultGoesOnUpstream(t *testing.T) {
	cfg := strings.Replace(semanticConfig, `"upstream_cluster": "model",`, `"upstream_cluster": "model", "header_hold": "late",`, 1)
	hs := crashHarnessWith(t, cfg, withWorkers(1), withHTTPCalls(), withEmbeddingsCluster(),
		func(_ *harness, c *wasmhost.Config) { c.AllowOnHeadersStopIteration = false })
	hs.holdCalls = true
	req := chatRequest("What is the capital of France?")
	req.Headers = append(req.Headers, [2]string{"x-modelcache-crash", "panic-in-call"})
	ex := hs.h.StartExchange(0, req)
	hs.h.Drain()
	calls := hs.h.PendingHTTPCalls()
	if len(calls) != 1 || ex.Done() || !ex.UpstreamContacted() {
		t.Fatalf("setup: %d calls pending, done %v, headers upstream %v", len(calls), ex.Done(), ex.UpstreamContacted())
	}
	hs.answerCall(calls[0]) // its result panics
	hs.h.Drain()
	if p := hs.counter("modelcache.panics"); p != 1 {
		t.Fatalf("panics: %d", p)
	}
	if !ex.Done() || ex.Response().Status != 200 {
		t.Fatalf("a late request whose call's result panicked is left paused: %s", ex.State())
	}
}
