package main

import (
	"encoding/json"
	"testing"

	"github.com/modelcache/modelcache/cachecore"
)

// The linter promises to read "an Envoy config (YAML or JSON)" and Istio
// manifests "as the programs that consume it do", but it reads JSON with
// gopkg.in/yaml.v3, which does not implement two JSON escapes YAML 1.2
// itself adopted for JSON compatibility: "\/" and a surrogate pair
// ("\ud83d\ude00"). Envoy reads a JSON bootstrap or ECDS file with its JSON
// parser (and kubectl a JSON manifest with a JSON decoder), so a file that
// Envoy loads and whose filter configuration the filter accepts is refused
// by the linter as "not valid YAML/JSON", and the configuration is never
// checked. Generators emit these escapes routinely (PHP's json_encode
// escapes every '/', Python's json.dumps writes non-BMP characters as
// surrogate pairs).
func TestLintReadsJSONEscapesAsJSON(t *testing.T) {
	const filterConfig = `{"routes":[{"name":"chat","kind":"chat","path_prefix":"\/v1\/chat"}]}`
	// Check the premise: the filter accepts this configuration.
	var decoded string
	if err := json.Unmarshal([]byte(`"`+jsonEscapeQuotes(filterConfig)+`"`), &decoded); err != nil {
		t.Fatal(err)
	}
	if _, err := cachecore.ParseConfig([]byte(decoded)); err != nil {
		t.Fatalf("premise: the filter refuses %s: %v", decoded, err)
	}
	for name, envoyJSON := range map[string]string{
		`"\/" in the configuration string`: `{"static_resources":{"listeners":[{"name":"main","filter_chains":[{"filters":[{"name":"envoy.filters.network.http_connection_manager","typed_config":{
  "@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  "stat_prefix":"ingress",
  "http_filters":[
    {"name":"modelcache","typed_config":{"@type":"` + wasmFilterType + `","config":{"root_id":"modelcache",
      "configuration":{"@type":"` + stringValue + `","value":"` + jsonEscapeQuotes(filterConfig) + `"}}}},
    {"name":"envoy.filters.http.router","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}]}}`,
		`a surrogate pair elsewhere in the file`: `{"static_resources":{"listeners":[{"name":"main \ud83d\ude80","filter_chains":[{"filters":[{"name":"envoy.filters.network.http_connection_manager","typed_config":{
  "@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  "stat_prefix":"ingress",
  "http_filters":[
    {"name":"modelcache","typed_config":{"@type":"` + wasmFilterType + `","config":{"root_id":"modelcache",
      "configuration":{"@type":"` + stringValue + `","value":"{\"routes\":[{\"name\":\"chat\",\"kind\":\"chat\",\"path_prefix\":\"/v1/chat\"}]}"}}}},
    {"name":"envoy.filters.http.router","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}]}}`,
	} {
		if !json.Valid([]byte(envoyJSON)) {
			t.Fatalf("%s: test input is not valid JSON", name)
		}
		l := lintBytes("envoy.json", []byte(envoyJSON))
		for _, f := range l.findings {
			t.Errorf("%s: valid JSON Envoy config with a valid filter configuration: finding %s", name, f)
		}
		if l.checked != 1 {
			t.Errorf("%s: %d configurations checked, want 1", name, l.checked)
		}
	}
}

// jsonEscapeQuotes escapes the double quotes of s (which holds no other
// character needing escape) for use inside a JSON string.
func jsonEscapeQuotes(s string) string {
	out := make([]byte, 0, len(s)+16)
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}
