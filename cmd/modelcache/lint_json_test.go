package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// jsonDocument builds the tree yaml.v3 builds for JSON it can read: same
// kinds, tags, styles, values and lines, so findings are unchanged.
func TestJSONDocumentMatchesYAMLReading(t *testing.T) {
	for _, in := range []string{
		`{}`, `[]`, ` [1, -2.5e3, 1E2, 0, true, false, null, "s", {}, []]`,
		"{\n  \"a\": {\"b\": [1,\n 2]},\n\n  \"c\"  :  \"d\\n\\\"e\\u00e9\",\r\n \"a\": 3}\n",
		"\n\n[\n{\"k\":\n\n\"v\"},\n  [\n  ]\n]",
		`{"big":123456789012345678901234567890,"neg":-0,"f":1.0}`,
	} {
		var want yaml.Node
		if err := yaml.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		got, err := jsonDocument([]byte(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if d := nodeDiff(want.Content[0], got, "$"); d != "" {
			t.Errorf("%q: %s", in, d)
		}
	}
}

func nodeDiff(a, b *yaml.Node, at string) string {
	if a.Kind != b.Kind || a.Tag != b.Tag || a.Value != b.Value || a.Line != b.Line || a.Style != b.Style || len(a.Content) != len(b.Content) {
		return fmt.Sprintf("%s: yaml.v3 %v %s %q line %d style %v (%d), jsonDocument %v %s %q line %d style %v (%d)", at,
			a.Kind, a.Tag, a.Value, a.Line, a.Style, len(a.Content), b.Kind, b.Tag, b.Value, b.Line, b.Style, len(b.Content))
	}
	for i := range a.Content {
		if d := nodeDiff(a.Content[i], b.Content[i], fmt.Sprintf("%s[%d]", at, i)); d != "" {
			return d
		}
	}
	return ""
}

func TestJSONInputBounded(t *testing.T) {
	deep := strings.Repeat("[", maxYAMLDepth+2) + strings.Repeat("]", maxYAMLDepth+2)
	l := lintBytes("deep.json", []byte(deep))
	if len(l.findings) != 1 || !strings.Contains(l.findings[0].msg, "nested deeper") {
		t.Errorf("deeply nested JSON: %v", l.findings)
	}
	wide := "[" + strings.Repeat("0,", maxYAMLNodes) + "0]"
	l = lintBytes("wide.json", []byte(wide))
	if len(l.findings) != 1 || !strings.Contains(l.findings[0].msg, "more than") {
		t.Errorf("JSON with too many values: %v", l.findings)
	}
	// YAML flow content that is not JSON is still read as YAML.
	l = lintBytes("flow.yaml", []byte("[{a: 1}, {a: 1, a: 2}]\n"))
	if len(l.findings) != 1 || !strings.Contains(l.findings[0].msg, "duplicate key") {
		t.Errorf("YAML flow mapping: %v", l.findings)
	}
}

// An EnvoyFilter (a Kubernetes manifest, copied by resolveMerges) whose
// patch is aliased many times is linted once too.
func TestLintAliasedEnvoyFilterPatchLintedOnce(t *testing.T) {
	var b strings.Builder
	b.WriteString(`apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: modelcache}
spec:
  configPatches:
  - &p
    applyTo: HTTP_FILTER
    patch:
      operation: INSERT_BEFORE
      value:
        name: modelcache
        typed_config:
          "@type": ` + wasmFilterType + `
          config:
            root_id: modelcache
            configuration:
              "@type": ` + stringValue + `
              value: '{"routes":[{"name":"r","kind":"chat","path_prefix":"/p","ttl":"bogus"}]}'
`)
	for i := 0; i < 500; i++ {
		b.WriteString("  - *p\n")
	}
	l := lintBytes("ef.yaml", []byte(b.String()))
	if len(l.findings) != 1 || l.checked != 1 {
		t.Errorf("aliased EnvoyFilter patch: checked %d, findings %d (want 1, 1): %v", l.checked, len(l.findings), l.findings[:min(3, len(l.findings))])
	}
}

// A config_discovery path that is not a regular file (a FIFO would block
// the linter forever) or is too large is refused with a finding.
func TestLintECDSPathNotRegularOrTooLarge(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, maxFileBytes+1), 0o644); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		dir: "config source file " + dir + ": not a regular file: refused",
		big: "config source file " + big + ": larger than 16 MiB: refused",
	} {
		y := `http_filters:
- name: modelcache
  config_discovery:
    config_source: {path_config_source: {path: ` + p + `}}
    type_urls: ["` + wasmFilterType + `"]
- name: envoy.filters.http.router
`
		l := lintBytes(filepath.Join(dir, "envoy.yaml"), []byte(y))
		if len(l.findings) != 1 || l.findings[0].msg != want {
			t.Errorf("path %s: findings %v, want one %q", p, l.findings, want)
		}
	}
}
