package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/e2e/modelsim"
)

// Review Z100 (81b6c37 in real Envoy). A partly cached batch of wide
// vectors on a route whose max_entry_bytes is raised for them (README:
// "a route for large batches of wide vectors needs it raised"): the
// missing items' answer is refused at its headers (no-store), is larger
// than Envoy's 1 MiB buffer limit, and is to be replaced whole by the
// batch asked for again, itself larger than 1 MiB. The client must get
// the whole batch as the model gives it (200), not a 500, a reset or a
// hang.
func wideEmbRoutes(maxEntry int) string {
	return fmt.Sprintf(`{
  "upstream_cluster": "model",
  "store": {"buckets": 64, "ways": 4, "max_entry_bytes": %d},
  "routes": [
    {"name": "emb", "kind": "embeddings", "path_prefix": "/v1/embeddings", "ttl": "1h",
     "max_entry_bytes": %d, "model_version": {"header": "x-model-version"}}
  ]
}`, maxEntry, maxEntry)
}

func TestRefetchedWholeBatchOverTheBufferLimitIsSent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n        int
		dims     string
		maxEntry int
		fault    string
	}{
		// Within README's rule (max_entry_bytes below Envoy's 1 MiB
		// limit): the missing items' answer (≈ 930 KB) fits, the whole
		// batch asked for again (≈ 1.9 MB) does not fit the held
		// response's buffer, and is sent as a local reply. (A route whose
		// max_entry_bytes is above the limit holds a refused answer up to
		// it: README's rule, not tested here.)
		{"whole batch over 1 MiB, max_entry_bytes below it", 48, `,"dimensions":3072`, 1000000, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEnvoy(t, envoyOpts{Config: wideEmbRoutes(tc.maxEntry)})
			url := e.URL + "/v1/embeddings"
			all, half := passages(tc.n, "passage %d: the slow grey wolf")
			for i := 0; i < len(half); i += 4 { // each answer well within 1 MiB
				if r := do(t, "POST", url, embBody(half[i:min(i+4, len(half))], tc.dims), "authorization", "Bearer a"); r.Status != 200 || !strings.Contains(r.CacheStatus(), "stored") {
					t.Fatalf("setup: caching half: status %d %q %.200s", r.Status, r.CacheStatus(), r.Body)
				}
			}
			before := len(e.Sim.EmbeddingCalls())
			body := embBody(all, tc.dims)
			ref, err := modelsim.ExpectedBody(modelsim.DefaultModelVersion, "/v1/embeddings", []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			missingBody := embBody(all[1:2], tc.dims)
			one, _ := modelsim.ExpectedBody(modelsim.DefaultModelVersion, "/v1/embeddings", []byte(missingBody))
			t.Logf("whole answer %d bytes, one item's answer ≈ %d bytes (missing %d items ≈ %d bytes)", len(ref), len(one), tc.n/2, len(one)*tc.n/2)
			// Without the cache's partial hit (another tenant, nothing
			// cached): the model's whole answer passes, 200.
			if u := do(t, "POST", url, body, "authorization", "Bearer uncached", modelsim.HeaderCacheControl, "no-store"); u.Status != 200 || len(embVectors(t, u.Body)) != tc.n {
				t.Fatalf("setup: the whole batch uncached: status %d %q %.200s", u.Status, u.CacheStatus(), u.Body)
			}
			before = len(e.Sim.EmbeddingCalls())
			start := time.Now()
			hs := []string{"authorization", "Bearer a", modelsim.HeaderCacheControl, "no-store"}
			if tc.fault != "" {
				hs = append(hs, modelsim.HeaderFault, tc.fault)
			}
			r, err := tryDo(t.Context(), "POST", url, body, hs...)
			if err != nil {
				t.Fatalf("after %v: %v (calls %v)", time.Since(start), err, callLens(e.Sim.EmbeddingCalls()[before:]))
			}
			calls := callLens(e.Sim.EmbeddingCalls()[before:])
			if r.Status != 200 {
				t.Fatalf("status %d after %v, cache-status %q, upstream calls of %v items, body %.200s (http.models.rs_too_large %d): want the whole batch's 200",
					r.Status, time.Since(start), r.CacheStatus(), calls, r.Body, e.Stat("http.models.rs_too_large"))
			}
			if got, want := embVectors(t, r.Body), embVectors(t, ref); len(got) != tc.n || strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("%d vectors (want the %d of the uncached reference), %d bytes", len(got), tc.n, len(r.Body))
			}
			if len(calls) != 2 || calls[0] != tc.n/2 || calls[1] != tc.n {
				t.Fatalf("upstream calls %v: want the missing items, then the whole batch", calls)
			}
			expectCS(t, r, "detail=no-store")
		})
	}
}

func callLens(calls [][]string) []int {
	var out []int
	for _, c := range calls {
		out = append(out, len(c))
	}
	return out
}

// The first answer alone over 1 MiB, the refetch's small: the model's
// answer to the whole batch is an error (503), which the client gets as
// the model gave it. This isolates 81b6c37's drop of the refused answer as
// it comes (the replacement is small).
func TestRefusedAnswerOverTheBufferLimitIsDroppedAsItComes(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: wideEmbRoutes(8388608)})
	url := e.URL + "/v1/embeddings"
	dims := `,"dimensions":8192`
	all, half := passages(48, "passage %d: the slow grey wolf")
	for i := 0; i < len(half); i += 4 {
		if r := do(t, "POST", url, embBody(half[i:min(i+4, len(half))], dims), "authorization", "Bearer a"); r.Status != 200 {
			t.Fatalf("setup: status %d", r.Status)
		}
	}
	before := len(e.Sim.EmbeddingCalls())
	if err := e.Sim.UpdateKnobs(func(k *modelsim.Knobs) { k.LatencyMS = 400; k.CacheControl = "no-store" }); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(150 * time.Millisecond) // the first call took its knobs
		_ = e.Sim.UpdateKnobs(func(k *modelsim.Knobs) { *k = modelsim.Knobs{Status: 503, FailNext: 1} })
	}()
	r, err := tryDo(t.Context(), "POST", url, embBody(all, dims), "authorization", "Bearer a")
	if err != nil {
		t.Fatal(err)
	}
	calls := callLens(e.Sim.EmbeddingCalls()[before:])
	t.Logf("status %d, cache-status %q, calls %v, body %.150s", r.Status, r.CacheStatus(), calls, r.Body)
	if len(calls) != 2 || calls[0] != 24 {
		t.Fatalf("setup: upstream calls %v", calls)
	}
	if r.Status != 503 || r.CacheStatus() == "" {
		t.Fatalf("status %d, cache-status %q (rs_too_large %d): want the model's 503 for the whole batch, with the cache's Cache-Status",
			r.Status, r.CacheStatus(), e.Stat("http.models.rs_too_large"))
	}
}
