package main

import (
	"strings"
	"testing"
)

// Review Z152 (lint parity): inputs the README says the linter reads, read
// as something else, so a config the filter refuses at start passes CI
// with a bogus finding in place of the real one (and a valid file fails).

// parityFilter is a modelcache filter configuration (as the JSON text of a
// StringValue, escaped for a JSON or double-quoted YAML string) that the
// filter refuses at start: a pseudo-header as tenant header (review Z142).
const parityFilter = `{\"routes\":[{\"name\":\"chat\",\"kind\":\"chat\",\"path_prefix\":\"/v1/chat\",\"tenant_headers\":[\":path\"]}]}`

const parityWant = `routes[0].tenant_headers[0]: ":path" is a pseudo-header`

// An Envoy configuration dump (GET /config_dump: {"configs": [...]}) holds
// the wasm filter like any Envoy config, and README says the linter reads
// Envoy's fields "as in configuration dumps". isBareJSONConfig takes any
// JSON object without routes and without a handful of known top-level keys
// for the filter's own configuration, so the dump is parsed as one:
// "configs: unknown field", "routes: is required", and the filter's real
// error is never reported. Expected: the dump is read as an Envoy config
// and the tenant_headers refusal is reported at the filter's path.
func TestLintReadsAnEnvoyConfigDump(t *testing.T) {
	dump := `{
 "configs": [
  {
   "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
   "static_listeners": [{"listener": {"name": "l", "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    "http_filters": [{"name": "envoy.filters.http.wasm", "typed_config": {
     "@type": "` + wasmFilterType + `",
     "config": {"root_id": "modelcache",
      "configuration": {"@type": "` + stringValue + `", "value": "` + parityFilter + `"}}}}]}}]}]}}]
  }
 ]
}`
	l := lintBytes("config_dump.json", []byte(dump))
	found, all := findingNaming(l, parityWant)
	if !found || len(l.findings) != 1 {
		t.Fatalf("want exactly the filter's tenant_headers refusal, got:\n%s", strings.Join(all, "\n"))
	}
	if !strings.Contains(l.findings[0].where, "static_listeners[0].listener") {
		t.Fatalf("finding not placed at the filter in the dump: %s", l.findings[0])
	}
}

// YAML is a superset of JSON, and README promises multi-document YAML.
// A file whose first document starts with '{' (a flow mapping: JSON
// manifests joined with "---", as kubectl apply -f takes them, or an Envoy
// file written in flow style) is taken whole as the filter's bare JSON
// configuration: one finding "configuration: is not valid JSON", every
// real problem hidden, and a valid file refused. Expected: read as YAML,
// each document linted.
func TestLintReadsYAMLWhoseFirstDocumentIsAFlowMapping(t *testing.T) {
	wasmPlugin := func(name, tenant string) string {
		return `{"apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin", "metadata": {"name": "` + name + `", "namespace": "ml"},
 "spec": {"url": "oci://registry.example.com/modelcache:v1", "pluginConfig": {"routes": [{"name": "chat", "kind": "chat", "path_prefix": "/v1/chat", "tenant_headers": ["` + tenant + `"]}]}}}
`
	}
	t.Run("JSON manifests joined with ---, one refused", func(t *testing.T) {
		text := wasmPlugin("modelcache", ":path") + "---\n" + wasmPlugin("modelcache-b", "authorization")
		l := lintBytes("mesh.yaml", []byte(text))
		found, all := findingNaming(l, "doc 1 WasmPlugin ml/modelcache spec.pluginConfig: "+parityWant)
		if !found || len(l.findings) != 1 || l.checked != 2 {
			t.Fatalf("checked %d, want 2 and the one tenant_headers refusal, got:\n%s", l.checked, strings.Join(all, "\n"))
		}
	})
	t.Run("JSON manifests joined with ---, both valid", func(t *testing.T) {
		text := wasmPlugin("modelcache", "authorization") + "---\n" + wasmPlugin("modelcache-b", "x-api-key")
		l := lintBytes("mesh.yaml", []byte(text))
		if len(l.findings) != 0 || l.checked != 2 {
			_, all := findingNaming(l, "")
			t.Fatalf("valid manifests: checked %d, findings:\n%s", l.checked, strings.Join(all, "\n"))
		}
	})
	t.Run("Envoy config in flow style", func(t *testing.T) {
		text := `{static_resources: {listeners: [{name: l, filter_chains: [{filters: [{name: hcm, typed_config: {
  http_filters: [{name: envoy.filters.http.wasm, typed_config: {
    "@type": ` + wasmFilterType + `,
    config: {root_id: modelcache,
      configuration: {"@type": ` + stringValue + `, value: "` + parityFilter + `"}}}}]}}]}]}]}}
`
		l := lintBytes("envoy.yaml", []byte(text))
		found, all := findingNaming(l, parityWant)
		if !found || len(l.findings) != 1 || l.checked != 1 {
			t.Fatalf("checked %d, want 1 and the tenant_headers refusal, got:\n%s", l.checked, strings.Join(all, "\n"))
		}
	})
}

// README: "Each problem is one line on stdout — file, line, where in the
// document, the field, the reason". A value of the wrong type is quoted
// raw in ParseConfig's message (short(v.Raw)), newlines included, so a
// pretty-printed object where a list belongs prints one problem over
// several lines: CI that reads FILE:LINE: lines sees garbage lines and
// miscounts. (The filter itself splits its log on newlines.) Expected:
// every finding prints as a single line.
func TestLintFindingIsOneLine(t *testing.T) {
	text := "{\n  \"routes\": [{\"name\": \"chat\", \"kind\": \"chat\", \"path_prefix\": \"/v1/chat\",\n" +
		"    \"tenant_headers\": {\n      \"authorization\": true\n    }}]\n}\n"
	l := lintBytes("c.json", []byte(text))
	if len(l.findings) == 0 {
		t.Fatal("accepted")
	}
	for _, f := range l.findings {
		if s := f.String(); strings.ContainsAny(s, "\r\n") {
			t.Errorf("finding spans several lines: %q", s)
		}
	}
}

// A WasmPlugin's pluginConfig reaches the filter as kubectl converts it
// (README: "a WasmPlugin's pluginConfig as kubectl converts it"): go-yaml
// v2, which sets a timestamp-looking plain scalar decoded into an
// interface{} as the string written ("2024-06-01"), for backward
// compatibility. The linter's nodeJSON decodes it with yaml.v3 into a
// time.Time and writes "2024-06-01T00:00:00Z", so a route named after a
// model snapshot date, a token the filter accepts, is refused: "may only
// contain letters, digits, '_' and '-', got \"2024-06-01T00:00:00Z\"".
// Expected: the scalar is passed as written, and the config accepted.
func TestLintPluginConfigDateLikeScalarStaysAsWritten(t *testing.T) {
	text := `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: modelcache
  namespace: ml
spec:
  url: oci://registry.example.com/modelcache:v1
  pluginConfig:
    routes:
    - name: 2024-06-01
      kind: chat
      path_exact: /v1/chat/completions
`
	l := lintBytes("wasmplugin.yaml", []byte(text))
	if _, all := findingNaming(l, ""); len(l.findings) != 0 || l.checked != 1 {
		t.Fatalf("checked %d, findings on a config the filter accepts:\n%s", l.checked, strings.Join(all, "\n"))
	}
}
