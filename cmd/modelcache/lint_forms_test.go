package main

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/cachecore"
)

// Forms of a filter configuration that Envoy and Kubernetes accept must be
// linted, not skipped or refused.

func TestLintBytesValueBase64Variants(t *testing.T) {
	conf := `{"upstream_authority":"~","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat"}]}`
	if std := base64.StdEncoding.EncodeToString([]byte(conf)); !strings.ContainsAny(std, "+/") || !strings.HasSuffix(std, "=") {
		t.Fatal("config does not exercise the variants")
	}
	if _, err := cachecore.ParseConfig([]byte(conf)); err != nil {
		t.Fatal(err)
	}
	for name, enc := range map[string]*base64.Encoding{"unpadded": base64.RawStdEncoding, "url-safe": base64.URLEncoding} {
		v := enc.EncodeToString([]byte(conf))
		y := envoyFilterWith(`        {"@type": ` + bytesValue + `, value: "` + v + `"}` + "\n")
		y = strings.Replace(y, "      configuration:\n        {", "      configuration: {", 1)
		if l := lintBytes("envoy.yaml", []byte(y)); len(l.findings) != 0 {
			t.Errorf("%s base64 (Envoy decodes it): %v", name, l.findings)
		}
	}
}

func TestLintListsAndTypedStructs(t *testing.T) {
	list := `apiVersion: v1
kind: List
items:
- apiVersion: extensions.istio.io/v1alpha1
  kind: WasmPlugin
  metadata: {name: modelcache, namespace: ml}
  spec:
    url: oci://registry.example.com/modelcache@sha256:00
    pluginConfig:
      routes:
      - {name: chat, kind: chat, path_prefix: /v1/chat/completions, ttl: 5 minutes}
`
	typedStruct := `http_filters:
- name: envoy.filters.http.wasm
  typed_config:
    "@type": type.googleapis.com/udpa.type.v1.TypedStruct
    type_url: ` + wasmFilterType + `
    value:
      config:
        root_id: modelcache
        configuration: {"@type": ` + stringValue + `, value: "{\"routes\": 5}"}
`
	for name, y := range map[string]string{"List": list, "TypedStruct": typedStruct} {
		l := lintBytes(name+".yaml", []byte(y))
		if len(l.findings) == 0 || l.checked == 0 {
			t.Errorf("%s: broken modelcache config not linted: checked %d findings %v skipped %v", name, l.checked, l.findings, l.skipped)
		}
	}
}
