package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Envoy reads its YAML/JSON configuration (bootstrap, ECDS files, and what
// istiod builds from an EnvoyFilter patch) with protobuf's JSON parser,
// which accepts every field under its original name (root_id) and under
// its JSON name, lowerCamelCase (rootId). Configuration dumps and many
// EnvoyFilter patches are written in the latter. The linter looks up only
// the snake_case names, so the same filter written with the JSON names is
// not recognised: a broken modelcache configuration Envoy hands to the
// filter (which refuses to start) passes lint (with -allow-none, as make
// lint-config runs it, exit 0).
func TestLintReadsProtoJSONFieldNames(t *testing.T) {
	const broken = `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat","ttl":"10 minutes"}]}`
	quoted := strings.ReplaceAll(broken, `"`, `\"`)
	dir := t.TempDir()
	ecdsPath := filepath.Join(dir, "ecds.yaml")
	ecds := `resources:
- "@type": type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig
  name: ml.modelcache
  typed_config:
    "@type": ` + wasmFilterType + `
    config:
      root_id: modelcache
      configuration: {"@type": ` + stringValue + `, value: "` + quoted + `"}
`
	if err := os.WriteFile(ecdsPath, []byte(ecds), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, text string }{
		{"wasm filter named modelcache by rootId and vmConfig.vmId", `httpFilters:
- name: envoy.filters.http.wasm
  typedConfig:
    "@type": ` + wasmFilterType + `
    config:
      name: cache
      rootId: modelcache
      vmConfig:
        vmId: modelcache
        runtime: envoy.wasm.runtime.v8
        code: {local: {filename: /etc/envoy/modelcache.wasm}}
      configuration: {"@type": ` + stringValue + `, value: "` + quoted + `"}
`},
		{"TypedStruct with typeUrl", `httpFilters:
- name: envoy.filters.http.wasm
  typedConfig:
    "@type": type.googleapis.com/xds.type.v3.TypedStruct
    typeUrl: ` + wasmFilterType + `
    value:
      config:
        rootId: modelcache
        configuration: {"@type": ` + stringValue + `, value: "` + quoted + `"}
`},
		{"configDiscovery from a file", `httpFilters:
- name: ml.modelcache
  configDiscovery:
    configSource: {pathConfigSource: {path: ` + ecdsPath + `}}
    typeUrls: ["` + wasmFilterType + `"]
`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := lintBytes(filepath.Join(dir, "envoy.yaml"), []byte(c.text))
			if l.checked != 1 || len(l.findings) != 1 || !strings.Contains(l.findings[0].msg, "routes[0].ttl") {
				t.Fatalf("modelcache configuration Envoy reads was not linted: checked %d, findings %v, skipped %v", l.checked, l.findings, l.skipped)
			}
		})
	}
}

// The per-route opt-out check must also read the JSON names Envoy accepts:
// typedPerFilterConfig on a route (and httpFilters for the filter chain).
// Written so, a route that takes every request of the filter's route chat
// away from the cache passes lint, though Envoy disables the filter there
// exactly as with typed_per_filter_config.
func TestLintRouteOptOutsReadProtoJSONFieldNames(t *testing.T) {
	conf := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat"}]}`
	quoted := strings.ReplaceAll(conf, `"`, `\"`)
	text := func(perFilter, httpFilters string) string {
		return `route_config:
  virtual_hosts:
  - name: v
    domains: ["*"]
    routes:
    - match: {prefix: "/v1/chat"}
      route: {cluster: model}
      ` + perFilter + `:
        envoy.filters.http.wasm:
          "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
          disabled: true
    - match: {prefix: "/"}
      route: {cluster: model}
` + httpFilters + `:
- name: envoy.filters.http.wasm
  typed_config:
    "@type": ` + wasmFilterType + `
    config:
      root_id: modelcache
      configuration: {"@type": ` + stringValue + `, value: "` + quoted + `"}
- name: envoy.filters.http.router
  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
`
	}
	cases := []struct{ name, perFilter, httpFilters string }{
		{"typedPerFilterConfig", "typedPerFilterConfig", "http_filters"},
		{"httpFilters", "typed_per_filter_config", "httpFilters"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := lintBytes("envoy.yaml", []byte(text(c.perFilter, c.httpFilters)))
			if ok, all := findingNaming(l, `disables the modelcache filter`); !ok || !strings.Contains(strings.Join(all, "\n"), `routes[0] "chat"`) {
				t.Fatalf("the route that disables the filter for all of route chat's requests is not reported; checked %d, findings %v", l.checked, all)
			}
		})
	}
}
