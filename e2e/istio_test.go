package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/e2e/modelsim"
	"github.com/modelcache/modelcache/envoy/observability"
)

// Acceptance of "caching under a plain WasmPlugin" (issue 16) on real Envoy
// --concurrency 2: the filter arrives the way Istio sends a WasmPlugin —
// through ECDS, with the plugin-config fields istiod writes and without
// allow_on_headers_stop_iteration (envoy/istio/ecds/) — so it decides late:
// the request headers go upstream before the body is decided on.

const ecdsBoot, ecdsResource = "envoy/istio/ecds/envoy.yaml", "envoy/istio/ecds/modelcache.yaml"

func startIstio(t *testing.T, h2 bool) *envoyProc {
	t.Helper()
	return startEnvoy(t, envoyOpts{ConfigFile: ecdsBoot, ECDS: ecdsResource, UpstreamH2: h2})
}

// waitAborted waits until the simulator counted n calls whose body never
// arrived (the proxy resets them after answering locally).
func waitAborted(t *testing.T, sim *modelsim.Server, n int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := sim.WaitAborted(ctx, n); err != nil {
		t.Fatalf("aborted calls %d, want %d: %v", sim.Aborted(), n, err)
	}
}

func TestIstioECDSLateDecision(t *testing.T) {
	e := startIstio(t, false)
	url := e.URL + "/v1/chat/completions"
	const st = "wasmcustom.modelcache_route.chat."

	t.Run("second identical request is a hit", func(t *testing.T) {
		miss := do(t, "POST", url, chat("istio first"), "authorization", "Bearer a")
		// The answer's headers pass before its body is judged: its
		// Cache-Status cannot say stored; the stats do.
		expectCS(t, miss, "fwd=miss")
		if got := e.WaitStat(st+"stored", 1); got != 1 {
			t.Fatalf("stored = %d", got)
		}
		hit := do(t, "POST", url, chat("istio first"), "authorization", "Bearer a")
		expectCS(t, hit, "hit")
		if hit.Status != 200 || !bytes.Equal(hit.Body, miss.Body) {
			t.Fatalf("hit %d %s, miss %s", hit.Status, hit.Body, miss.Body)
		}
		// The model saw two requests: the miss, and the hit's headers
		// without a body, then a closed connection.
		waitAborted(t, e.Sim, 1)
		if total := e.Sim.TotalCalls(); total != 2 {
			t.Fatalf("model calls %d, want 2 (1 complete, 1 aborted)", total)
		}
		if got := e.WaitStat(st+"late.upstream_aborted", 1); got != 1 {
			t.Fatalf("late.upstream_aborted = %d", got)
		}
		if e.Stat(st+"late.decisions") < 2 {
			t.Fatalf("late.decisions = %d", e.Stat(st+"late.decisions"))
		}
		// The first request found its worker's VM still holding headers:
		// it waited HoldGrace for a body, then was let go and decided late.
		if e.Stat(st+"late.rescued") < 1 {
			t.Fatal("late.rescued = 0")
		}
		// Caching goes on: the not-caching signal stays quiet.
		if n := e.Stat("wasmcustom.modelcache.hold_unsupported"); n != 0 {
			t.Fatalf("hold_unsupported = %d", n)
		}
	})

	t.Run("100 concurrent identical requests make one complete upstream call", func(t *testing.T) {
		e.Sim.ResetCounters()
		aborted0 := e.Stat(st + "late.upstream_aborted")
		e.Sim.Pause() // the leader's call waits until every request is in
		client.CloseIdleConnections()
		done := make(chan []*response)
		go func() { done <- burst(t, url, chat("istio stampede"), 100) }()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		// Every request's headers reached the model (late decision); the
		// leader's body too, the followers' are held by the filter.
		if err := e.Sim.WaitCalls(ctx, "", 100); err != nil {
			t.Fatalf("model saw %d requests: %v", e.Sim.TotalCalls(), err)
		}
		if got := e.WaitStat(st+"coalesce.followers", 99); got != 99 {
			t.Fatalf("followers = %d", got)
		}
		held := e.Sim.Stats().Conns
		e.Sim.Resume()
		if held != 100 { // HTTP/1.1: one connection per open upstream request
			t.Errorf("upstream connections while the followers waited: %d, want 100", held)
		}
		rs := <-done
		collapsed := sameAnswers(t, rs)
		if collapsed != 99 {
			t.Fatalf("%d collapsed, want 99", collapsed)
		}
		waitAborted(t, e.Sim, 99)
		if total, aborted := e.Sim.TotalCalls(), e.Sim.Aborted(); total-aborted != 1 {
			t.Fatalf("model calls %d, aborted %d: want exactly 1 complete", total, aborted)
		}
		if got := e.WaitStat(st+"late.followers_held", 99); got != 99 {
			t.Fatalf("late.followers_held = %d", got)
		}
		if got := e.WaitStat(st+"late.upstream_aborted", aborted0+99); got != aborted0+99 {
			t.Fatalf("late.upstream_aborted = %d, want %d", got, aborted0+99)
		}
		t.Logf("upstream connections open while 99 followers waited: %d (max %d)", held, e.Sim.Stats().MaxConns)
	})

	t.Run("a 500 is never stored", func(t *testing.T) {
		if err := e.Sim.UpdateKnobs(func(k *modelsim.Knobs) { k.Status, k.FailNext = 500, 1 }); err != nil {
			t.Fatal(err)
		}
		bad := do(t, "POST", url, chat("istio 500"), "authorization", "Bearer a")
		if bad.Status != 500 || strings.Contains(bad.CacheStatus(), "stored") {
			t.Fatalf("first: %d %q", bad.Status, bad.CacheStatus())
		}
		if got := e.WaitStat(st+"refused_status.500", 1); got != 1 {
			t.Fatalf("refused_status.500 = %d", got)
		}
		calls := e.Sim.TotalCalls()
		again := do(t, "POST", url, chat("istio 500"), "authorization", "Bearer a")
		expectCS(t, again, "fwd=miss")
		if again.Status != 200 || e.Sim.TotalCalls() != calls+1 {
			t.Fatalf("after the 500: %d, model calls %d → %d", again.Status, calls, e.Sim.TotalCalls())
		}
	})

	t.Run("streaming is recorded and replayed", func(t *testing.T) {
		stored := e.Stat(st + "stored")
		_, _, miss := timeStream(t, url, streamReq("istio stream"))
		expectCS(t, miss, "fwd=miss")
		if got := e.WaitStat(st+"stored", stored+1); got != stored+1 {
			t.Fatalf("stored %d → %d: the stream was not stored", stored, got)
		}
		hit := do(t, "POST", url, streamReq("istio stream"), "authorization", "Bearer tenant-a")
		expectCS(t, hit, "hit")
		if a, b := dataLines(miss.Body), dataLines(hit.Body); len(a) < 4 || strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Fatalf("replay differs:\n%s\n---\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
		}
	})

	t.Run("embeddings: a partly cached batch is fetched whole", func(t *testing.T) {
		eurl := e.URL + "/v1/embeddings"
		first := do(t, "POST", eurl, embBody([]string{"alpha", "beta"}, ""), "authorization", "Bearer a")
		if first.Status != 200 {
			t.Fatalf("first: %d %s", first.Status, first.Body)
		}
		before := len(e.Sim.EmbeddingCalls())
		mixed := do(t, "POST", eurl, embBody([]string{"beta", "gamma"}, ""), "authorization", "Bearer a")
		calls := e.Sim.EmbeddingCalls()[before:]
		// Late, the answer cannot be merged (its headers pass before its
		// body): the whole batch goes upstream (README, Istio).
		if mixed.Status != 200 || len(calls) != 1 || strings.Join(calls[0], ",") != "beta,gamma" {
			t.Fatalf("partial batch: %d, upstream items %v (%s)", mixed.Status, calls, mixed.CacheStatus())
		}
		if v1, v2 := embVectors(t, first.Body), embVectors(t, mixed.Body); len(v2) != 2 || v1[1] != v2[0] {
			t.Fatalf("cached item's vector differs: %v vs %v", v1, v2)
		}
		// All items cached: a hit, the upstream request aborted.
		aborted := e.Sim.Aborted()
		hit := do(t, "POST", eurl, embBody([]string{"gamma", "alpha"}, ""), "authorization", "Bearer a")
		expectCS(t, hit, "hit")
		waitAborted(t, e.Sim, aborted+1)
	})
}

