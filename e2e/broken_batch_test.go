package e2e

import (
	"strings"
	"testing"

	"github.com/modelcache/modelcache/internal/wasmbuild"
)

// Never a wrong answer, even failing open: a partly cached embeddings batch
// goes upstream rewritten (the missing items only, numbered from 0). A
// panic in its response headers callback (the crash-test module's
// panic-on-response) breaks the stream, and the binding fails it open; the
// upstream's answer must not then reach the client as it came, 2 vectors
// for 4 items at the wrong places. In real Envoy the binding holds that
// answer and replaces it with the 502 asking for a retry.
func TestBrokenPartialBatchAnswersARetryNotWrongVectors(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: embRoutes, Wasm: wasmbuild.FilterWithTags(t, "modelcache_crashtest")})
	url := e.URL + "/v1/embeddings"
	all, half := passages(4, "broken batch passage %d")
	do(t, "POST", url, embBody(half, ""), "authorization", "Bearer a")
	before := len(e.Sim.EmbeddingCalls())
	r := do(t, "POST", url, embBody(all, ""), "authorization", "Bearer a", "x-modelcache-crash", "panic-on-response")
	if calls := e.Sim.EmbeddingCalls()[before:]; len(calls) != 1 || len(calls[0]) != 2 {
		t.Fatalf("setup: the partial batch's upstream calls %v, want one of the 2 missing items", calls)
	}
	if e.Stat("wasmcustom.modelcache.panics") != 1 {
		t.Fatalf("setup: panics %d, want 1", e.Stat("wasmcustom.modelcache.panics"))
	}
	if r.Status != 502 || !strings.Contains(string(r.Body), "retry the request") || !strings.Contains(r.Header.Get("Cache-Status"), "detail=internal") {
		t.Fatalf("a broken partial batch answered %d %q %.200s; want the 502 asking for a retry", r.Status, r.Header.Get("Cache-Status"), r.Body)
	}
	// The stream it broke is the only one: the next request is served whole.
	r = do(t, "POST", url, embBody(all, ""), "authorization", "Bearer a")
	if r.Status != 200 || len(embVectors(t, r.Body)) != 4 {
		t.Fatalf("after the broken one: %d, %.200s", r.Status, r.Body)
	}
}
