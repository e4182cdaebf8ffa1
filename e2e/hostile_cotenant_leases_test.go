package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Hostile co-tenants, lease fill (issue 13 item 5): one tenant's requests
// that the model rejects each leave a hit-for-miss mark in the single-flight
// lease table. However many, they must not switch single flight off for
// another tenant.

const leaseFillRoutes = `{
  "upstream_cluster": "model",
  "routes": [
    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "10m",
     "coalesce": {"max_wait": "20s", "max_retries": 2, "hit_for_miss": "30s"}}
  ]
}`

func TestHostileCotenantLeaseFill(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: leaseFillRoutes})
	url := e.URL + "/v1/chat/completions"
	// Tenant B: 3,000 distinct requests, each rejected with a 400 (three
	// times the default 1,024 lease slots).
	const rejected = 3000
	var bad atomic.Int64
	parallel(rejected, 32, func(i int) {
		r, err := tryDo(context.Background(), "POST", url, chat(fmt.Sprintf("rejected request %d", i)),
			"authorization", "Bearer tenant-b", "x-sim-status", "400")
		if err != nil || r.Status != 400 || !strings.Contains(r.CacheStatus(), "fwd-status=400") {
			bad.Add(1)
		}
	})
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d of tenant B's requests were not forwarded 400s", n)
	}
	if got := e.Sim.Calls("/v1/chat/completions"); got != rejected {
		t.Fatalf("simulator counted %d calls for tenant B, want %d", got, rejected)
	}
	// Tenant A: 20 identical concurrent requests, a slow model.
	client.CloseIdleConnections()
	before := e.Sim.Calls("/v1/chat/completions")
	const n = 20
	rs := burst(t, url, chat("tenant A's question"), n, "x-sim-latency", "300ms")
	calls := e.Sim.Calls("/v1/chat/completions") - before
	t.Logf("tenant A: %d upstream calls; collisions %d, hit_for_miss %d", calls,
		e.Stat("wasmcustom.modelcache_route.chat.coalesce.collisions"), e.Stat("wasmcustom.modelcache_route.chat.coalesce.hit_for_miss"))
	if calls != 1 {
		t.Fatalf("tenant A's %d identical requests made %d upstream calls, want exactly 1", n, calls)
	}
	collapsed := sameAnswers(t, rs)
	if collapsed != n-1 {
		t.Fatalf("%d collapsed, want %d", collapsed, n-1)
	}
	// The VMs live and cache; nothing leaks across tenants; nothing of
	// tenant B's rejected answers is served.
	r := do(t, "POST", url, chat("tenant A's question"), "authorization", "Bearer tenant-a")
	expectCS(t, r, "hit")
	if !bytes.Equal(r.Body, rs[0].Body) {
		t.Fatal("tenant A's hit differs from its answer")
	}
	r = do(t, "POST", url, chat("tenant A's question"), "authorization", "Bearer tenant-b")
	expectCS(t, r, "fwd=miss")
	r = do(t, "POST", url, chat("rejected request 7"), "authorization", "Bearer tenant-b", "x-sim-status", "400")
	if r.Status != 400 {
		t.Fatalf("tenant B's rejected request: status %d", r.Status)
	}
	expectCS(t, r, "fwd=miss", "fwd-status=400")
	if p := e.Stat("wasmcustom.modelcache.panics"); p != 0 {
		t.Fatalf("%d panics", p)
	}
}

// Lease fill with live leaders: one tenant keeps 600 distinct slow requests
// in flight (600 held leases). Another tenant's burst of identical requests
// still makes one upstream call: placement is keyed by a per-process
// secret, a slot holds several leases, and one tenant takes at most half of
// a slot.
func TestHostileCotenantLeaseFillInFlight(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: leaseFillRoutes})
	url := e.URL + "/v1/chat/completions"
	const held = 600
	var bWG sync.WaitGroup
	var bBad atomic.Int64
	for i := 0; i < held; i++ {
		bWG.Add(1)
		go func(i int) {
			defer bWG.Done()
			r, err := tryDo(context.Background(), "POST", url, chat(fmt.Sprintf("slow request %d", i)),
				"authorization", "Bearer tenant-b", "x-sim-latency", "4s")
			if err != nil || r.Status != 200 {
				bBad.Add(1)
			}
		}(i)
	}
	for i := 0; e.Sim.InFlight() < held; i++ {
		if i == 500 {
			t.Fatalf("only %d of tenant B's requests reached the model", e.Sim.InFlight())
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := e.Sim.Calls("/v1/chat/completions")
	const n = 20
	rs := burst(t, url, chat("tenant A's question"), n, "x-sim-latency", "300ms")
	calls := e.Sim.Calls("/v1/chat/completions") - before
	stillHeld := e.Sim.InFlight()
	bWG.Wait()
	t.Logf("tenant A: %d upstream calls with %d of tenant B's in flight; collisions %d", calls, stillHeld,
		e.Stat("wasmcustom.modelcache_route.chat.coalesce.collisions"))
	if calls != 1 {
		t.Fatalf("tenant A's %d identical requests made %d upstream calls, want exactly 1", n, calls)
	}
	sameAnswers(t, rs)
	if bBad.Load() != 0 {
		t.Fatalf("%d of tenant B's requests failed", bBad.Load())
	}
}
