//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/e2e/modelsim"
	"github.com/modelcache/modelcache/wasmhost"
)

// A partly cached batch whose missing items' answer is refused (here
// no-store, of the version the cached item was stored under) is replaced
// by the whole batch asked for again. That whole answer is an answer of a
// status the route caches; when it reports a new version (a rollout: the
// refetch reached a v2 replica) the cache neither stores it nor notes its
// version (protocol_refetch.go, Refetch's Done: passed on, nothing else).
// README: "an answer the cache does not store, of a status the route
// caches, switches the version too". The v1 vector of the cached item is
// still served to the next client, after the client of the refetch was
// given v2's vectors for the same items.
func TestZ279RefetchedWholeBatchOfANewVersionRetiresThePredecessor(t *testing.T) {
	hs := newHarness(t, embConfig, withHTTPCalls())
	if r := hs.post(0, "/v1/embeddings", embReq([]string{"cached"}, "")); r.Status != 200 {
		t.Fatalf("setup: %d", r.Status)
	}
	hs.fault = func(u *wasmhost.UpstreamRequest) bool { // the missing items' answer: v1, no-store; then the replicas run v2
		st, h, b := hs.simulate(u.Headers, u.Body)
		if err := hs.sim.UpdateKnobs(func(k *modelsim.Knobs) { k.ModelVersion = "v2" }); err != nil {
			t.Error(err)
		}
		u.Respond(st, append(h, [2]string{"cache-control", "no-store"}), b)
		return true
	}
	res := hs.post(1, "/v1/embeddings", embReq([]string{"cached", "new"}, ""))
	hs.fault = nil
	if res.Status != 200 || hdr(res, "x-model-version") != "v2" {
		t.Fatalf("setup: the refetched batch: %d, version %q, Cache-Status %q", res.Status, hdr(res, "x-model-version"), hdr(res, "cache-status"))
	}
	t.Logf("refetched: %q", hdr(res, "cache-status"))
	for w := 0; w < 2; w++ {
		r := hs.post(w, "/v1/embeddings", embReq([]string{"cached"}, ""))
		// (A hit of v2's vector is the new version's: the first of these
		// requests stores it.)
		if strings.Contains(hdr(r, "cache-status"), "hit") && hdr(r, "x-model-version") != "v2" {
			t.Errorf("worker %d: the upstream answered the whole batch as v2, and the item's v1 vector is still served: %q, x-model-version %q, model_version_changes %d",
				w, hdr(r, "cache-status"), hdr(r, "x-model-version"), hs.counter("modelcache.model_version_changes"))
		}
	}
}

// The same cut stream as TestZ173CutStreamOfANewVersionRetiresThePredecessor,
// on a route that reads the version at a body_path (OpenAI's
// system_fingerprint, in every chunk): the recording of the cut stream is
// in hand (Stream.cut), but only a header version is noted
// (headerVersionNote), so the new fingerprint the client was streamed
// retires nothing. README's one exception is an answer that outgrows
// max_entry_bytes; this one did not.
func TestZ279CutStreamOnBodyPathRouteSwitchesVersion(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"60s","model_version":{"body_path":"system_fingerprint"}}]}`
	hs := newHarness(t, cfg)
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", chatBody("first")), "stored")
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", chatBody("first")), "hit")
	if err := hs.sim.UpdateKnobs(func(k *modelsim.Knobs) {
		k.ModelVersion, k.Fault, k.FailNext = "v2", modelsim.FaultTruncate, 1
	}); err != nil {
		t.Fatal(err)
	}
	res := hs.post(0, "/v1/chat/completions", streamBody("second"))
	if !strings.Contains(string(res.Body), "system_fingerprint") {
		t.Fatalf("setup: the cut stream names no fingerprint: %q", res.Body)
	}
	t.Logf("cut stream: status %d, Cache-Status %q, truncated refusals %d", res.Status, hdr(res, "cache-status"), hs.counter("modelcache_route.chat.refused.truncated"))
	if got := hs.counter("modelcache.model_version_changes"); got != 1 {
		t.Errorf("the upstream streamed v2's fingerprint in a cut stream: model_version_changes = %d, want 1", got)
	}
	up := hs.upstream.Load()
	res = hs.post(1, "/v1/chat/completions", chatBody("first"))
	if hs.upstream.Load() == up {
		t.Errorf("v1's entry still served after the upstream streamed v2's fingerprint: Cache-Status %q", hdr(res, "cache-status"))
	}
}

// A background refresh's answer is whole in hand when it is admitted
// (Refresh's Done → AdmitAndStore). Refused at its headers (no-store),
// AdmitAndStore notes its version with a nil body (admitstore.go), so on
// a body_path route the new system_fingerprint it reports switches
// nothing: every hit goes on serving v1's entry (stale, within
// stale_while_revalidate) and starting a refresh that reports v2 again.
func TestZ279RefreshRefusedAtHeadersOnBodyPathRouteSwitchesVersion(t *testing.T) {
	cfg := `{"upstream_cluster":"model","background":{"timeout":"5s"},"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"60s","stale_while_revalidate":"5m","model_version":{"body_path":"system_fingerprint"}}]}`
	hs := newHarness(t, cfg, withHTTPCalls())
	body := chatBody("refreshed")
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "stored")
	if err := hs.sim.UpdateKnobs(func(k *modelsim.Knobs) { k.ModelVersion, k.CacheControl = "v2", "no-store" }); err != nil {
		t.Fatal(err)
	}
	hs.clock.Advance(70 * time.Second) // stale, within stale_while_revalidate
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", body), "fwd=stale")
	hs.h.Drain()
	if n := hs.counter("modelcache_route.chat.background.started"); n != 1 {
		t.Fatalf("setup: %d refreshes started", n)
	}
	t.Logf("refresh refused: %d", hs.counter("modelcache_route.chat.background.refused"))
	if got := hs.counter("modelcache.model_version_changes"); got != 1 {
		t.Errorf("the refresh's answer reported v2's fingerprint (no-store); model_version_changes = %d, want 1", got)
	}
	for w := 0; w < 2; w++ {
		if res := hs.post(w, "/v1/chat/completions", body); strings.Contains(hdr(res, "cache-status"), "fwd=stale") || strings.Contains(hdr(res, "cache-status"), "hit") {
			t.Errorf("worker %d: v1's entry still served after the refresh reported v2: Cache-Status %q", w, hdr(res, "cache-status"))
		}
	}
}
