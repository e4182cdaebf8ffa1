package main

import (
	"strings"
	"testing"
)

// envoyTwoListeners is an Envoy bootstrap with the modelcache filter on two
// listeners; conf is the text after each filter's "configuration:".
func envoyTwoListeners(confA, confB string) string {
	hcm := func(name, conf string) string {
		return `  - name: ` + name + `
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ` + name + `
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": ` + wasmFilterType + `
              config:
                root_id: modelcache
                vm_config: {runtime: envoy.wasm.runtime.v8, code: {local: {filename: /etc/envoy/modelcache.wasm}}}
                configuration:` + conf + `
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
`
	}
	return "static_resources:\n  listeners:\n" + hcm("a", confA) + hcm("b", confB)
}

const sharedGoodConfig = `{\"upstream_cluster\":\"m\",\"routes\":[{\"name\":\"chat\",\"kind\":\"chat\",\"path_prefix\":\"/v1/chat\"}]}`

// Envoy's YAML reader (yaml-cpp) has no merge keys: "<<" is a plain key
// (envoyproxy/envoy#12926), so listener b's configuration reaches Envoy as
// {"<<": {...}}, an Any without "@type", and Envoy refuses the bootstrap.
// The linter resolves merge keys in every file and passes it.
func TestLintEnvoyFileMergeKeyIsNotResolved(t *testing.T) {
	ind := "\n" + strings.Repeat(" ", 18)
	y := envoyTwoListeners(" &conf"+ind+`"@type": `+stringValue+ind+`value: "`+sharedGoodConfig+`"`,
		ind+"<<: *conf")
	l := lintBytes("envoy.yaml", []byte(y))
	if len(l.findings) == 0 {
		t.Fatalf("no finding (checked %d): Envoy reads listener b's configuration as {\"<<\": ...} with no @type and refuses it", l.checked)
	}
}

// An alias for the StringValue is followed by Envoy (yaml-cpp resolves
// aliases); the linter refuses it as not a string.
func TestLintEnvoyAliasedConfigurationValue(t *testing.T) {
	ind := "\n" + strings.Repeat(" ", 18)
	y := envoyTwoListeners(ind+`"@type": `+stringValue+ind+`value: &cfg "`+sharedGoodConfig+`"`,
		ind+`"@type": `+stringValue+ind+`value: *cfg`)
	if l := lintBytes("envoy.yaml", []byte(y)); len(l.findings) != 0 || l.checked != 2 {
		t.Fatalf("aliased configuration value: checked %d, findings %v; Envoy reads both listeners' value as the same JSON string", l.checked, l.findings)
	}
}

// kubectl resolves aliases: two WasmPlugins in a kind: List sharing one
// pluginConfig by alias get the same JSON. The linter refuses the second.
func TestLintWasmPluginAliasedPluginConfig(t *testing.T) {
	y := `apiVersion: v1
kind: List
items:
- apiVersion: extensions.istio.io/v1alpha1
  kind: WasmPlugin
  metadata: {name: modelcache-a, namespace: ml}
  spec:
    selector: {matchLabels: {app: a}}
    url: oci://registry.example.com/modelcache@sha256:00
    pluginConfig: &cfg
      upstream_cluster: m
      routes:
      - {name: chat, kind: chat, path_prefix: /v1/chat/completions}
- apiVersion: extensions.istio.io/v1alpha1
  kind: WasmPlugin
  metadata: {name: modelcache-b, namespace: ml}
  spec:
    selector: {matchLabels: {app: b}}
    url: oci://registry.example.com/modelcache@sha256:00
    pluginConfig: *cfg
`
	if l := lintBytes("wp.yaml", []byte(y)); len(l.findings) != 0 || l.checked != 2 {
		t.Fatalf("aliased pluginConfig: checked %d, findings %v", l.checked, l.findings)
	}
}
