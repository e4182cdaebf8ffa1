package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcache/modelcache/e2e/modelsim"
	"github.com/modelcache/modelcache/internal/hammer"
)

// Acceptance of "Stampede protection" on real Envoy --concurrency 2.

const stampedeRoutes = `{
  "upstream_cluster": "model",
  "routes": [
    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "10m",
     "coalesce": {"max_wait": "20s", "max_retries": 2}}
  ]
}`

// burst sends n identical requests at once, each on its own connection (so
// the kernel spreads them over both workers), and returns the responses.
func burst(t *testing.T, url, body string, n int, headers ...string) []*response {
	t.Helper()
	out := make([]*response, n)
	headers = append([]string{"authorization", "Bearer tenant-a"}, headers...)
	for i, err := range hammer.Go(n, func(i int) error {
		r, err := tryDo(context.Background(), "POST", url, body, headers...)
		if err != nil {
			return err
		}
		out[i] = r
		return nil
	}) {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	return out
}

// sameAnswers fails the test unless every response of a burst is a 200
// with the first one's body, and returns how many were collapsed.
func sameAnswers(t *testing.T, rs []*response) (collapsed int) {
	t.Helper()
	for i, r := range rs {
		if r == nil || r.Status != 200 || !bytes.Equal(r.Body, rs[0].Body) {
			t.Fatalf("response %d: %+v", i, r)
		}
		if strings.Contains(r.CacheStatus(), "collapsed") {
			collapsed++
		}
	}
	return collapsed
}

func workerConnections(e *envoyProc) (w0, w1 int64) {
	for name, v := range e.Stats() {
		if strings.HasPrefix(name, "listener.127.0.0.1_") && strings.HasSuffix(name, ".worker_0.downstream_cx_total") {
			w0 = v
		}
		if strings.HasPrefix(name, "listener.127.0.0.1_") && strings.HasSuffix(name, ".worker_1.downstream_cx_total") {
			w1 = v
		}
	}
	return
}

func TestStampedeOneUpstreamCall(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: stampedeRoutes})
	if err := e.Sim.UpdateKnobs(func(k *modelsim.Knobs) { k.LatencyMS = 300 }); err != nil {
		t.Fatal(err)
	}
	client.CloseIdleConnections()
	rs := burst(t, e.URL+"/v1/chat/completions", chat("the stampede question"), 200)
	if n := e.Sim.Calls("/v1/chat/completions"); n != 1 {
		t.Fatalf("simulator counted %d calls, want exactly 1", n)
	}
	collapsed := sameAnswers(t, rs)
	if collapsed != 199 {
		t.Fatalf("%d collapsed, want 199", collapsed)
	}
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.requests.collapsed", 199); got != 199 {
		t.Fatalf("collapsed stat = %d", got)
	}
	w0, w1 := workerConnections(e)
	t.Logf("connections per worker: %d / %d; tick wake-ups %d", w0, w1, e.Stat("wasmcustom.modelcache_route.chat.coalesce.tick_wakeups"))
	if w0 == 0 || w1 == 0 {
		t.Fatalf("connections were not spread over both workers (%d / %d)", w0, w1)
	}
}

func TestStampedeLeaderFails(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: stampedeRoutes})
	if err := e.Sim.UpdateKnobs(func(k *modelsim.Knobs) { k.LatencyMS = 300; k.FailNext = 1 }); err != nil {
		t.Fatal(err)
	}
	client.CloseIdleConnections()
	rs := burst(t, e.URL+"/v1/chat/completions", chat("the failing stampede"), 200)
	calls := e.Sim.Calls("/v1/chat/completions")
	if calls > 2 {
		t.Fatalf("simulator counted %d calls, want at most 2", calls)
	}
	var good []byte
	failed := 0
	for _, r := range rs {
		if r.Status != 200 {
			failed++
			continue
		}
		if good == nil {
			good = r.Body
		} else if !bytes.Equal(good, r.Body) {
			t.Fatal("clients got different answers")
		}
	}
	if failed > 1 {
		t.Fatalf("%d clients got the failure, want at most the first leader's", failed)
	}
	// Nothing bad was stored: the cached answer is the good one.
	r := do(t, "POST", e.URL+"/v1/chat/completions", chat("the failing stampede"), "authorization", "Bearer tenant-a")
	expectCS(t, r, "hit")
	if !bytes.Equal(r.Body, good) {
		t.Fatal("the cache holds something other than the good answer")
	}
	t.Logf("upstream calls %d, clients failed %d, promoted %d", calls, failed, e.Stat("wasmcustom.modelcache_route.chat.coalesce.promoted"))
}

