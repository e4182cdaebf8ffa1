package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The JSON names (lowerCamelCase) Envoy accepts beside the .proto names,
// in the structures the linter reads besides those of
// lint_camelcase_review_test.go: a JSON bootstrap, a remote module's
// httpUri, an ECDS file, routeConfig and virtualHosts, a match's
// pathSeparatedPrefix, caseSensitive and headers (stringMatch, ignoreCase).

func TestProtoFieldNames(t *testing.T) {
	for key, want := range map[string]string{
		"rootId": "root_id", "root_id": "root_id", "pathSeparatedPrefix": "path_separated_prefix",
		"http2ProtocolOptions": "http2_protocol_options", "@type": "@type", "path_Config": "path_Config",
	} {
		if got := protoField(key); got != want {
			t.Errorf("protoField(%q) = %q, want %q", key, got, want)
		}
	}
	if got := jsonName("typed_per_filter_config"); got != "typedPerFilterConfig" {
		t.Errorf("jsonName: %q", got)
	}
}

const camelBroken = `{\"routes\":[{\"name\":\"chat\",\"kind\":\"chat\",\"path_prefix\":\"/v1/chat\",\"ttl\":\"10 minutes\"}]}`

func TestLintCamelCaseJSONBootstrap(t *testing.T) {
	js := `{"staticResources": {"listeners": [{"filterChains": [{"filters": [{"name": "hcm", "typedConfig": {
  "httpFilters": [{"name": "envoy.filters.http.wasm", "typedConfig": {
    "@type": "` + wasmFilterType + `",
    "config": {"vmConfig": {"code": {"remote": {"httpUri": {"uri": "https://example.com/modelcache.wasm"}}}},
      "configuration": {"@type": "` + stringValue + `", "value": "` + camelBroken + `"}}}}]}}]}]}]}}`
	l := lintBytes("envoy.json", []byte(js))
	if l.checked != 1 || len(l.findings) != 1 || !strings.Contains(l.findings[0].msg, "routes[0].ttl") {
		t.Fatalf("checked %d, findings %v, skipped %v", l.checked, l.findings, l.skipped)
	}
}

func TestLintCamelCaseECDSFile(t *testing.T) {
	dir := t.TempDir()
	ecds := filepath.Join(dir, "ecds.yaml")
	if err := os.WriteFile(ecds, []byte(`resources:
- "@type": type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig
  name: ml.modelcache
  typedConfig:
    "@type": `+wasmFilterType+`
    config:
      rootId: modelcache
      configuration: {"@type": `+stringValue+`, value: "{\"routes\":[{\"name\":\"chat\",\"kind\":\"chat\",\"path_prefix\":\"/v1/chat\"}]}"}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	// The opt-out reads the filter's routes from the ECDS file, written
	// with JSON names too.
	text := `routeConfig:
  virtualHosts:
  - name: v
    domains: ["*"]
    typedPerFilterConfig:
      ml.modelcache: {"@type": ` + filterConfigType + `, disabled: true}
    routes:
    - match: {pathSeparatedPrefix: "/V1", caseSensitive: false}
      route: {cluster: model}
httpFilters:
- name: ml.modelcache
  configDiscovery:
    configSource: {pathConfigSource: {path: ` + ecds + `}}
- name: envoy.filters.http.router
`
	l := lintBytes(filepath.Join(dir, "envoy.yaml"), []byte(text))
	if ok, all := findingNaming(l, `disables the modelcache filter "ml.modelcache"`); !ok || l.checked != 1 {
		t.Fatalf("checked %d, findings %v", l.checked, all)
	}
}

func TestLintCamelCaseMethodHeader(t *testing.T) {
	conf := `{\"routes\":[{\"name\":\"chat\",\"kind\":\"chat\",\"path_prefix\":\"/v1/chat\"}]}`
	text := `route_config:
  virtual_hosts:
  - name: v
    domains: ["*"]
    routes:
    - match: {prefix: "/v1/chat", headers: [{name: ":method", stringMatch: {exact: get, ignoreCase: true}}]}
      route: {cluster: model}
    - match: {prefix: "/"}
      route: {cluster: model}
      typedPerFilterConfig:
        envoy.filters.http.wasm: {"@type": ` + filterConfigType + `, disabled: true}
http_filters:
- name: envoy.filters.http.wasm
  typed_config:
    "@type": ` + wasmFilterType + `
    config:
      root_id: modelcache
      configuration: {"@type": ` + stringValue + `, value: "` + conf + `"}
`
	l := lintBytes("envoy.yaml", []byte(text))
	if ok, all := findingNaming(l, `routes[0] "chat"`); !ok {
		t.Fatalf("routes[0] takes GET only (stringMatch, ignoreCase); routes[1] disables the filter for every POST of chat; findings %v", all)
	}
}

// A map's keys are names, not fields: a typed_per_filter_config key
// my_filter is not the filter myFilter.
func TestLintPerFilterKeysAreNotFields(t *testing.T) {
	conf := `{\"routes\":[{\"name\":\"chat\",\"kind\":\"chat\",\"path_prefix\":\"/v1/chat\"}]}`
	text := `route_config:
  virtual_hosts:
  - name: v
    domains: ["*"]
    routes:
    - match: {prefix: "/"}
      route: {cluster: model}
      typed_per_filter_config:
        my_modelcache: {"@type": ` + filterConfigType + `, disabled: true}
http_filters:
- name: myModelcache
  typed_config:
    "@type": ` + wasmFilterType + `
    config:
      root_id: modelcache
      configuration: {"@type": ` + stringValue + `, value: "` + conf + `"}
`
	l := lintBytes("envoy.yaml", []byte(text))
	if ok, all := findingNaming(l, `"my_modelcache" names no filter`); !ok {
		t.Fatalf("findings %v", all)
	}
	if ok, all := findingNaming(l, "disables the modelcache filter"); ok {
		t.Fatalf("findings %v", all)
	}
}
