package main

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Review Z182 (lint parity 2): README "Checking a configuration": lint
// validates every configuration "with the filter's own parser … the same
// errors the plugin would log at start". Review Z171 made the filter refuse
// gjson literals (!…) in rule and confidence paths and % patterns with a
// star inside their text; lint reports those in every input form (plain
// JSON, Envoy YAML StringValue/BytesValue/TypedStruct, a WasmPlugin's
// pluginConfig, a config_dump, multi-document YAML), and their valid
// neighbours (a.#(b!="x"), %"*abc*", a.# with min/max or numbers) pass.
// But the same paths in the other spellings gjson reads are neither
// refused by the filter nor reported by lint (root causes and the harm
// they do: cachecore/lint_parity2_review_test.go).

// z182Block is a JSON filter configuration as block-style YAML.
func z182Block(t *testing.T, js string) string {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(js), &n); err != nil {
		t.Fatal(err)
	}
	var block func(*yaml.Node)
	block = func(n *yaml.Node) {
		if n.Kind != yaml.ScalarNode {
			n.Style = 0
		}
		for _, c := range n.Content {
			block(c)
		}
	}
	block(&n)
	out, err := yaml.Marshal(&n)
	if err != nil {
		t.Fatal(err)
	}
	return z182Indent(string(out), "    ")
}

func z182Indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = pre + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

// z182Forms is the filter configuration conf in each input form lint reads.
func z182Forms(t *testing.T, conf string) map[string]string {
	t.Helper()
	q, _ := json.Marshal(conf)
	envoy := func(configuration string) string {
		return `static_resources:
  listeners:
  - name: l
    filter_chains:
    - filters:
      - name: hcm
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": ` + wasmFilterType + `
              config:
                root_id: modelcache
                configuration:
` + configuration
	}
	plugin := `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: modelcache, namespace: ml}
spec:
  url: oci://registry.example.com/modelcache:v1
  pluginConfig:
` + z182Block(t, conf)
	return map[string]string{
		"filter.json":       conf,
		"envoy-string.yaml": envoy(`                  "@type": ` + stringValue + "\n                  value: " + string(q) + "\n"),
		"envoy-bytes.yaml":  envoy(`                  "@type": ` + bytesValue + "\n                  value: " + base64.StdEncoding.EncodeToString([]byte(conf)) + "\n"),
		"typedstruct.yaml": `http_filters:
- name: envoy.filters.http.wasm
  typed_config:
    "@type": type.googleapis.com/xds.type.v3.TypedStruct
    type_url: ` + wasmFilterType + `
    value:
      config:
        root_id: modelcache
        configuration: {"@type": ` + stringValue + `, value: ` + string(q) + `}
`,
		"wasmplugin.yaml": plugin,
		"multidoc.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n---\n" + plugin,
		"config_dump.json": `{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.ListenersConfigDump","static_listeners":[{"listener":{"name":"l","filter_chains":[{"filters":[{"name":"hcm","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager","http_filters":[{"name":"envoy.filters.http.wasm","typed_config":{"@type":"` +
			wasmFilterType + `","config":{"rootId":"modelcache","configuration":{"@type":"` + stringValue + `","value":` + string(q) + `}}}}]}}]}]}}]}]}`,
	}
}

func z182Route(policy string) string {
	return `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,` + policy + `}]}`
}

// Each configuration below is one the filter must refuse at start (README:
// every gjson path has "no `!` literal", "no `%` pattern with a `*` inside
// its text"; "confidence.path may not cross or end at every element or
// match"), written in a spelling gjson reads as the refused form. The
// filter loads each, and lint passes the file (exit 0), in every form.
// Expected: one finding naming the path, in every form.
func TestLintParity2ReportsEverySpellingOfTheRefusedPaths(t *testing.T) {
	conf := func(p string) string {
		return z182Route(`"validate":[{"path":"label","type":"string"}],"confidence":{"path":"` + p + `","tiers":[{"min":0.9,"ttl":"1h"}]}`)
	}
	rule := func(p, pred string) string {
		b, _ := json.Marshal(p)
		return z182Route(`"validate":[{"path":"label","type":"string"},{"path":` + string(b) + `,` + pred + `}]`)
	}
	cases := []struct{ name, conf, want string }{
		// a literal as a multipath's later member, or after a multipath: every answer scores 0.99
		{"confidence [score,!0.99].1", conf(`[score,!0.99].1`), "routes[0].confidence.path"},
		{"confidence {s:!0.99}.s", conf(`{s:!0.99}.s`), "routes[0].confidence.path"},
		{"confidence [score].!0.99", conf(`[score].!0.99`), "routes[0].confidence.path"},
		{"rule {ok:!true}.ok", rule(`{ok:!true}.ok`, `"equals":true`), "routes[0].validate[1].path"},
		// gjson's #[…] query, read as #(…)
		{"rule #[…] quadratic pattern", rule(`choices.#[message.content%"*sorry*cannot*"]#`, `"max_items":0`), "routes[0].validate[1].path"},
		{"confidence #[…]# every match", conf(`preds.#[s>0.5]#.s`), "routes[0].confidence.path"},
		// stars inside the pattern as gjson reads it
		{"rule pattern with a bracket", rule(`choices.#(message.content%*sorry(x)*cannot*)#`, `"max_items":0`), "routes[0].validate[1].path"},
		{"rule pattern after a quoted part", rule(`choices.#(message.content%"x"*sorry*cannot*)#`, `"max_items":0`), "routes[0].validate[1].path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var missed []string
			for file, text := range z182Forms(t, c.conf) {
				l := lintBytes(file, []byte(text))
				found, all := findingNaming(l, c.want)
				if !found || l.checked != 1 {
					missed = append(missed, file+" (checked "+strconv.Itoa(l.checked)+"): "+strings.Join(all, "; "))
				}
			}
			if len(missed) > 0 {
				t.Errorf("no finding naming %s in:\n%s", c.want, strings.Join(missed, "\n"))
			}
		})
	}
}

// README: "Each problem is one line on stdout". A confidence path that is
// written but unusable ("!0.99", the literal review Z171 refused) is two
// findings, the second "routes[0].confidence.path: is required: the gjson
// path of the score in the response" — for a field the operator wrote;
// lint counts 2 problems. Expected: one finding, "is not a usable gjson
// path".
func TestLintParity2UnusableConfidencePathIsOneFinding(t *testing.T) {
	text := z182Forms(t, z182Route(`"validate":[{"path":"label","type":"string"}],"confidence":{"path":"!0.99","tiers":[{"min":0.9,"ttl":"1h"}]}`))["wasmplugin.yaml"]
	l := lintBytes("wasmplugin.yaml", []byte(text))
	if _, all := findingNaming(l, ""); len(l.findings) != 1 {
		t.Fatalf("want one finding for the one bad path, got %d:\n%s", len(l.findings), strings.Join(all, "\n"))
	}
}
