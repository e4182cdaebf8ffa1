package main

import (
	"strings"
	"testing"
)

// An Istio EnvoyFilter is a Kubernetes manifest: kubectl reads it as YAML
// 1.1 with merge keys resolved before istiod ever sees it (the linter
// knows this for a WasmPlugin: TestLintWasmPluginMergeKey). Two
// EnvoyFilters for two workloads that share the wasm VM settings through
// an anchor and "<<", each with its own configuration, reach Envoy as two
// whole filters. The linter reads an EnvoyFilter as an Envoy file ("<<" a
// plain key): the second filter's name, root id and VM are invisible to
// it, so its configuration is skipped as "not modelcache", and a broken
// one passes (make lint-config runs with -allow-none).
func TestLintEnvoyFilterMergeKeyIsResolved(t *testing.T) {
	envoyFilter := func(name, app, config string) string {
		return `- apiVersion: networking.istio.io/v1alpha3
  kind: EnvoyFilter
  metadata: {name: ` + name + `, namespace: ml}
  spec:
    workloadSelector: {labels: {app: ` + app + `}}
    configPatches:
    - applyTo: EXTENSION_CONFIG
      patch:
        operation: ADD
        value:
          name: ` + name + `
          typed_config:
            "@type": ` + wasmFilterType + `
            config:
` + config
	}
	const first = `              <<: &wasm
                name: modelcache
                root_id: modelcache
                allow_on_headers_stop_iteration: true
                vm_config:
                  vm_id: modelcache
                  runtime: envoy.wasm.runtime.v8
                  code: {local: {filename: /var/local/modelcache/modelcache.wasm}}
              configuration:
                "@type": type.googleapis.com/google.protobuf.StringValue
                value: '{"routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "10m"}]}'
`
	const second = `              <<: *wasm
              configuration:
                "@type": type.googleapis.com/google.protobuf.StringValue
                value: '{"routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "10 minutes"}]}'
`
	y := "apiVersion: v1\nkind: List\nitems:\n" + envoyFilter("modelcache-rag", "rag", first) + envoyFilter("modelcache-agent", "agent", second)
	l := lintBytes("mesh.yaml", []byte(y))
	if l.checked != 2 || len(l.findings) != 1 || !strings.Contains(l.findings[0].msg, "routes[0].ttl") {
		t.Fatalf("kubectl resolves the merge keys: both EnvoyFilters carry modelcache, the second with an invalid ttl; linter: checked %d, findings %v, skipped %v",
			l.checked, l.findings, l.skipped)
	}
}
