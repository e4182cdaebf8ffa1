package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const chatRoutes = `{
  "upstream_cluster": "model",
  "routes": [
    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "10m"}
  ]
}`

func TestPluginStartsOnEveryWorker(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: chatRoutes, Concurrency: 2})
	// One VM per worker plus the main-thread VM (and the base VM that
	// holds the compiled code); the canary is gone by now.
	if got := e.Stat("wasm.envoy.wasm.runtime.v8.active"); got < 3 {
		t.Fatalf("active wasm VMs = %d, want >= 3 (2 workers + main)", got)
	}
	if n := strings.Count(e.Log(), "started with"); n < 3 {
		t.Fatalf("plugin started %d times, want one per worker + main + canary:\n%s", n, e.Log())
	}
}

// A request the filter does not cache, and its response, pass through
// byte for byte (compared with asking the simulator directly).
func TestPassThroughIsByteIdentical(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: chatRoutes})
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/v1/models", ""},
		{"POST", "/v1/embeddings", `{"model":"e","input":["a","b"]}`},
		{"POST", "/v1/completions", `{"model":"c","prompt":"hello"}`},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			direct := do(t, tc.method, e.SimURL+tc.path, tc.body, "authorization", "Bearer a")
			via := do(t, tc.method, e.URL+tc.path, tc.body, "authorization", "Bearer a")
			if via.Status != direct.Status || !bytes.Equal(via.Body, direct.Body) {
				t.Fatalf("differs:\ndirect %d %s\nenvoy  %d %s", direct.Status, direct.Body, via.Status, via.Body)
			}
			if via.CacheStatus() != "" {
				t.Fatalf("Cache-Status on an uncached route: %q", via.CacheStatus())
			}
			for name := range direct.Header {
				if name == "Date" || name == "Server" {
					continue
				}
				if got, want := via.Header.Values(name), direct.Header.Values(name); strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("header %s: %q, direct %q", name, got, want)
				}
			}
		})
	}
}

func TestMissThenHit(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: chatRoutes})
	body := chat("Name three rivers in Europe.")
	first := do(t, "POST", e.URL+"/v1/chat/completions", body, "authorization", "Bearer tenant-a")
	expectCS(t, first, "modelcache; fwd=miss", "stored")
	second := do(t, "POST", e.URL+"/v1/chat/completions", body, "authorization", "Bearer tenant-a")
	expectCS(t, second, "modelcache; hit")
	if !bytes.Equal(first.Body, second.Body) || first.Status != 200 || second.Status != 200 {
		t.Fatalf("bodies differ:\n%s\n%s", first.Body, second.Body)
	}
	if n := e.Sim.Calls("/v1/chat/completions"); n != 1 {
		t.Fatalf("simulator counted %d calls, want 1", n)
	}
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.requests.hit", 1); got != 1 {
		t.Fatalf("hit stat = %d", got)
	}
}

// Many requests over both workers — hits, misses, bypasses and refusals —
// leave no failed VM and no panic behind.
func TestTenThousandRequestsNoVMFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	e := startEnvoy(t, envoyOpts{Config: chatRoutes})
	var bad atomic.Int64
	parallel(10000, 16, func(i int) {
		var r *response
		var err error
		switch i % 4 {
		case 0, 1: // a small hot set: mostly hits
			r, err = tryDo(t.Context(), "POST", e.URL+"/v1/chat/completions", chat(fmt.Sprint("hot ", i%20)), "authorization", "Bearer t")
		case 2: // distinct keys: misses and stores (evictions later)
			r, err = tryDo(t.Context(), "POST", e.URL+"/v1/chat/completions", chat(fmt.Sprint("cold ", i)), "authorization", "Bearer t")
		case 3: // no identity: bypass
			r, err = tryDo(t.Context(), "POST", e.URL+"/v1/chat/completions", chat("anon"))
		}
		if err != nil || r.Status != http.StatusOK {
			bad.Add(1)
		}
	})
	if bad.Load() != 0 {
		t.Fatalf("%d requests failed", bad.Load())
	}
	st := e.Stats()
	for name, v := range st {
		if (strings.Contains(name, "wasm") && strings.Contains(name, "fail")) && v != 0 {
			t.Errorf("%s = %d", name, v)
		}
	}
	if st["wasmcustom.modelcache.panics"] != 0 {
		t.Fatalf("panics = %d", st["wasmcustom.modelcache.panics"])
	}
	hits := st["wasmcustom.modelcache_route.chat.requests.hit"]
	if hits < 4000 {
		t.Fatalf("hits = %d, expected most of the hot half to hit", hits)
	}
	t.Logf("hits %d, misses %d, bypass %d, stored %d", hits, st["wasmcustom.modelcache_route.chat.requests.miss"],
		st["wasmcustom.modelcache_route.chat.requests.bypass"], st["wasmcustom.modelcache_route.chat.stored"])
}

// Without allow_on_headers_stop_iteration (Istio's WasmPlugin cannot set it)
// Envoy never hands the body to a filter holding the headers. Under
// header_hold "hold" the filter must notice and let traffic through —
// uncached, never hanging. (Under "auto", the default, it decides late
// instead: istio_test.go.)
func TestWithoutHeaderHoldTrafficFlows(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: `{"header_hold": "hold",` + chatRoutes[1:], NoHeaderHold: true})
	for i := 0; i < 8; i++ {
		start := time.Now()
		r := do(t, "POST", e.URL+"/v1/chat/completions", chat("no hold"), "authorization", "Bearer a")
		if r.Status != 200 {
			t.Fatalf("status %d", r.Status)
		}
		expectCS(t, r, "fwd=bypass", "detail=hold-unsupported")
		t.Logf("request %d: %v", i, time.Since(start))
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("request %d took %v", i, d)
		}
	}
	if e.WaitStat("wasmcustom.modelcache.hold_unsupported", 1) != 1 { // one VM served them all (keep-alive)
		t.Fatal("hold_unsupported not counted")
	}
	if !strings.Contains(e.Log(), "allow_on_headers_stop_iteration") {
		t.Fatal("no warning in the log")
	}
}

// Without allow_on_headers_stop_iteration a purge, whose body Envoy would
// never hand to a filter holding its headers, is answered all the same
// (its headers go on without the token; the body is read as it comes and
// the answer is local), under header_hold late and under auto before the
// VM has seen whether holding works.
func TestPurgeWithoutHeaderHold(t *testing.T) {
	for _, setting := range []string{"late", "auto"} {
		t.Run(setting, func(t *testing.T) {
			cfg := `{"header_hold": "` + setting + `", "purge": {"path": "/modelcache/purge", "token": "late-purge-token-0123456"},` + chatRoutes[1:]
			e := startEnvoy(t, envoyOpts{Config: cfg, NoHeaderHold: true})
			start := time.Now()
			r := do(t, "POST", e.URL+"/modelcache/purge", `{"all":true}`, "authorization", "Bearer late-purge-token-0123456")
			if r.Status != 200 || !strings.Contains(string(r.Body), `"scope"`) || time.Since(start) > 5*time.Second {
				t.Fatalf("purge: status %d after %v: %s", r.Status, time.Since(start), r.Body)
			}
			if n := e.WaitStat("wasmcustom.modelcache.purges", 1); n != 1 {
				t.Fatalf("purges = %d", n)
			}
		})
	}
}
