package main

import (
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/modelcache/modelcache/cachecore"
)

// Hostile or unusual YAML: the linter must read a file as Envoy or
// Kubernetes will, and never crash or hang on it.

func wasmPluginWith(pluginConfig string) string {
	return `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: modelcache, namespace: ml}
spec:
  url: oci://registry.example.com/modelcache@sha256:00
  pluginConfig:
` + pluginConfig
}

func envoyFilterWith(configuration string) string {
	return `http_filters:
- name: envoy.filters.http.wasm
  typed_config:
    "@type": ` + wasmFilterType + `
    config:
      root_id: modelcache
      configuration:
` + configuration
}

func TestLintAliasCycleIsAFinding(t *testing.T) {
	defer debug.SetMaxStack(debug.SetMaxStack(64 << 20)) // a crash, not a 1 GB stack
	for _, y := range []string{
		wasmPluginWith("    &x\n    routes: [*x]\n"),
		"static_resources: &x\n  listeners: [*x]\n",
	} {
		done := make(chan *linter, 1)
		go func() { done <- lintBytes("cycle.yaml", []byte(y)) }()
		select {
		case l := <-done:
			if len(l.findings) == 0 || !strings.Contains(l.findings[0].msg, "alias") {
				t.Errorf("cyclic aliases: findings %v", l.findings)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("lint of a cyclic alias still running after 10s:\n%s", y)
		}
	}
}

func TestLintAliasExpansionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol,lol]\n")
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		b.WriteString(n + ": &" + n + " [")
		for i := 0; i < 10; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("*" + prev)
		}
		b.WriteString("]\n")
		prev = n
	}
	y := b.String()
	done := make(chan struct{})
	go func() { lintBytes("laughs.yaml", []byte(y)); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("lint of a %d-byte file still running after 10s", len(y))
	}
}

func TestLintDuplicateKeyIsAFinding(t *testing.T) {
	good := `{\"routes\":[{\"name\":\"chat\",\"kind\":\"chat\",\"path_prefix\":\"/v1/chat\"}]}`
	bad := `{\"routes\":[{\"name\":\"chat\",\"kind\":\"chat\",\"path_prefix\":\"/v1/chat\",\"ttl\":\"5 minutes\"}]}`
	y := envoyFilterWith(`        "@type": ` + stringValue + `
        value: "` + good + `"
        value: "` + bad + `"
`)
	l := lintBytes("envoy.yaml", []byte(y))
	if len(l.findings) == 0 {
		t.Fatalf("accepted: Envoy hands the filter the second value, which it refuses (routes[0].ttl: invalid duration)")
	}
}

func TestLintWasmPluginYAML11Booleans(t *testing.T) {
	y := wasmPluginWith("    l2: {cluster: webdis, write: off}\n    routes:\n    - {name: chat, kind: chat, path_prefix: /v1/chat/completions}\n")
	asSent := `{"l2":{"cluster":"webdis","write":false},"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions"}]}`
	_, filterErr := cachecore.ParseConfig([]byte(asSent))
	l := lintBytes("wp.yaml", []byte(y))
	if filterErr != nil && len(l.findings) == 0 {
		t.Errorf("write: off: linter accepts; the filter gets %s and refuses: %v", asSent, filterErr)
	}
	y = wasmPluginWith("    routes:\n    - {name: chat, kind: chat, path_prefix: /v1/chat/completions, shared: yes}\n")
	asSent = `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","shared":true}]}`
	_, filterErr = cachecore.ParseConfig([]byte(asSent))
	l = lintBytes("wp.yaml", []byte(y))
	if filterErr == nil && len(l.findings) != 0 {
		t.Errorf("shared: yes: the filter accepts %s, the linter refuses: %v", asSent, l.findings)
	}
}

func TestLintWasmPluginMergeKey(t *testing.T) {
	y := wasmPluginWith(`    routes:
    - &chat
      name: chat
      kind: chat
      path_prefix: /v1/chat/completions
    - <<: *chat
      name: chat2
      path_prefix: /v2/chat/completions
`)
	var m map[string]any
	if err := yaml.Unmarshal([]byte(y), &m); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(m["spec"].(map[string]any)["pluginConfig"])
	if _, err := cachecore.ParseConfig(js); err != nil {
		t.Fatalf("merged config invalid: %v", err)
	}
	if l := lintBytes("wp.yaml", []byte(y)); len(l.findings) != 0 {
		t.Fatalf("the filter receives %s and accepts it; the linter refuses: %v", js, l.findings)
	}
}
