package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/e2e/modelsim"
	"github.com/modelcache/modelcache/internal/wasmbuild"
)

// Acceptance of "Result cache done right" on real Envoy --concurrency 2.

const resultRoutes = `{
  "upstream_cluster": "model",
  "routes": [
    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "10m",
     "validate": [{"path": "choices.0.message.content", "type": "string", "non_empty": true}]},
    {"name": "emb", "kind": "embeddings", "path_prefix": "/v1/embeddings"},
    {"name": "classify", "kind": "classify", "path_exact": "/v1/classify",
     "confidence": {"path": "score", "tiers": [{"min": 0.9, "ttl": "1h"}, {"min": 0.6, "ttl": "1m"}]}}
  ]
}`

func TestCanonicalKeysShareAnEntry(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: resultRoutes})
	url := e.URL + "/v1/chat/completions"
	base := `{"model":"sim-chat","messages":[{"role":"user","content":"Hi"}],"temperature":1.0,"seed":42,"tools":[{"type":"function","function":{"name":"f","parameters":{}}}]}`
	expectCS(t, do(t, "POST", url, base, "authorization", "Bearer a"), "fwd=miss", "stored")
	for _, same := range []string{
		"{\n \"seed\": 42,\n \"temperature\": 1.00,\n \"tools\":[{\"function\":{\"parameters\":{},\"name\":\"f\"},\"type\":\"function\"}],\n \"model\":\"sim-chat\",\n \"messages\":[{\"content\":\"Hi\",\"role\":\"user\"}]}",
		`{"model":"sim-chat","messages":[{"role":"user","content":"\u0048i"}],"temperature":1e0,"seed":42,"tools":[{"type":"function","function":{"name":"f","parameters":{}}}]}`,
	} {
		expectCS(t, do(t, "POST", url, same, "authorization", "Bearer a"), "hit")
	}
	for name, diff := range map[string]string{
		"model":    strings.Replace(base, `"sim-chat"`, `"sim-chat-large"`, 1),
		"message":  strings.Replace(base, `"Hi"`, `"Hello"`, 1),
		"tool":     strings.Replace(base, `"name":"f"`, `"name":"g"`, 1),
		"sampling": strings.Replace(base, `1.0`, `0.2`, 1),
		// An integer written as a float is another request to a typed
		// model server (issue 13 item 8).
		"float seed": strings.Replace(base, `"seed":42`, `"seed":42.0`, 1),
	} {
		r := do(t, "POST", url, diff, "authorization", "Bearer a")
		if !strings.Contains(r.CacheStatus(), "fwd=miss") {
			t.Errorf("%s: %q, want a miss", name, r.CacheStatus())
		}
	}
	if got := e.Sim.Calls("/v1/chat/completions"); got != 6 {
		t.Fatalf("model calls = %d, want 6", got)
	}
}

func TestTenantAnswersStayWithTheTenant(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: resultRoutes})
	url := e.URL + "/v1/chat/completions"
	// Tell the simulator to make every answer unique, so a leak would show.
	if err := e.Sim.UpdateKnobs(func(k *modelsim.Knobs) { k.Nondeterministic = true }); err != nil {
		t.Fatal(err)
	}
	body := chat("my private question")
	a := do(t, "POST", url, body, "authorization", "Bearer tenant-a")
	b := do(t, "POST", url, body, "authorization", "Bearer tenant-b")
	expectCS(t, b, "fwd=miss")
	if bytes.Equal(a.Body, b.Body) {
		t.Fatal("tenant B received tenant A's answer")
	}
	for i := 0; i < 5; i++ {
		ra := do(t, "POST", url, body, "authorization", "Bearer tenant-a")
		rb := do(t, "POST", url, body, "authorization", "Bearer tenant-b")
		if !bytes.Equal(ra.Body, a.Body) || !bytes.Equal(rb.Body, b.Body) {
			t.Fatal("an answer crossed tenants")
		}
	}
	before := e.Sim.TotalCalls()
	for i := 0; i < 3; i++ {
		expectCS(t, do(t, "POST", url, body), "fwd=bypass", "detail=no-identity")
	}
	if e.Sim.TotalCalls() != before+3 {
		t.Fatal("anonymous requests were answered from cache")
	}
	if got := e.WaitStat("wasmcustom.modelcache_route.chat.bypass.no_identity", 3); got != 3 {
		t.Fatalf("no_identity = %d", got)
	}
}

