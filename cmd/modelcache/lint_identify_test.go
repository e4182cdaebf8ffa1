package main

import (
	"strings"
	"testing"
)

// README, "Checking a configuration": wasm filters and WasmPlugins are
// skipped only when none of their "name, root id, vm id, module file or
// url" mentions modelcache. A modelcache configuration that names itself
// in one of those places alone must be linted, not skipped: make
// lint-config runs with -allow-none, so a skipped broken configuration
// passes it silently.
func TestLintIdentifiesModelcacheByEveryDocumentedField(t *testing.T) {
	const broken = `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat","ttl":"10 minutes"}]}`
	quoted := strings.ReplaceAll(broken, `"`, `\"`)
	cases := []struct{ name, file, text string }{
		{"WasmPlugin whose root id (spec.pluginName) is modelcache", "mesh.yaml", `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: llm-cache, namespace: ml}
spec:
  url: oci://registry.example.com/ml/cache@sha256:00
  pluginName: modelcache
  pluginConfig:
    routes:
    - {name: chat, kind: chat, path_prefix: /v1/chat, ttl: 10 minutes}
`},
		{"Envoy wasm filter whose module url is modelcache's", "envoy.yaml", `http_filters:
- name: envoy.filters.http.wasm
  typed_config:
    "@type": ` + wasmFilterType + `
    config:
      name: cache
      vm_config:
        runtime: envoy.wasm.runtime.v8
        code:
          remote:
            http_uri: {uri: "https://artifacts.example.com/modelcache.wasm", cluster: artifacts, timeout: 10s}
            sha256: 0000000000000000000000000000000000000000000000000000000000000000
      configuration: {"@type": ` + stringValue + `, value: "` + quoted + `"}
`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := lintBytes(c.file, []byte(c.text))
			if l.checked != 1 || len(l.findings) != 1 || !strings.Contains(l.findings[0].msg, "routes[0].ttl") {
				t.Fatalf("modelcache configuration not linted: checked %d, findings %v, skipped %v", l.checked, l.findings, l.skipped)
			}
		})
	}
}