// Over HTTP/2 to the model, a hit's upstream request is a reset stream.
func TestIstioECDSLateDecisionHTTP2Upstream(t *testing.T) {
	e := startIstio(t, true)
	url := e.URL + "/v1/chat/completions"
	do(t, "POST", url, chat("istio h2"), "authorization", "Bearer a")
	hit := do(t, "POST", url, chat("istio h2"), "authorization", "Bearer a")
	expectCS(t, hit, "hit")
	waitAborted(t, e.Sim, 1)
	if total := e.Sim.TotalCalls(); total != 2 {
		t.Fatalf("model calls %d, want 2", total)
	}
	// Followers wait on streams of the shared connection, not connections.
	e.Sim.ResetCounters()
	e.Sim.Pause()
	done := make(chan []*response)
	go func() { done <- burst(t, url, chat("istio h2 stampede"), 20) }()
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.coalesce.followers", 19); got != 19 {
		t.Fatalf("followers = %d", got)
	}
	e.Sim.Resume()
	for i, r := range <-done {
		if r == nil || r.Status != 200 {
			t.Fatalf("response %d: %+v", i, r)
		}
	}
	waitAborted(t, e.Sim, 19)
	if st := e.Sim.Stats(); st.MaxConns > 2 || st.Total-st.Aborted != 1 {
		t.Fatalf("h2 upstream: %d connections (want at most one per worker: streams multiplexed), %d calls, %d aborted", st.MaxConns, st.Total, st.Aborted)
	}
}

