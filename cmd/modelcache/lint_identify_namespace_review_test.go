package main

import "testing"

// README, "Checking a configuration": "Wasm filters and WasmPlugins whose
// name, root id (a WasmPlugin's pluginName), vm id, module file or url
// ... do not mention modelcache are skipped". A WasmPlugin's namespace is
// none of those: another plugin deployed in a namespace named modelcache
// (the cache's own, or the model servers') is no modelcache
// configuration, yet the linter checks it with modelcache's parser and
// fails it ("routes: is required"), so make lint-config and any CI that
// lints the namespace's manifests refuse a valid plugin.
func TestLintSkipsOtherPluginsInANamespaceNamedModelcache(t *testing.T) {
	cases := []struct{ name, text string }{
		{"basic auth plugin in namespace modelcache", `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: basic-auth
  namespace: modelcache
spec:
  url: oci://ghcr.io/istio-ecosystem/wasm-extensions/basic_auth:1.12.0
  pluginName: basic_auth
  pluginConfig:
    basic_auth_rules:
    - {prefix: "/", request_methods: ["GET"], credentials: ["ok:test"]}
`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := lintBytes("mesh.yaml", []byte(c.text))
			if l.checked != 0 || len(l.findings) != 0 || len(l.skipped) != 1 {
				t.Fatalf("another plugin linted as modelcache: checked %d, findings %v, skipped %v", l.checked, l.findings, l.skipped)
			}
		})
	}
}
