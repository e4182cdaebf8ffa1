package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The per-route opt-out check (README, "Checking a configuration": "an
// Envoy route that disables the filter for every request of one of the
// filter's routes ... because those requests never reach the cache") must
// see the filter's configuration in every form the linter itself accepts
// and validates: a StringValue, a BytesValue in either base64 alphabet,
// padded or not, a TypedStruct, and a filter delivered through ECDS from a
// file. Otherwise an opt-out that takes the cache's route away passes the
// linter exactly when the configuration is written in one of those forms.
func TestLintRouteOptOutsSeeEveryConfigurationForm(t *testing.T) {
	// Its standard base64 has padding and a '+' or '/', so that the
	// unpadded and URL-safe encodings differ from it.
	conf := `{"upstream_authority":"~","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat"}]}`
	if std := base64.StdEncoding.EncodeToString([]byte(conf)); !strings.ContainsAny(std, "+/") || !strings.HasSuffix(std, "=") {
		t.Fatal("configuration does not exercise the base64 variants")
	}
	quoted := strings.ReplaceAll(conf, `"`, `\"`)
	hcm := func(filterName, filter string) string {
		return `route_config:
  virtual_hosts:
  - name: v
    domains: ["*"]
    routes:
    - match: {prefix: "/v1/chat"}
      route: {cluster: model}
      typed_per_filter_config:
        ` + filterName + `:
          "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
          disabled: true
    - match: {prefix: "/"}
      route: {cluster: model}
http_filters:
- name: ` + filterName + `
` + filter + `- name: envoy.filters.http.router
  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
`
	}
	wasm := func(configuration string) string {
		return `  typed_config:
    "@type": ` + wasmFilterType + `
    config:
      root_id: modelcache
      configuration: ` + configuration + "\n"
	}
	bytesValue := func(enc *base64.Encoding) string {
		return `{"@type": ` + bytesValue + `, value: "` + enc.EncodeToString([]byte(conf)) + `"}`
	}
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
	cases := []struct{ name, filterName, filter string }{
		{"StringValue (control)", "envoy.filters.http.wasm", wasm(`{"@type": ` + stringValue + `, value: "` + quoted + `"}`)},
		{"BytesValue, padded", "envoy.filters.http.wasm", wasm(bytesValue(base64.StdEncoding))},
		{"BytesValue, unpadded", "envoy.filters.http.wasm", wasm(bytesValue(base64.RawStdEncoding))},
		{"BytesValue, URL-safe", "envoy.filters.http.wasm", wasm(bytesValue(base64.URLEncoding))},
		{"TypedStruct", "envoy.filters.http.wasm", `  typed_config:
    "@type": type.googleapis.com/xds.type.v3.TypedStruct
    type_url: ` + wasmFilterType + `
    value:
      config:
        root_id: modelcache
        configuration: {"@type": ` + stringValue + `, value: "` + quoted + `"}
`},
		{"ECDS from a file", "ml.modelcache", `  config_discovery:
    config_source: {path_config_source: {path: ` + ecdsPath + `}}
    type_urls: ["` + wasmFilterType + `"]
`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(dir, "envoy.yaml")
			l := lintBytes(file, []byte(hcm(c.filterName, c.filter)))
			if l.checked != 1 {
				t.Fatalf("the filter's configuration was not linted: checked %d, findings %v, skipped %v", l.checked, l.findings, l.skipped)
			}
			if len(l.findings) != 1 || !strings.Contains(l.findings[0].msg, `disables the modelcache filter`) ||
				!strings.Contains(l.findings[0].msg, `routes[0] "chat"`) {
				t.Fatalf("the route that disables the filter for all of route chat's requests is not reported; findings %v", l.findings)
			}
		})
	}
}