// On a sidecar — Istio's own stats tags in the bootstrap, ours added —
// the metrics the rules and the dashboard use are exported as on plain
// Envoy: Istio's `cache` tag cuts nothing out of modelcache's stat names
// (review Z183 found `modelcache.chat.requests.hit` exported as
// `modelrequests_hit{cache="chat"}`), and no metric carries its label.
func TestIstioSidecarExportsTheMetricsTheRulesUse(t *testing.T) {
	used, err := observability.UsedMetrics()
	if err != nil {
		t.Fatal(err)
	}
	e := startEnvoy(t, envoyOpts{ConfigFile: ecdsBoot, ECDS: ecdsResource, Config: sloRoutes})
	url := e.URL + "/v1/chat/completions"
	expectCS(t, do(t, "POST", url, chat("istio alerts"), "authorization", "Bearer a"), "fwd=miss")
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.stored", 1); got != 1 {
		t.Fatalf("stored = %d", got)
	}
	expectCS(t, do(t, "POST", url, chat("istio alerts"), "authorization", "Bearer a"), "hit")
	expectCS(t, do(t, "POST", url, chat("istio refused"), "authorization", "Bearer a", "x-sim-status", "503"), "fwd=miss")
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.refused.status", 1); got != 1 {
		t.Fatalf("refused.status = %d", got)
	}
	checkUsedMetrics(t, e, used)
	text := e.promText(t)
	for _, bad := range []string{`cache="`, `component="`, `wasm_filter="`, "\nmodelrequests_"} {
		if strings.Contains(text, bad) {
			i := strings.Index(text, bad)
			t.Errorf("the scrape holds %q: %s", bad, text[max(0, i-80):min(len(text), i+80)])
		}
	}
}
