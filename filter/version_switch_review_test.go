//go:build !wasip1

package main

import (
	"testing"

	"github.com/modelcache/modelcache/e2e/modelsim"
)

// Review Z173: model version switches, end to end.

// A stream whose headers report a new model version (200, a status the
// route caches) and that the upstream then cuts (reset mid-stream) is not
// stored (refused.truncated) — and its version is never noted. README
// (model_version): "an answer the cache does not store, of a status the
// route caches, switches the version too; one that outgrows
// max_entry_bytes after its headers, a long stream say, by the version in
// its header". A cut stream is the same case as a stream that outgrew
// max_entry_bytes (its header version is kept in Flight.respVersion, which
// only tooLarge reads): the client was served v2's tokens, yet v1's entries
// are served on and model_version_changes does not count the switch.
// Expected: after the cut v2 stream, the v1 entry is not served (a miss)
// and model_version_changes is 1.
func TestZ173CutStreamOfANewVersionRetiresThePredecessor(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"60s","model_version":{"header":"x-model-version"}}]}`
	hs := newHarness(t, cfg)
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", chatBody("first")), "stored")
	expectCacheStatus(t, hs.post(1, "/v1/chat/completions", chatBody("first")), "hit")

	if err := hs.sim.UpdateKnobs(func(k *modelsim.Knobs) {
		k.ModelVersion, k.Fault, k.FailNext = "v2", modelsim.FaultTruncate, 1
	}); err != nil {
		t.Fatal(err)
	}
	res := hs.post(0, "/v1/chat/completions", streamBody("second"))
	if hdr(res, "x-model-version") != "v2" {
		t.Fatalf("setup: the cut stream reports %q (status %d, Cache-Status %q)", hdr(res, "x-model-version"), res.Status, hdr(res, "cache-status"))
	}
	t.Logf("cut stream: status %d, Cache-Status %q, truncated refusals %d", res.Status, hdr(res, "cache-status"), hs.counter("modelcache_route.chat.refused.truncated"))

	if got := hs.counter("modelcache.model_version_changes"); got != 1 {
		t.Errorf("the upstream switched to v2 in a cut stream: model_version_changes = %d, want 1", got)
	}
	up := hs.upstream.Load()
	res = hs.post(1, "/v1/chat/completions", chatBody("first"))
	if hs.upstream.Load() == up {
		t.Errorf("v1's entry still served after the upstream streamed v2: Cache-Status %q, x-model-version %q (want a miss)", hdr(res, "cache-status"), hdr(res, "x-model-version"))
	}
}
