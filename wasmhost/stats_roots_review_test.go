package wasmhost

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/modelcache/modelcache/internal/wasmbuild"
)

// Review Z135 (stats_roots). The filter's defect is in
// filter/runtimestats.go; its test lives here because only this package
// can give one VM a second root context (the harness's Host starts one per
// VM), as Envoy does for two filter configurations that share a vm_id and
// its code (each gets its own root context in the same VM on every
// thread), or a configuration reloaded into the same VM.

const reviewZ135Config = `{
  "upstream_cluster": "upstream",
  "routes": [
    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s"}
  ]
}`

// z135Host starts the product module (one worker) with a JSON chat
// upstream.
func z135Host(t *testing.T) *Host {
	return z135HostWith(t, reviewZ135Config, NewFakeClock(DefaultFakeTime))
}

func z135HostWith(t *testing.T, config string, clock *FakeClock) *Host {
	t.Helper()
	wasm, err := os.ReadFile(wasmbuild.Filter(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mod, err := Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mod.Close(ctx) })
	h, err := New(ctx, mod, Config{
		Workers:                     1,
		PluginConfig:                []byte(config),
		Clock:                       clock,
		Clusters:                    []string{"upstream"},
		AllowOnHeadersStopIteration: true,
		LogLevel:                    LogInfo,
		Upstream: func(u *UpstreamRequest) {
			u.Respond(200, [][2]string{{":status", "200"}, {"content-type", "application/json"}},
				[]byte(`{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"an answer"},"finish_reason":"stop"}]}`))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range h.Logs() {
				t.Log(l.String())
			}
		}
		h.Close()
	})
	return h
}

// addRoot creates and configures a second root context in worker w's VM
// (proxy_on_context_create, proxy_on_vm_start, proxy_on_configure, as
// WasmBase::start and configure do for each plugin of a VM), and returns
// its context id.
func addRoot(t *testing.T, h *Host, w int) uint32 {
	t.Helper()
	var id uint32
	var ok bool
	h.do(w, func(v *vm) {
		root := v.newContext(0)
		id = root.id
		v.tempPlugin = true
		v.invoke(root, "proxy_on_context_create", uint64(root.id), 0)
		root.created = true
		v.tempPlugin = false
		v.invoke(root, "proxy_on_vm_start", uint64(root.id), uint64(len(v.h.cfg.VMConfig)))
		v.tempPlugin = true
		var r uint64
		r, ok = v.invoke(root, "proxy_on_configure", uint64(root.id), uint64(len(v.h.cfg.PluginConfig)))
		ok = ok && r != 0
		v.tempPlugin = false
	})
	if !ok {
		t.Fatal("setup: the second root context did not configure")
	}
	return id
}

// tickRoot delivers proxy_on_tick to root context id of worker w's VM
// (each root context has its own timer in Envoy).
func tickRoot(h *Host, w int, id uint32) {
	h.do(w, func(v *vm) {
		if c := v.contexts[id]; c != nil {
			v.invoke(c, "proxy_on_tick", uint64(id))
		}
	})
}

func z135Miss(t *testing.T, h *Host, i int) { z135Post(t, h, "question number "+strconv.Itoa(i)) }

func z135Post(t *testing.T, h *Host, q string) {
	t.Helper()
	body := `{"model":"m","messages":[{"role":"user","content":"` + q + `"}]}`
	res, err := h.Exchange(0, Request{Headers: [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"},
		{":authority", "models"}, {"authorization", "Bearer tenant-a"}, {"content-type", "application/json"}}, Body: []byte(body)})
	if err != nil || res.Status != 200 {
		t.Fatalf("request %q: %v %+v", q, err, res)
	}
}

func z135Counter(h *Host, name string) uint64 {
	v, _ := h.Counter(name)
	return v
}

