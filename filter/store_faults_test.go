//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Fail-open on faults (RATIONALE "Faults fail open": a host call error is
// "logged and counted"; README: hit-for-miss is for an answer that "may
// never be stored (no-store, too large, 4xx, low confidence…)"). When one
// read of an event stream's chunk (proxy_get_buffer_bytes of the response
// body) fails, the recording is dropped as if the stream were over
// max_entry_bytes (Held.RecordingFailed → CompleteStream →
// ReasonTooLarge): the fault is counted as a too_large refusal, not as an
// internal error, and — too_large being a lasting reason — the key is
// marked hit-for-miss for 30 s, so the next stampede for this perfectly
// cacheable key is not coalesced: every request reaches the model.
func TestStreamChunkReadFaultIsAFaultNotTooLarge(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, coalesceConfig, withWorkers(2), withFaults(f))
	f.set(nthCall(2, wasmhost.StatusInternalFailure, func(c wasmhost.HostCall) bool {
		return c.VM == 0 && isResponseBodyRead(c)
	}))
	res := hs.post(0, "/v1/chat/completions", streamBody("a faulty read"))
	f.set(nil)
	if f.failed() != 1 {
		t.Fatalf("fault not injected (%d)", f.failed())
	}
	if res.Status != 200 || !strings.Contains(string(res.Body), "data: [DONE]") {
		t.Fatalf("fail-open broken: status %d body %.200s", res.Status, res.Body)
	}
	tooLarge := hs.counter("modelcache_route.chat.refused.too_large")
	internal := hs.counter("modelcache.internal_errors")
	if tooLarge != 0 || internal == 0 {
		t.Errorf("a failed host read was counted refused.too_large=%d, internal_errors=%d (want 0 and ≥1); Cache-Status %q",
			tooLarge, internal, hdr(res, "cache-status"))
	}
	// The key is cacheable: the next stampede for it is single-flight.
	hs.holdUpstream()
	exs := make([]*wasmhost.Exchange, 0, 4)
	for i := 0; i < 4; i++ {
		req := chatRequest("")
		req.Body = []byte(streamBody("a faulty read"))
		exs = append(exs, hs.h.StartExchange(i%2, req))
	}
	hs.h.Drain()
	if n := len(hs.h.PendingUpstream()); n != 1 {
		t.Errorf("%d upstream requests for one key after a transient read fault, want 1 (hit_for_miss=%d)",
			n, hs.counter("modelcache_route.chat.coalesce.hit_for_miss"))
	}
	for _, u := range hs.h.PendingUpstream() {
		hs.answer(u)
	}
	hs.h.Drain()
	_ = exs
}

// Fail-open (RATIONALE "Faults fail open": "A cache must never be the
// reason a model API is down"). While the shared-data write of an entry
// fails (proxy_set_shared_data of mc:e:*: Envoy out of memory, a host
// size limit), every leader's healthy 200 is refused with
// ReasonInternal, which OutcomeOf maps to OutcomeFailed: each is counted
// a *leader failure*, the followers retry, and once max_retries (2) such
// "failures" have passed the last follower is answered 502
// leader-failed — a local error the model never produced. An internal
// fault must make followers go upstream (or serve the answer), never
// fail them.
func TestEntryWriteFaultNeverFailsFollowers(t *testing.T) {
	f := &faultPlan{}
	hs := newHarness(t, coalesceConfig, withWorkers(2), withFaults(f))
	hs.holdUpstream()
	exs := startMany(hs, 4, "entry writes fail")
	f.set(func(c wasmhost.HostCall) (wasmhost.Status, bool) {
		return wasmhost.StatusInternalFailure, c.Name == "proxy_set_shared_data" && strings.HasPrefix(c.Key, "mc:e:")
	})
	for round := 0; round < 8; round++ {
		pending := hs.h.PendingUpstream()
		if len(pending) == 0 {
			break
		}
		for _, u := range pending {
			hs.answer(u)
		}
		hs.h.Drain()
	}
	f.set(nil)
	if f.failed() == 0 {
		t.Fatal("no entry write was attempted")
	}
	for i, ex := range exs {
		if !ex.Done() {
			t.Errorf("request %d not answered: %s", i, ex.State())
			continue
		}
		if res := ex.Response(); res.Status != 200 {
			t.Errorf("request %d: %d %q — the model answered 200 to every request (%d upstream); only the cache's write failed",
				i, res.Status, hdr(res, "cache-status"), hs.upstream.Load())
		}
	}
}