// TestNeverCachedInEnvoy: every failure reaches the client and is never
// stored; each is visible by reason in Envoy's stats.
func TestNeverCachedInEnvoy(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: resultRoutes, RouteTimeout: "1s"})
	url := e.URL + "/v1/chat/completions"
	tests := []struct {
		name    string
		knobs   func(k *modelsim.Knobs)
		body    string
		stat    string
		wantErr bool // the client sees an error status
	}{
		{"500", func(k *modelsim.Knobs) { k.Status = 500 }, "", "refused_status.500", true},
		{"503", func(k *modelsim.Knobs) { k.Status = 503 }, "", "refused_status.503", true},
		{"429", func(k *modelsim.Knobs) { k.Status = 429 }, "", "refused_status.429", true},
		{"400", func(k *modelsim.Knobs) { k.Status = 400 }, "", "refused_status.400", true},
		{"upstream reset", func(k *modelsim.Knobs) { k.Fault = modelsim.FaultReset }, "", "refused.upstream_reset", true},
		{"upstream timeout", func(k *modelsim.Knobs) { k.Fault = modelsim.FaultTimeout }, "", "refused.upstream_timeout", true},
		{"malformed JSON", func(k *modelsim.Knobs) { k.Fault = modelsim.FaultMalformed }, "", "refused.malformed_json", false},
		{"finish_reason length", func(k *modelsim.Knobs) { k.FinishReason = "length" }, "", "refused.finish_reason", false},
		{"empty content", func(k *modelsim.Knobs) { k.Fault = modelsim.FaultEmpty }, "", "refused.empty_content", false},
		{"finish_reason content_filter", func(k *modelsim.Knobs) { k.FinishReason = "content_filter" }, "", "refused.finish_reason", false},
		{"oversized request", nil, fmt.Sprintf(`{"model":"sim-chat","messages":[{"role":"user","content":%q}]}`, strings.Repeat("long ", 30000)), "bypass.body_too_large", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.Sim.SetKnobs(modelsim.Knobs{}); err != nil {
				t.Fatal(err)
			}
			if tc.knobs != nil {
				if err := e.Sim.UpdateKnobs(tc.knobs); err != nil {
					t.Fatal(err)
				}
			}
			body := tc.body
			if body == "" {
				body = chat("never cache: " + tc.name)
			}
			stat := "wasmcustom.modelcache_route.chat." + tc.stat
			before := e.Stat(stat)
			calls := e.Sim.Calls("/v1/chat/completions")
			for i := 0; i < 2; i++ {
				r := do(t, "POST", url, body, "authorization", "Bearer a")
				if strings.Contains(r.CacheStatus(), "stored") || strings.Contains(r.CacheStatus(), "hit") {
					t.Fatalf("cached: %s", r.CacheStatus())
				}
				if tc.wantErr && r.Status < 400 {
					t.Fatalf("status %d", r.Status)
				}
			}
			if got := e.Sim.Calls("/v1/chat/completions") - calls; got != 2 {
				t.Fatalf("model calls = %d, want 2: nothing may be stored", got)
			}
			if got := e.WaitStat(stat, before+2); got != before+2 {
				t.Fatalf("%s = %d, want %d", stat, got, before+2)
			}
		})
	}
	if err := e.Sim.SetKnobs(modelsim.Knobs{}); err != nil {
		t.Fatal(err)
	}
	// An oversized response: two embeddings of 8000 dimensions (~210 KB of JSON)
	// exceed max_entry_bytes (128 KiB).
	big := `{"model":"sim-embed","dimensions":8000,"input":["big","bigger"]}`
	for i := 0; i < 2; i++ {
		expectCS(t, do(t, "POST", e.URL+"/v1/embeddings", big, "authorization", "Bearer a"), "detail=too-large")
	}
	if got := e.WaitStat("wasmcustom.modelcache_route.emb.refused.too_large", 2); got != 2 {
		t.Fatalf("refused.too_large = %d", got)
	}
	// A rule on the response body: content must be non-empty text; the
	// simulator's tool-call answer has none, and the route's rule refuses it.
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","finish_reasons":["stop","tool_calls"],
	  "validate":[{"path":"choices.0.message.content","type":"string","non_empty":true}]}]}`
	e2 := startEnvoy(t, envoyOpts{Config: cfg})
	tools := `{"model":"sim-chat","messages":[{"role":"user","content":"What is the weather in Paris?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{}}}]}`
	for i := 0; i < 2; i++ {
		expectCS(t, do(t, "POST", e2.URL+"/v1/chat/completions", tools, "authorization", "Bearer a"), "detail=validation")
	}
	if got := e2.WaitStat("wasmcustom.modelcache_route.chat.refused.validation", 2); got != 2 {
		t.Fatalf("refused.validation = %d", got)
	}
}

func TestConfidenceTTLs(t *testing.T) {
	e := startEnvoy(t, envoyOpts{Config: resultRoutes})
	for _, tc := range []struct {
		score string
		want  string
	}{
		{"0.95", "ttl=3600"},
		{"0.7", "ttl=60"},
		{"0.3", "detail=low-confidence"},
	} {
		body := fmt.Sprintf(`{"model":"clf","input":"is this spam? [score=%s]"}`, tc.score)
		r := do(t, "POST", e.URL+"/v1/classify", body, "authorization", "Bearer a")
		expectCS(t, r, tc.want)
		again := do(t, "POST", e.URL+"/v1/classify", body, "authorization", "Bearer a")
		if tc.score == "0.3" {
			expectCS(t, again, "fwd=miss")
		} else {
			expectCS(t, again, "hit")
		}
	}
}

// TestMemoryStaysBounded writes 20× the table's capacity of distinct keys:
// live entries never exceed the capacity, and Envoy's resident memory grows
// by at most the documented bound plus a stated margin.
func TestMemoryStaysBounded(t *testing.T) {
	const buckets, ways, maxEntry = 64, 4, 16 << 10
	capacity := buckets * ways
	cfg := fmt.Sprintf(`{"store":{"buckets":%d,"ways":%d,"max_entry_bytes":%d},
	  "routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings"}]}`, buckets, ways, maxEntry)
	e := startEnvoy(t, envoyOpts{Config: cfg})
	url := e.URL + "/v1/embeddings"
	// ~8 KiB responses: 384-dimensional vectors.
	req := func(i int) string {
		return fmt.Sprintf(`{"model":"sim-embed","dimensions":384,"input":"document chunk number %d"}`, i)
	}
	// Warm up: fill the table once, then measure from there.
	parallel(capacity, 8, func(i int) { do(t, "POST", url, req(i), "authorization", "Bearer a") })
	base := rssBytes(t, e.proc.Pid())
	maxEntries := int64(0)
	for round := 0; round < 20; round++ {
		parallel(capacity, 8, func(i int) {
			r := do(t, "POST", url, req(capacity*(round+1)+i), "authorization", "Bearer a")
			if r.Status != 200 {
				t.Errorf("status %d", r.Status)
			}
		})
		if n := e.Stat("wasmcustom.modelcache.entries"); n > maxEntries {
			maxEntries = n
		}
	}
	grown := rssBytes(t, e.proc.Pid()) - base
	bound := int64(buckets*ways*(maxEntry+100) + buckets*(20*ways+120) + 256*1200)
	const margin = 24 << 20 // VM heaps copying entries in and allocator slack
	t.Logf("entries max %d (capacity %d); RSS %d MiB at start, grew %.1f MiB; bound %.1f MiB + margin %d MiB",
		maxEntries, capacity, base>>20, float64(grown)/(1<<20), float64(bound)/(1<<20), margin>>20)
	if maxEntries > int64(capacity) {
		t.Fatalf("%d live entries > capacity %d", maxEntries, capacity)
	}
	if maxEntries < int64(capacity)*9/10 {
		t.Fatalf("only %d live entries: the table is not being used", maxEntries)
	}
	if grown > bound+margin {
		t.Fatalf("Envoy grew by %d bytes, over bound %d + margin %d", grown, bound, margin)
	}
	if ev := e.Stat("wasmcustom.modelcache.evictions"); ev < int64(15*capacity) {
		t.Fatalf("evictions = %d", ev)
	}
}

func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestInvalidConfigsRefusedAtStart: Envoy refuses each bad configuration
// when it loads the plugin, and its log names the offending field.
func TestInvalidConfigsRefusedAtStart(t *testing.T) {
	requireEnvoy(t)
	raw, err := os.ReadFile(filepath.Join(repoRoot(), "envoy/envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	wasm := wasmbuild.Filter(t)
	for _, tc := range []struct{ name, config, field string }{
		{"bad duration", `{"routes":[{"name":"c","kind":"chat","path_prefix":"/v1","ttl":"5 minutes"}]}`, `routes[0].ttl: invalid duration "5 minutes"`},
		{"unknown field", `{"routes":[{"name":"c","kind":"chat","path_prefix":"/v1","tll":"5m"}]}`, `routes[0].tll: unknown field`},
		{"error status", `{"routes":[{"name":"c","kind":"chat","path_prefix":"/v1","statuses":[200,500]}]}`, `routes[0].statuses[1]: must be between 200 and 299`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := renderConfig(t, string(raw), nil, wasm, tc.config, "")
			path := filepath.Join(t.TempDir(), "envoy.yaml")
			os.WriteFile(path, []byte(cfg), 0o644)
			cmd := exec.Command(envoyBin, "--mode", "validate", "-c", path, "--log-level", "error")
			cmd.Dir = repoRoot()
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("Envoy accepted the configuration:\n%s", out)
			}
			if !strings.Contains(string(out), "invalid configuration: "+tc.field) {
				t.Fatalf("log does not name the field %q:\n%s", tc.field, out)
			}
		})
	}
}