// README (Stats): modelcache.vm_heap_allocs is "heap allocations ... of
// the Go runtime inside the VMs, added on every tick" (summed over VMs).
// filter/runtimestats.go keeps the last reading in the root context's
// stats (plugin.stats.runtime), but the runtime it reads is the VM's: with
// two root contexts in one VM each adds the same allocations, so the
// counter reports every allocation of that VM twice (and a second root's
// first flush adds the VM's whole history since it started, as its last
// reading starts at 0). Expected: each allocation of a VM counted once,
// whatever the number of root contexts in it — the second root's tick
// right after the first's adds (almost) nothing.
func TestTwoRootsInOneVMCountHeapAllocsOnce(t *testing.T) {
	h := z135Host(t)
	for i := range 3 {
		z135Miss(t, h, i)
	}
	h.Tick(0)
	before := z135Counter(h, "modelcache.vm_heap_allocs")
	root2 := addRoot(t, h, 0)
	tickRoot(h, 0, root2)
	h.Tick(0)
	afterStart := z135Counter(h, "modelcache.vm_heap_allocs")
	tickRoot(h, 0, root2)
	for i := range 30 {
		z135Miss(t, h, 100+i)
	}
	base := z135Counter(h, "modelcache.vm_heap_allocs")
	h.Tick(0) // the first root: adds the 30 misses' allocations
	first := z135Counter(h, "modelcache.vm_heap_allocs") - base
	tickRoot(h, 0, root2) // the second root, at once: nothing new happened in the VM
	second := z135Counter(h, "modelcache.vm_heap_allocs") - base - first
	t.Logf("counter before the second root: %d; second root's start added %d; 30 misses: first root's tick added %d, second root's tick right after added %d", before, afterStart-before, first, second)
	if first == 0 {
		t.Fatal("setup: the first root's tick reported no allocations")
	}
	if second*4 > first {
		t.Fatalf("modelcache.vm_heap_allocs: 30 misses' allocations counted by both root contexts of one VM: %d by the first root's tick, %d more by the second's right after (the same allocations counted twice)", first, second)
	}
}

// reload is a configuration reload into the same VMs (the same vm_id and
// code): every VM gets a root context for config, the old one ends
// (proxy_on_done, proxy_on_delete) and new streams and ticks go to the
// new one.
func reload(t *testing.T, h *Host, config string) {
	t.Helper()
	h.cfg.PluginConfig = []byte(config)
	for _, th := range h.threads() {
		id := addRoot(t, h, th)
		h.do(th, func(v *vm) {
			old := v.root
			if r, ok := v.invoke(old, "proxy_on_done", uint64(old.id)); !ok || r != 0 {
				v.invoke(old, "proxy_on_delete", uint64(old.id))
			}
			v.root = v.contexts[id]
		})
	}
}

// README (Stats): modelcache_route.<route>.slo.breached is a gauge, "1 while the
// SLO is breached"; the shipped alert (envoy/observability/alerts.yaml)
// fires while it is above 0. A VM's plugin sets it only on a transition
// (filter/slo.go) and nothing takes it back when the plugin ends
// (OnPluginDone takes out coalesce_waiting only, RATIONALE "A proxy-wide
// gauge moves by each VM's change"). Reload the configuration without the
// route's freshness_slo while it is breached: the route no longer has an
// SLO, nothing flushes one, and the gauge reads 1 — the alert fires — until
// the proxy restarts. Expected: once no configuration has the SLO, the
// gauge no longer says it is breached.
func TestSLOBreachedGaugeAfterReloadWithoutTheSLO(t *testing.T) {
	withSLO := `{"upstream_cluster": "upstream", "routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "freshness_slo":{"max_age":"10s","max_fraction":0.05,"window":"1m","min_samples":10}}]}`
	withoutSLO := `{"upstream_cluster": "upstream", "routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h"}]}`
	clock := NewFakeClock(DefaultFakeTime)
	h := z135HostWith(t, withSLO, clock)
	for k := range 5 {
		z135Post(t, h, "slo "+strconv.Itoa(k))
	}
	clock.Advance(20 * time.Second) // every hit from now on is past max_age
	for range 2 {
		for i := range 20 {
			z135Post(t, h, "slo "+strconv.Itoa(i%5))
		}
		h.AdvanceAndTick(2 * time.Second)
	}
	if g, _ := h.Gauge("modelcache_route.chat.slo.breached"); g != 1 {
		t.Fatalf("setup: breached gauge %d, want 1", g)
	}
	reload(t, h, withoutSLO)
	for round := range 60 { // fresh answers for two windows
		z135Post(t, h, "new "+strconv.Itoa(round))
		h.AdvanceAndTick(2 * time.Second)
	}
	if g, _ := h.Gauge("modelcache_route.chat.slo.breached"); g != 0 {
		rate, _ := h.Gauge("modelcache_route.chat.slo.stale_rate_ppm")
		t.Fatalf("two minutes after a reload that removed route chat's freshness_slo (old plugins ended): modelcache_route.chat.slo.breached = %d, stale_rate_ppm = %d; the shipped alert keeps firing for an SLO that no longer exists", g, rate)
	}
}
