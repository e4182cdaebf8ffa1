package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/e2e/modelsim"
)

// The rerank kind on real Envoy, with the demo configuration
// (envoy/envoy.yaml's "rerank" route): whole requests cached, and only an
// answer that ranks exactly the documents asked about is ever stored.

func rerankBody(query string) string {
	return fmt.Sprintf(`{"model":"sim-rerank","query":%q,"documents":["a cache keeps answers",{"text":"bananas are yellow"},"caches serve hits"],"top_n":2}`, query)
}

func TestRerankMissThenHit(t *testing.T) {
	e := startEnvoy(t, envoyOpts{})
	url := e.URL + modelsim.PathRerank
	body := rerankBody("what is a cache")
	want, err := modelsim.ExpectedBody("v1", modelsim.PathRerank, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	first := do(t, "POST", url, body, "authorization", "Bearer a")
	expectCS(t, first, "fwd=miss", "stored")
	second := do(t, "POST", url, body, "authorization", "Bearer a")
	expectCS(t, second, "hit")
	for i, r := range []*response{first, second} {
		if r.Status != 200 || !bytes.Equal(r.Body, want) {
			t.Fatalf("answer %d: %d %s, want %s", i, r.Status, r.Body, want)
		}
	}
	if got := e.Sim.Calls(modelsim.PathRerank); got != 1 {
		t.Fatalf("model calls = %d, want 1", got)
	}
	// Another top_n is another ranking: a miss.
	expectCS(t, do(t, "POST", url, strings.Replace(body, `"top_n":2`, `"top_n":3`, 1), "authorization", "Bearer a"), "fwd=miss", "stored")
	if got := e.WaitStat("wasmcustom.modelcache_route.rerank.requests.hit", 1); got != 1 {
		t.Fatalf("requests.hit = %d", got)
	}
}

// TestRerankBadAnswersNeverStored: the upstream answers 200 JSON that is
// no complete ranking of the request's documents; none is stored, each
// refusal is counted by reason, and the route caches again once the model
// is sane.
func TestRerankBadAnswersNeverStored(t *testing.T) {
	e := startEnvoy(t, envoyOpts{})
	url := e.URL + modelsim.PathRerank
	tests := []struct {
		name, answer, reason string
	}{
		{"malformed", `{"results":[{"index":0,"relevance_score":0.9},{"ind`, "malformed_json"},
		{"no results", `{"id":"r","model":"sim-rerank"}`, "foreign_shape"}, // another API's answer: lasting (stop 73)
		{"empty results", `{"results":[]}`, "rerank_results"},
		{"more than top_n", `{"results":[{"index":0,"relevance_score":0.9},{"index":1,"relevance_score":0.5},{"index":2,"relevance_score":0.1}]}`, "rerank_results"},
		{"index out of range", `{"results":[{"index":3,"relevance_score":0.9},{"index":0,"relevance_score":0.5}]}`, "rerank_index"},
		{"duplicate index", `{"results":[{"index":1,"relevance_score":0.9},{"index":1,"relevance_score":0.5}]}`, "rerank_index"},
		{"index not an integer", `{"results":[{"index":1.5,"relevance_score":0.9},{"index":0,"relevance_score":0.5}]}`, "rerank_index"},
		{"score not finite", `{"results":[{"index":1,"relevance_score":1e999},{"index":0,"relevance_score":0.5}]}`, "rerank_score"},
		{"score missing", `{"results":[{"index":1},{"index":0,"relevance_score":0.5}]}`, "rerank_score"},
	}
	counts := map[string]int64{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.Sim.SetScript(func(w http.ResponseWriter, r *http.Request, body []byte) bool {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(200)
				w.Write([]byte(tc.answer)) //nolint:errcheck
				return true
			})
			body := rerankBody("bad answer: " + tc.name)
			calls := e.Sim.Calls(modelsim.PathRerank)
			for i := 0; i < 2; i++ {
				r := do(t, "POST", url, body, "authorization", "Bearer a")
				expectCS(t, r, "fwd=miss", "detail="+strings.ReplaceAll(tc.reason, "_", "-"))
				if strings.Contains(r.CacheStatus(), "stored") || string(r.Body) != tc.answer {
					t.Fatalf("answer %d: %s %q, want the upstream's bytes, unstored", i, r.CacheStatus(), r.Body)
				}
			}
			if got := e.Sim.Calls(modelsim.PathRerank) - calls; got != 2 {
				t.Fatalf("model calls = %d, want 2: nothing may be stored", got)
			}
			counts[tc.reason] += 2
			stat := "wasmcustom.modelcache_route.rerank.refused." + tc.reason
			if got := e.WaitStat(stat, counts[tc.reason]); got != counts[tc.reason] {
				t.Fatalf("%s = %d, want %d", stat, got, counts[tc.reason])
			}
		})
	}
	// A request whose documents the cache cannot count is not cached at all.
	e.Sim.SetScript(nil)
	for i := 0; i < 2; i++ {
		r := do(t, "POST", url, `{"model":"sim-rerank","query":"q","documents":"not a list"}`, "authorization", "Bearer a")
		expectCS(t, r, "fwd=bypass", "detail=rerank-input")
	}
	if got := e.WaitStat("wasmcustom.modelcache_route.rerank.bypass.rerank_input", 2); got != 2 {
		t.Fatalf("bypass.rerank_input = %d", got)
	}
	// The same requests, answered well, are cached.
	body := rerankBody("bad answer: " + tests[0].name)
	expectCS(t, do(t, "POST", url, body, "authorization", "Bearer a"), "fwd=miss", "stored")
	expectCS(t, do(t, "POST", url, body, "authorization", "Bearer a"), "hit")
}
