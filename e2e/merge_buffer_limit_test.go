package e2e

import (
	"strings"
	"testing"

	"github.com/modelcache/modelcache/e2e/modelsim"
)

// Review Z143's suspicion, in real Envoy: a partly cached batch of wide
// vectors whose missing items' answer is within max_entry_bytes (the
// default 128 KiB) but whose merge with many cached items is larger than
// Envoy's 1 MiB buffer limit. Written into the held answer's buffer, the
// merge was Envoy's 500; the client must get the whole batch (200), every
// vector as the model gives it.
func TestMergedBatchOverTheBufferLimitIsSent(t *testing.T) {
	// 4,096 buckets: in wideEmbRoutes' 64 of 4 ways, five of the 61 items
	// fell into one bucket in about one run of five (the hash is keyed
	// with the process's secret), one was evicted, and the batch of 4
	// missing items went up whole (mergeTooLarge): a flaky setup, not
	// the merge this test is about.
	e := startEnvoy(t, envoyOpts{Config: strings.Replace(wideEmbRoutes(131072), `"buckets": 64`, `"buckets": 4096`, 1)})
	url := e.URL + "/v1/embeddings"
	const dims = `,"dimensions":3072`
	all, _ := passages(64, "passage %d: the slow grey wolf")
	for i := 0; i < 61; i += 3 { // each answer (≈ 110 KB) within max_entry_bytes
		if r := do(t, "POST", url, embBody(all[i:min(i+3, 61)], dims), "authorization", "Bearer a"); r.Status != 200 || !strings.Contains(r.CacheStatus(), "stored") {
			t.Fatalf("setup: caching items %d..: status %d %q %.200s", i, r.Status, r.CacheStatus(), r.Body)
		}
	}
	body := embBody(all, dims)
	ref, err := modelsim.ExpectedBody(modelsim.DefaultModelVersion, "/v1/embeddings", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	r := do(t, "POST", url, body, "authorization", "Bearer a")
	t.Logf("whole answer %d bytes; got status %d, %d bytes, cache-status %q, cached items %q",
		len(ref), r.Status, len(r.Body), r.CacheStatus(), r.Header.Get("x-modelcache-cached-items"))
	if r.Status != 200 {
		t.Fatalf("status %d %q %.200s: want the batch's 200", r.Status, r.CacheStatus(), r.Body)
	}
	if got, want := embVectors(t, r.Body), embVectors(t, ref); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("%d vectors, not the model's %d", len(got), len(want))
	}
	if !strings.Contains(r.CacheStatus(), "fwd=partial") || r.Header.Get("x-modelcache-cached-items") != "61/64" {
		t.Fatalf("cache-status %q, cached items %q: want a partial hit of 61/64", r.CacheStatus(), r.Header.Get("x-modelcache-cached-items"))
	}
}
