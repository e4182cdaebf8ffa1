package e2e

import (
	"strings"
	"testing"
	"time"
)

// A route the cache does not serve can skip the filter entirely: Envoy's
// per-route FilterConfig{disabled: true}, keyed by the filter's name in
// http_filters, makes Envoy leave the filter out of that request's chain,
// so no wasm stream context is created and the filter never runs. The
// shipped envoy/envoy.yaml does that for /v1/models.
//
// To see that the filter is really not called, the filter here is told to
// cache /v1/models as well: had a request reached it, it would carry a
// Cache-Status and move the route's stats. The control is the same config
// with the opt-out keyed by a name that is not the filter's, where it does.

const optOutFilterJSON = `{
  "upstream_cluster": "model",
  "routes": [
    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "10m"},
    {"name": "models", "kind": "json", "path_prefix": "/v1/models", "ttl": "10m"}
  ]
}`

// The opt-out as envoy/envoy.yaml ships it.
const shippedOptOut = `                typed_per_filter_config:
                  envoy.filters.http.wasm:
                    "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
                    disabled: true
`

func TestOptedOutRouteNeverCallsTheFilter(t *testing.T) {
	t.Run("shipped envoy.yaml", func(t *testing.T) {
		e := startEnvoy(t, envoyOpts{Config: optOutFilterJSON, Edit: func(t *testing.T, cfg string) string {
			if strings.Count(cfg, shippedOptOut) != 1 {
				t.Fatal("envoy/envoy.yaml no longer disables the filter on one route as this test expects")
			}
			return cfg
		}})
		checkOptOut(t, e, true)
	})
	// The control: the same route and FilterConfig keyed by the plugin's
	// config.name ("modelcache") instead of the http_filters entry's name
	// names no filter, and Envoy ignores it: the filter runs.
	t.Run("control keyed by the plugin name", func(t *testing.T) {
		e := startEnvoy(t, envoyOpts{Config: optOutFilterJSON, Edit: func(t *testing.T, cfg string) string {
			if strings.Count(cfg, shippedOptOut) != 1 || !strings.Contains(cfg, "                name: modelcache\n") {
				t.Fatal("envoy/envoy.yaml changed: no single opt-out, or the plugin is not named modelcache")
			}
			return strings.Replace(cfg, shippedOptOut, strings.Replace(shippedOptOut, "envoy.filters.http.wasm:", "modelcache:", 1), 1)
		}})
		checkOptOut(t, e, false)
	})
	// Istio's way: the filter arrives by ECDS under the WasmPlugin's
	// <namespace>.<name>, and the route's typed_per_filter_config (what
	// an EnvoyFilter HTTP_ROUTE patch adds) is keyed by that name.
	t.Run("ECDS filter keyed by its ECDS name", func(t *testing.T) {
		e := startEnvoy(t, envoyOpts{Config: optOutFilterJSON, ConfigFile: ecdsBoot, ECDS: ecdsResource,
			Edit: func(t *testing.T, cfg string) string {
				const catchAll = "              - match: {prefix: \"/\"}\n"
				if strings.Count(cfg, catchAll) != 1 || !strings.Contains(cfg, "- name: ml-clients.modelcache\n") {
					t.Fatalf("%s changed: no single catch-all route or no ml-clients.modelcache filter", ecdsBoot)
				}
				route := "              - match: {path_separated_prefix: \"/v1/models\"}\n" +
					"                route: {cluster: model, timeout: 120s}\n" +
					strings.Replace(shippedOptOut, "envoy.filters.http.wasm:", "ml-clients.modelcache:", 1)
				return strings.Replace(cfg, catchAll, route+catchAll, 1)
			}})
		checkOptOut(t, e, true)
	})
}

// checkOptOut sends POSTs and a GET to /v1/models, then a chat request
// that does pass the filter (so the filter's stats have been seen moving
// past the /v1/models requests), and checks whether the filter saw them.
func checkOptOut(t *testing.T, e *envoyProc, optedOut bool) {
	t.Helper()
	const n = 4
	body := `{"model":"sim-chat","q":"list"}`
	for i := 0; i < n; i++ {
		r := do(t, "POST", e.URL+"/v1/models", body, "authorization", "Bearer tenant-a")
		if r.Status != 404 { // the simulator has no /v1/models
			t.Fatalf("POST /v1/models: status %d, want the simulator's 404: %.300s", r.Status, r.Body)
		}
		if cs := r.CacheStatus(); optedOut && cs != "" {
			t.Fatalf("opted-out route answered with Cache-Status %q: the filter ran", cs)
		} else if !optedOut && !strings.Contains(cs, "modelcache") {
			t.Fatalf("control: Cache-Status %q, want the filter's (it caches /v1/models here)", cs)
		}
	}
	if r := do(t, "GET", e.URL+"/v1/models", ""); r.Status != 404 || r.CacheStatus() != "" {
		t.Fatalf("GET /v1/models: status %d, Cache-Status %q", r.Status, r.CacheStatus())
	}
	chatReq := do(t, "POST", e.URL+"/v1/chat/completions", chat("opt-out marker"), "authorization", "Bearer tenant-a")
	expectCS(t, chatReq, "modelcache; fwd=miss")
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.requests.miss", 1); got != 1 {
		t.Fatalf("chat.requests.miss = %d, want 1", got)
	}

	// Every stat of the models route that is not zero; with the sum of
	// its requests.* counters (one per request the filter decided on).
	models := func() (moved []string, requests int64) {
		for name, v := range e.Stats() {
			if strings.HasPrefix(name, "wasmcustom.modelcache_route.models.") && v != 0 {
				moved = append(moved, name)
				if strings.HasPrefix(name, "wasmcustom.modelcache_route.models.requests.") {
					requests += v
				}
			}
		}
		return moved, requests
	}
	if optedOut {
		if moved, _ := models(); len(moved) != 0 {
			t.Fatalf("the filter counted requests on the opted-out route: %v", moved)
		}
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		moved, requests := models()
		if requests == n {
			return
		}
		if requests > n || time.Now().After(deadline) {
			t.Fatalf("control: models.requests.* sum to %d, want %d (one per POST the filter saw); moved: %v", requests, n, moved)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
