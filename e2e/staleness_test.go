package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/e2e/modelsim"
)

// Acceptance of "Staleness you can see" on real Envoy --concurrency 2.

func TestShadowDivergenceInvalidates(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "shadow":{"sample":1.0,"max_concurrent":8,"min_samples":5,"max_divergence":0.5,"window":"10m","min_tenants":1}}]}`
	e := startEnvoy(t, envoyOpts{Config: cfg})
	url := e.URL + "/v1/chat/completions"
	const keys = 12
	for k := 0; k < keys; k++ {
		do(t, "POST", url, chat(fmt.Sprint("fact ", k)), "authorization", "Bearer a")
	}
	for k := 0; k < 2; k++ {
		expectCS(t, do(t, "POST", url, chat(fmt.Sprint("fact ", k)), "authorization", "Bearer a"), "hit")
	}
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.shadow.agree", 2); got != 2 {
		t.Fatalf("agree = %d", got)
	}
	if err := e.Sim.UpdateKnobs(func(k *modelsim.Knobs) { k.ModelVersion = "retrained" }); err != nil {
		t.Fatal(err)
	}
	hits := 0
	for k := 2; k < keys; k++ {
		do(t, "POST", url, chat(fmt.Sprint("fact ", k)), "authorization", "Bearer a")
		hits++
		if e.WaitStat("wasmcustom.modelcache_route.chat.shadow.diverge", int64(hits)) != int64(hits) {
			t.Fatalf("divergence %d not seen", hits)
		}
		if e.Stat("wasmcustom.modelcache_route.chat.shadow.invalidations") == 1 {
			break
		}
	}
	t.Logf("namespace invalidated after %d divergent hits", hits)
	if hits != 3 {
		t.Fatalf("invalidated after %d divergent hits; with 2 agreeing samples, min_samples 5 and max_divergence 0.5 it must be 3", hits)
	}
	if !strings.Contains(e.Log(), "its namespace is invalidated") {
		t.Fatal("invalidation not logged")
	}
	for k := 0; k < keys; k++ {
		body := chat(fmt.Sprint("fact ", k))
		r := do(t, "POST", url, body, "authorization", "Bearer a")
		want, _ := modelsim.ExpectedBody("retrained", "/v1/chat/completions", []byte(body))
		if !bytes.Equal(r.Body, want) {
			t.Fatalf("fact %d: old answer served (%s)", k, r.CacheStatus())
		}
	}
}

func TestShadowQuietWhenAnswersHold(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "shadow":{"sample":1.0,"max_concurrent":8,"min_samples":5,"max_divergence":0.2,"min_tenants":1}}]}`
	e := startEnvoy(t, envoyOpts{Config: cfg})
	url := e.URL + "/v1/chat/completions"
	for k := 0; k < 10; k++ {
		do(t, "POST", url, chat(fmt.Sprint("steady ", k)), "authorization", "Bearer a")
	}
	parallel(1000, 4, func(i int) {
		do(t, "POST", url, chat(fmt.Sprint("steady ", i%10)), "authorization", "Bearer a")
	})
	// Some shadow calls may be skipped when 8 are in flight: count what ran.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st := e.Stats()
		if st["wasmcustom.modelcache_route.chat.shadow.started"] == st["wasmcustom.modelcache_route.chat.shadow.agree"]+st["wasmcustom.modelcache_route.chat.shadow.diverge"]+st["wasmcustom.modelcache_route.chat.shadow.errors"] {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := e.Stats()
	t.Logf("shadow started %d, agree %d, saturated %d", st["wasmcustom.modelcache_route.chat.shadow.started"],
		st["wasmcustom.modelcache_route.chat.shadow.agree"], st["wasmcustom.modelcache_route.chat.shadow.saturated"])
	if st["wasmcustom.modelcache_route.chat.shadow.diverge"] != 0 || st["wasmcustom.modelcache_route.chat.shadow.invalidations"] != 0 {
		t.Fatal("divergence without a change")
	}
	if st["wasmcustom.modelcache_route.chat.shadow.agree"] < 500 {
		t.Fatalf("only %d comparisons", st["wasmcustom.modelcache_route.chat.shadow.agree"])
	}
}

func TestShadowConcurrencyBound(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "shadow":{"sample":1.0,"max_concurrent":1}}]}`
	e := startEnvoy(t, envoyOpts{Config: cfg})
	url := e.URL + "/v1/chat/completions"
	body := chat("bounded shadows")
	first := do(t, "POST", url, body, "authorization", "Bearer tenant-a") // burst's tenant
	e.Sim.ResetCounters()
	if err := e.Sim.UpdateKnobs(func(k *modelsim.Knobs) { k.ModelVersion = "v9" }); err != nil {
		t.Fatal(err)
	}
	// Hold the model so no shadow answer can come back during the burst
	// (a diverged entry is replaced as soon as one does).
	e.Sim.Pause()
	client.CloseIdleConnections()
	rs := burst(t, url, body, 30)
	for _, r := range rs {
		if !bytes.Equal(r.Body, first.Body) {
			t.Fatal("a client received something other than the cached answer")
		}
	}
	inFlight := e.Sim.MaxInFlight()
	e.Sim.Resume()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.Sim.WaitInFlight(ctx, 0)
	if got := max(inFlight, e.Sim.MaxInFlight()); got > 1 {
		t.Fatalf("%d shadow calls in flight at once, max_concurrent is 1", got)
	}
	if e.Stat("wasmcustom.modelcache_route.chat.shadow.saturated") == 0 {
		t.Fatal("no shadow call was refused")
	}
}

func TestStaleServingSLOAlert(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "freshness_slo":{"max_age":"1s","max_fraction":0.05,"window":"10s","min_samples":10}}]}`
	e := startEnvoy(t, envoyOpts{Config: cfg})
	url := e.URL + "/v1/chat/completions"
	for k := 0; k < 5; k++ {
		do(t, "POST", url, chat(fmt.Sprint("aging ", k)), "authorization", "Bearer a")
	}
	for i := 0; i < 30; i++ { // young hits: fine
		do(t, "POST", url, chat(fmt.Sprint("aging ", i%5)), "authorization", "Bearer a")
	}
	time.Sleep(1500 * time.Millisecond)
	if strings.Contains(e.Log(), "SLO breached") {
		t.Fatal("breach reported while answers were young")
	}
	for i := 0; i < 60; i++ { // now 1.5 s old: past the budget
		do(t, "POST", url, chat(fmt.Sprint("aging ", i%5)), "authorization", "Bearer a")
	}
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.slo.breaches", 1); got != 1 {
		t.Fatalf("breaches = %d", got)
	}
	for i := 0; i < 60; i++ {
		do(t, "POST", url, chat(fmt.Sprint("aging ", i%5)), "authorization", "Bearer a")
	}
	time.Sleep(1500 * time.Millisecond)
	if n := strings.Count(e.Log(), "stale-serving SLO breached on route chat"); n != 1 {
		t.Fatalf("%d breach lines, want 1:\n%s", n, e.Log())
	}
	if e.Stat("wasmcustom.modelcache_route.chat.slo.breached") != 1 || e.Stat("wasmcustom.modelcache_route.chat.slo.stale_rate_ppm") < 50000 {
		t.Fatalf("gauges: breached %d rate %d ppm", e.Stat("wasmcustom.modelcache_route.chat.slo.breached"), e.Stat("wasmcustom.modelcache_route.chat.slo.stale_rate_ppm"))
	}
}