// Steady load across an expiry with stale-while-revalidate: no client sees
// a miss, exactly one refresh reaches the model per expiry, and stale
// answers say so.
func TestStaleWhileRevalidateUnderLoad(t *testing.T) {
	cfg := `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
	  "ttl":"2s","stale_while_revalidate":"10s"}]}`
	e := startEnvoy(t, envoyOpts{Config: cfg})
	if err := e.Sim.UpdateKnobs(func(k *modelsim.Knobs) { k.LatencyMS = 100 }); err != nil {
		t.Fatal(err)
	}
	body := chat("hot key")
	do(t, "POST", e.URL+"/v1/chat/completions", body, "authorization", "Bearer a") // fill
	var misses, stale, total atomic.Int64
	stop := time.Now().Add(7 * time.Second) // spans three expiries
	for _, err := range hammer.Go(8, func(int) error {
		for time.Now().Before(stop) {
			r, err := tryDo(context.Background(), "POST", e.URL+"/v1/chat/completions", body, "authorization", "Bearer a")
			if err != nil || r.Status != 200 {
				return fmt.Errorf("request failed: %v", err)
			}
			total.Add(1)
			cs := r.CacheStatus()
			switch {
			case strings.Contains(cs, "fwd=miss"):
				misses.Add(1)
			case strings.Contains(cs, "fwd=stale"):
				stale.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return nil
	}) {
		if err != nil {
			t.Error(err)
		}
	}
	refreshes := e.Sim.Calls("/v1/chat/completions") - 1
	t.Logf("%d requests, %d stale, %d misses, %d refreshes", total.Load(), stale.Load(), misses.Load(), refreshes)
	if misses.Load() != 0 {
		t.Fatalf("%d client-visible misses", misses.Load())
	}
	if stale.Load() == 0 {
		t.Fatal("no stale answer was marked: the load never crossed an expiry")
	}
	// 7 s of load with a 2 s TTL and 100 ms refreshes: three expiries.
	if refreshes < 2 || refreshes > 4 {
		t.Fatalf("%d refreshes, want one per expiry (about 3)", refreshes)
	}
	if got := e.Stat("wasmcustom.modelcache_route.chat.background.stored"); got != refreshes {
		t.Fatalf("background.stored = %d, model saw %d refreshes", got, refreshes)
	}
}

func TestStaleIfErrorInEnvoy(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1s","stale_if_error":"1m"}]}`
	e := startEnvoy(t, envoyOpts{Config: cfg, RouteTimeout: "1s"})
	body := chat("fallback")
	good := do(t, "POST", e.URL+"/v1/chat/completions", body, "authorization", "Bearer a")
	time.Sleep(1100 * time.Millisecond)
	for _, knobs := range []modelsim.Knobs{{Status: 503}, {Fault: modelsim.FaultReset}, {Fault: modelsim.FaultTimeout}} {
		if err := e.Sim.SetKnobs(knobs); err != nil {
			t.Fatal(err)
		}
		r := do(t, "POST", e.URL+"/v1/chat/completions", body, "authorization", "Bearer a")
		if r.Status != 200 || !bytes.Equal(r.Body, good.Body) {
			t.Fatalf("%+v: status %d body %.100s", knobs, r.Status, r.Body)
		}
		expectCS(t, r, "fwd=stale", "detail=stale-if-error")
	}
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.requests.stale_if_error", 3); got != 3 {
		t.Fatalf("stale_if_error = %d", got)
	}
}

// With the model failing every call, a burst of identical requests makes at
// most max_retries+1 upstream calls: after that many leader failures the
// followers are answered with the failure (coalesce.on_retries_exhausted
// "fail", the default), not sent upstream all at once.
func TestStampedeFailingUpstreamRetriesExhausted(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: stampedeRoutes})
	client.CloseIdleConnections()
	const n = 40
	url := e.URL + "/v1/chat/completions"
	rs := make([]*response, n)
	// Each request's send and answer times (from the burst's start), for a
	// failure to tell a request that arrived after the flight had ended
	// (a new flight: one more call, correctly) from a second leader. The
	// model's latency keeps the flight open for about 3 × 600 ms, long
	// past the burst's last request on a loaded machine.
	sent, answered := make([]time.Duration, n), make([]time.Duration, n)
	t0 := time.Now()
	for i, err := range hammer.Go(n, func(i int) error {
		sent[i] = time.Since(t0)
		r, err := tryDo(context.Background(), "POST", url, chat("a question the model always fails"),
			"authorization", "Bearer tenant-a", "x-sim-status", "503", "x-sim-latency", "600ms")
		answered[i] = time.Since(t0)
		if err != nil {
			return err
		}
		rs[i] = r
		return nil
	}) {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	calls := e.Sim.Calls("/v1/chat/completions")
	failedLocally := 0
	for i, r := range rs {
		if r == nil || r.Status != 503 {
			t.Fatalf("response %d: %+v, want the model's 503", i, r)
		}
		if strings.Contains(r.CacheStatus(), "detail=leader-failed") {
			expectCS(t, r, "collapsed", "fwd-status=503")
			failedLocally++
		}
	}
	t.Logf("%d upstream calls, %d followers answered with the failure", calls, failedLocally)
	if calls > 3 { // max_retries 2
		for i, r := range rs {
			t.Logf("request %d: sent at %v, answered at %v: %s", i, sent[i], answered[i], r.CacheStatus())
		}
		t.Fatalf("%d upstream calls, want at most max_retries+1 = 3", calls)
	}
	if int(calls)+failedLocally != n {
		t.Fatalf("%d calls + %d local failures != %d requests", calls, failedLocally, n)
	}
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.requests.leader_failed", int64(failedLocally)); got != int64(failedLocally) {
		t.Fatalf("requests.leader_failed = %d", got)
	}
}
