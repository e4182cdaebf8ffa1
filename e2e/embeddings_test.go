package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/e2e/modelsim"
	"github.com/tidwall/gjson"
)

// Acceptance of "Embedding cache" on real Envoy --concurrency 2.

const embRoutes = `{
  "upstream_cluster": "model",
  "routes": [
    {"name": "emb", "kind": "embeddings", "path_prefix": "/v1/embeddings", "ttl": "1h",
     "model_version": {"header": "x-model-version"}}
  ]
}`

func embBody(items []string, extra string) string {
	in, _ := json.Marshal(items)
	return `{"model":"sim-embed","input":` + string(in) + extra + `}`
}

func embVectors(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	for i, d := range gjson.GetBytes(body, "data").Array() {
		if d.Get("index").Int() != int64(i) {
			t.Fatalf("data[%d] has index %d", i, d.Get("index").Int())
		}
		out = append(out, d.Get("embedding").Raw)
	}
	return out
}

// passages are n items made by format (all), and those at even places
// (half): a batch and the half of it a test caches first.
func passages(n int, format string) (all, half []string) {
	for i := 0; i < n; i++ {
		c := fmt.Sprintf(format, i)
		all = append(all, c)
		if i%2 == 0 {
			half = append(half, c)
		}
	}
	return all, half
}

func TestEmbeddingBatchOfSixtyFourHalfCached(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: embRoutes})
	url := e.URL + "/v1/embeddings"
	all, half := passages(64, "passage %d: the quick brown fox")
	do(t, "POST", url, embBody(half, ""), "authorization", "Bearer a")
	before := len(e.Sim.EmbeddingCalls())
	body := embBody(all, "")
	r := do(t, "POST", url, body, "authorization", "Bearer a")
	calls := e.Sim.EmbeddingCalls()[before:]
	if len(calls) != 1 || len(calls[0]) != 32 {
		t.Fatalf("upstream calls %d, items %v", len(calls), calls)
	}
	for j, item := range calls[0] {
		if item != all[2*j+1] {
			t.Fatalf("upstream item %d = %q", j, item)
		}
	}
	ref, err := modelsim.ExpectedBody(modelsim.DefaultModelVersion, "/v1/embeddings", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := embVectors(t, r.Body), embVectors(t, ref); len(got) != 64 || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %d vectors; not identical to the uncached reference", len(got))
	}
	if r.Header.Get("X-Modelcache-Cached-Items") != "32/64" {
		t.Fatalf("cached items %q", r.Header.Get("X-Modelcache-Cached-Items"))
	}
	// Fully cached: no upstream call at all.
	full := do(t, "POST", url, body, "authorization", "Bearer a")
	expectCS(t, full, "hit")
	if len(e.Sim.EmbeddingCalls()) != before+1 {
		t.Fatal("a fully cached batch reached the model")
	}
	if strings.Join(embVectors(t, full.Body), "|") != strings.Join(embVectors(t, ref), "|") {
		t.Fatal("fully cached vectors differ")
	}
}

func TestEmbeddingModelSwitchSameDimensions(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: embRoutes})
	url := e.URL + "/v1/embeddings"
	body := embBody([]string{"alpha", "beta", "gamma"}, "")
	v1 := embVectors(t, do(t, "POST", url, body, "authorization", "Bearer a").Body)
	expectCS(t, do(t, "POST", url, body, "authorization", "Bearer a"), "hit")
	if err := e.Sim.UpdateKnobs(func(k *modelsim.Knobs) { k.ModelVersion = "v2" }); err != nil {
		t.Fatal(err)
	}
	do(t, "POST", url, embBody([]string{"delta"}, ""), "authorization", "Bearer a") // reveals v2
	for i := 0; i < 3; i++ {
		r := do(t, "POST", url, body, "authorization", "Bearer a")
		for j, v := range embVectors(t, r.Body) {
			if v == v1[j] {
				t.Fatalf("round %d item %d: a vector of the old model version was served", i, j)
			}
			if strings.Count(v, ",") != strings.Count(v1[j], ",") {
				t.Fatal("dimensions changed; the test needs equal dimensions")
			}
		}
		if i == 0 {
			expectCS(t, r, "fwd=miss")
		}
	}
	if got := e.WaitStat("wasmcustom.modelcache.model_version_changes", 1); got != 1 {
		t.Fatalf("model_version_changes = %d", got)
	}
	if !strings.Contains(e.Log(), `now reports version "v2"`) {
		t.Fatal("the switch was not logged")
	}
}

func TestEmbeddingEncodingsRoundTrip(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: embRoutes})
	url := e.URL + "/v1/embeddings"
	items := []string{"one", "two"}
	for _, enc := range []string{"float", "base64"} {
		body := embBody(items, `,"encoding_format":"`+enc+`"`)
		miss := do(t, "POST", url, body, "authorization", "Bearer a")
		hit := do(t, "POST", url, body, "authorization", "Bearer a")
		expectCS(t, hit, "hit")
		a, b := embVectors(t, miss.Body), embVectors(t, hit.Body)
		if strings.Join(a, "|") != strings.Join(b, "|") {
			t.Fatalf("%s: hit differs from miss", enc)
		}
		if (enc == "base64") != strings.HasPrefix(b[0], `"`) {
			t.Fatalf("%s answered with %.20s", enc, b[0])
		}
	}
}

// A partly cached batch whose answer (the missing items only) the cache
// refuses by its headers never reaches the client as it came: its vectors
// would sit at other items' places. The client gets the whole batch,
// asked for again.
func TestEmbeddingPartialAnswerRefusedIsRefetchedWhole(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: embRoutes})
	url := e.URL + "/v1/embeddings"
	all, half := passages(16, "passage %d: the slow grey wolf")
	do(t, "POST", url, embBody(half, ""), "authorization", "Bearer a")
	before := len(e.Sim.EmbeddingCalls())
	body := embBody(all, "")
	r := do(t, "POST", url, body, "authorization", "Bearer a", modelsim.HeaderCacheControl, "no-store")
	ref, err := modelsim.ExpectedBody(modelsim.DefaultModelVersion, "/v1/embeddings", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := embVectors(t, r.Body), embVectors(t, ref); r.Status != 200 || len(got) != 16 || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("status %d, %d vectors (want the 16 of the uncached reference): %.200s", r.Status, len(got), r.Body)
	}
	calls := e.Sim.EmbeddingCalls()[before:]
	if len(calls) != 2 || len(calls[0]) != 8 || len(calls[1]) != 16 {
		t.Fatalf("upstream calls %v: want the 8 missing items, then the whole batch", calls)
	}
	expectCS(t, r, "detail=no-store")
	// The client gets the whole batch's answer under its own headers, once
	// each, however the filter replaced the discarded answer's in Envoy.
	if ct, cs := r.Header.Values("Content-Type"), r.Header.Values("Cache-Status"); len(ct) != 1 || !strings.HasPrefix(ct[0], "application/json") || len(cs) != 1 {
		t.Fatalf("content-type %q, cache-status %q: want one of each", ct, cs)
	}
	if v := r.Header.Values("X-Model-Version"); len(v) != 1 {
		t.Fatalf("x-model-version %q: want the whole answer's, once", v)
	}
}
