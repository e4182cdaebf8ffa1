package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// shippedConfigs lists every Envoy config and Istio manifest in envoy/.
func shippedConfigs(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, g := range []string{"../../envoy/*.yaml", "../../envoy/bench/*.yaml", "../../envoy/istio/*.yaml", "../../envoy/istio/ecds/*.yaml"} {
		m, err := filepath.Glob(g)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 5 {
		t.Fatalf("found only %v", files)
	}
	return files
}

func TestLintAcceptsShippedConfigs(t *testing.T) {
	for _, f := range shippedConfigs(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		l := lintBytes(f, data)
		for _, p := range l.findings {
			t.Errorf("%s", p)
		}
		// A file that carries the filter must have had it checked.
		carries := bytes.Contains(data, []byte(wasmFilterType)) || bytes.Contains(data, []byte("kind: WasmPlugin"))
		if carries && l.checked == 0 {
			t.Errorf("%s carries a filter configuration but none was checked (skipped: %v)", f, l.skipped)
		}
	}
}

// broken returns a shipped file with one substring replaced (exactly once).
func broken(t *testing.T, file, old, new string) string {
	t.Helper()
	b, err := os.ReadFile("../../" + file)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), old); n != 1 {
		t.Fatalf("%s: %q occurs %d times", file, old, n)
	}
	return strings.Replace(string(b), old, new, 1)
}

func lineOf(t *testing.T, text, fragment string) int {
	t.Helper()
	i := strings.Index(text, fragment)
	if i < 0 {
		t.Fatalf("no %q", fragment)
	}
	return 1 + strings.Count(text[:i], "\n")
}

func TestLintRefusesBrokenConfigs(t *testing.T) {
	const route = `{"name":"chat","kind":"chat","path_prefix":"/v1/chat"}`
	type tc struct {
		name, file, text string
		want             []string // fragments of one finding each, in order
		line             string   // if set: the first finding is on the line holding this
	}
	cases := []tc{
		{name: "json/no routes", file: "c.json", text: `{"upstream_cluster": "model"}`, want: []string{"c.json: routes: is required"}},
		{name: "json/unknown field", file: "c.json", text: "{\n\"routes\": [" + route + "],\n\"upstream_clustr\": \"x\"}",
			want: []string{"upstream_clustr: unknown field"}, line: `"upstream_clustr"`},
		{name: "json/duplicate field", file: "c.json", text: `{"routes": [` + route + `], "routes": [` + route + `]}`,
			want: []string{"routes: duplicate field"}},
		{name: "json/syntax", file: "c.json", text: `{"routes": [`, want: []string{"configuration: is not valid JSON"}},
		{name: "json/two errors", file: "c.json",
			text: `{"routes":[{"name":"c","kind":"chat","path_prefix":"/x","statuses":[500]}],"max_request_bytes":-1}`,
			want: []string{"max_request_bytes: must be between", "routes[0].statuses[0]: must be between 200 and 299"}},
		{name: "envoy/route kind", file: "envoy/envoy.yaml",
			text: broken(t, "envoy/envoy.yaml", `"kind": "rerank"`, `"kind": "re-rank"`),
			want: []string{"typed_config.config.configuration.value: routes[4].kind: must be one of"}, line: `"re-rank"`},
		{name: "envoy/ttl", file: "envoy/envoy.yaml",
			text: broken(t, "envoy/envoy.yaml", `"ttl": "24h"`, `"ttl": "24 hours"`),
			want: []string{`routes[2].ttl: invalid duration "24 hours"`}, line: `"24 hours"`},
		{name: "envoy/configuration type", file: "envoy/envoy.yaml",
			text: broken(t, "envoy/envoy.yaml", `type.googleapis.com/google.protobuf.StringValue`, `type.googleapis.com/google.protobuf.Struct`),
			want: []string{"configuration.@type: is \"type.googleapis.com/google.protobuf.Struct\""}},
		{name: "bench/route name", file: "envoy/bench/cache.yaml",
			text: broken(t, "envoy/bench/cache.yaml", `"name": "hit"`, `"name": "hit me"`),
			want: []string{"routes[0].name: may only contain letters"}, line: `"hit me"`},
		{name: "wasmplugin/ttl", file: "envoy/istio/wasmplugin.yaml",
			text: broken(t, "envoy/istio/wasmplugin.yaml", "ttl: 24h", "ttl: 24 hours"),
			want: []string{"WasmPlugin ml-clients/modelcache spec.pluginConfig: routes[1].ttl: invalid duration"}, line: "24 hours"},
		{name: "wasmplugin/unknown field", file: "envoy/istio/wasmplugin.yaml",
			text: broken(t, "envoy/istio/wasmplugin.yaml", "    routes:\n", "    cache_size: 10\n    routes:\n"),
			want: []string{"cache_size: unknown field"}, line: "cache_size"},
		{name: "wasmplugin/not a mapping", file: "envoy/istio/wasmplugin.yaml",
			text: broken(t, "envoy/istio/wasmplugin.yaml", "  pluginConfig:\n", "  pluginConfig: '{}'\n  oldPluginConfig:\n"),
			want: []string{"spec.pluginConfig: must be a mapping"}},
		{name: "envoyfilter/path_prefix", file: "envoy/istio/envoyfilter.yaml",
			text: broken(t, "envoy/istio/envoyfilter.yaml", `"path_prefix": "/v1/embeddings"`, `"path_prefix": 5`),
			want: []string{"spec.configPatches[0].patch.value.typed_config.config.configuration.value: routes[1].path_prefix: must be a string"},
			line: `"path_prefix": 5`},
		{name: "envoyfilter/statuses", file: "envoy/istio/envoyfilter.yaml",
			text: broken(t, "envoy/istio/envoyfilter.yaml", `"ttl": "10m"}`, `"ttl": "10m", "statuses": [503]}`),
			want: []string{"routes[0].statuses[0]: must be between 200 and 299"}},
		{name: "multi-doc/both broken", file: "mesh.yaml",
			text: broken(t, "envoy/istio/wasmplugin.yaml", "ttl: 10m", "ttl: 10") + "---\n" +
				broken(t, "envoy/istio/envoyfilter.yaml", `"kind": "chat"`, `"kind": "talk"`),
			want: []string{"doc 1 WasmPlugin ml-clients/modelcache spec.pluginConfig: routes[0].ttl: must be a duration",
				"doc 2 spec.configPatches[0]", "routes[0].kind: must be one of"}},
		{name: "yaml/syntax", file: "x.yaml", text: "static_resources: [\n", want: []string{"not valid YAML"}},
	}
	if len(cases) < 10 {
		t.Fatal("too few cases")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := lintBytes(c.file, []byte(c.text))
			var lines []string
			for _, f := range l.findings {
				lines = append(lines, f.String())
			}
			all := strings.Join(lines, "\n")
			if len(l.findings) == 0 {
				t.Fatalf("accepted")
			}
			rest := all
			for _, w := range c.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("no %q (in order) in:\n%s", w, all)
				}
				rest = rest[i+len(w):]
			}
			if !strings.HasPrefix(lines[0], c.file+":") {
				t.Fatalf("finding does not start with the file name: %s", lines[0])
			}
			if c.line != "" {
				if want := lineOf(t, c.text, c.line); l.findings[0].line != want {
					t.Fatalf("line %d, want %d: %s", l.findings[0].line, want, lines[0])
				}
			}
		})
	}
}

// The command: exit 0 on the shipped configs, 1 with every problem printed
// when one is broken, 2 on usage errors.
func TestLintCommandExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	args := append([]string{"lint", "-allow-none"}, shippedConfigs(t)...)
	if rc := run(args, &out, &errb); rc != 0 {
		t.Fatalf("shipped configs: exit %d\n%s%s", rc, out.String(), errb.String())
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"routes":[{"name":"c","kind":"chat","path_prefix":"/x","ttl":"1 h"}],"x":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if rc := run([]string{"lint", "-q", bad}, &out, &errb); rc != 1 {
		t.Fatalf("broken config: exit %d", rc)
	}
	if got := strings.Count(out.String(), bad+":1: "); got != 2 {
		t.Fatalf("want 2 findings on stdout, got:\n%s", out.String())
	}
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, []byte("admin: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rc := run([]string{"lint", "-q", empty}, &out, &errb); rc != 1 {
		t.Fatalf("file without configuration: exit %d", rc)
	}
	if rc := run([]string{"lint", "-q", "-allow-none", empty}, &out, &errb); rc != 0 {
		t.Fatalf("file without configuration, -allow-none: exit %d", rc)
	}
	if rc := run([]string{"lint"}, &out, &errb); rc != 2 {
		t.Fatalf("no files: exit %d", rc)
	}
}

// A wasm filter that is not modelcache is left alone.
func TestLintSkipsOtherWasmFilters(t *testing.T) {
	y := `http_filters:
- name: envoy.filters.http.wasm
  typed_config:
    "@type": ` + wasmFilterType + `
    config:
      root_id: coraza
      vm_config: {vm_id: waf, code: {local: {filename: /etc/coraza.wasm}}}
      configuration: {"@type": ` + stringValue + `, value: "{\"directives_map\": {}}"}
`
	l := lintBytes("waf.yaml", []byte(y))
	if len(l.findings) != 0 || l.checked != 0 || len(l.skipped) != 1 {
		t.Fatalf("findings %v checked %d skipped %v", l.findings, l.checked, l.skipped)
	}
}

// An Envoy config whose filter arrives through ECDS from a file (as the
// shipped envoy/istio/ecds/envoy.yaml) is linted through that file, found
// as Envoy would (relative to its working directory) or relative to the
// linted file's directory or one above it.
func TestLintFollowsECDSFiles(t *testing.T) {
	dir := t.TempDir()
	boot := `static_resources:
  listeners:
  - filter_chains:
    - filters:
      - typed_config:
          http_filters:
          - name: ns.modelcache
            config_discovery:
              config_source: {path_config_source: {path: conf/ecds.yaml}}
              type_urls: ["` + wasmFilterType + `"]
`
	ecds, err := os.ReadFile("../../envoy/istio/ecds/modelcache.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	bootPath := filepath.Join(dir, "conf", "boot.yaml")
	ecdsPath := filepath.Join(dir, "conf", "ecds.yaml")
	write := func(p, text string) {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(bootPath, boot)
	write(ecdsPath, string(ecds))
	if l := lintBytes(bootPath, []byte(boot)); len(l.findings) != 0 || l.checked != 1 {
		t.Fatalf("good ECDS file: checked %d, findings %v", l.checked, l.findings)
	}
	write(ecdsPath, strings.Replace(string(ecds), `"ttl": "10m"`, `"ttl": "10 minutes"`, 1))
	l := lintBytes(bootPath, []byte(boot))
	if len(l.findings) != 1 || !strings.Contains(l.findings[0].String(), ecdsPath+":") ||
		!strings.Contains(l.findings[0].msg, "routes[0].ttl") {
		t.Fatalf("broken ECDS file: %v", l.findings)
	}
	write(bootPath, strings.Replace(boot, "conf/ecds.yaml", "conf/missing.yaml", 1))
	l = lintBytes(bootPath, []byte(strings.Replace(boot, "conf/ecds.yaml", "conf/missing.yaml", 1)))
	if len(l.findings) != 1 || !strings.Contains(l.findings[0].msg, "conf/missing.yaml") {
		t.Fatalf("missing ECDS file: %v", l.findings)
	}
}

// Per-route opt-outs in envoy/envoy.yaml (lint_routes.go): a key that names
// no filter, and a route that disables the filter for every request of
// one of its routes or its purge path, are refused; opt-outs that leave
// every such request reaching the filter (or that cannot be told) pass.
func TestLintRouteOptOuts(t *testing.T) {
	const file = "envoy/envoy.yaml"
	const optOutMatch = `{path_separated_prefix: "/v1/models"}`
	const key = "                  envoy.filters.http.wasm:\n"
	const catchAll = "              - match: {prefix: \"/\"}\n"
	const vhost = "            - name: models\n              domains: [\"*\"]\n"
	const disable = "                  envoy.filters.http.wasm:\n" +
		"                    \"@type\": type.googleapis.com/envoy.config.route.v3.FilterConfig\n" +
		"                    disabled: true\n"
	const vhostDisable = "              typed_per_filter_config:\n" +
		"                envoy.filters.http.wasm:\n" +
		"                  \"@type\": type.googleapis.com/envoy.config.route.v3.FilterConfig\n" +
		"                  disabled: true\n"
	// The opt-out route as shipped is routes[0], the catch-all routes[1].
	const where = "route_config.virtual_hosts[0].routes["
	refused := []struct {
		name, text string
		want       []string // fragments of the one finding
		line       string   // it is on the line holding this
	}{
		{"misspelled key", broken(t, file, key, strings.Replace(key, "wasm:", "wasmx:", 1)),
			[]string{`"envoy.filters.http.wasmx" names no filter`, "envoy.filters.http.router, envoy.filters.http.wasm"}, "wasmx:"},
		{"opt-out covers a cached route", broken(t, file, optOutMatch, `{prefix: "/v1/chat"}`),
			[]string{where + "0]: disables the modelcache filter \"envoy.filters.http.wasm\"", `routes[0] "chat" (path_prefix "/v1/chat/completions")`}, `"/v1/chat"`},
		{"opt-out covers the purge path", broken(t, file, optOutMatch, `{path: "/modelcache/purge"}`),
			[]string{where + "0]:", `purge.path "/modelcache/purge"`}, `"/modelcache/purge"}`},
		{"case-insensitive opt-out", broken(t, file, optOutMatch, `{prefix: "/V1/EMBEDDINGS", case_sensitive: false}`),
			[]string{where + "0]:", `routes[2] "embeddings"`}, `"/V1/EMBEDDINGS"`},
		{"virtual host disables it", broken(t, file, vhost, vhost+vhostDisable),
			[]string{where + "1]:", `routes[0] "chat"`, `routes[4] "rerank"`, `purge.path`}, `- match: {prefix: "/"}`},
		{"disabled by default, enabled only where it does not cache", broken(t, file, "          - name: envoy.filters.http.wasm\n",
			"          - name: envoy.filters.http.wasm\n            disabled: true\n"),
			[]string{where + "1]:", `routes[0] "chat"`}, `- match: {prefix: "/"}`},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			l := lintBytes(file, []byte(c.text))
			if len(l.findings) != 1 {
				t.Fatalf("want 1 finding, got %v", l.findings)
			}
			got := l.findings[0].String()
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Fatalf("no %q in %s", w, got)
				}
			}
			if want := lineOf(t, c.text, c.line); l.findings[0].line != want {
				t.Fatalf("line %d, want %d: %s", l.findings[0].line, want, got)
			}
		})
	}
	accepted := []struct{ name, text string }{
		{"shipped", broken(t, file, optOutMatch, optOutMatch)},
		{"opt-out below a cached prefix", broken(t, file, optOutMatch, `{prefix: "/v1/chat/completions/health"}`)},
		{"conditional opt-out", broken(t, file, optOutMatch, `{prefix: "/v1/chat", headers: [{name: x-no-cache, present_match: true}]}`)},
		{"an earlier route keeps the filter", broken(t, file, "              routes:\n",
			"              routes:\n              - match: {prefix: \"/v1/chat/completions\"}\n                route: {cluster: model}\n")},
		{"regex opt-out: cannot be told", broken(t, file, optOutMatch, `{safe_regex: {regex: "/v1/.*"}}`)},
		{"case-sensitive opt-out in other case", broken(t, file, optOutMatch, `{prefix: "/V1/CHAT", case_sensitive: true}`)},
		{"virtual host disables it, the catch-all enables it", broken(t, file, catchAll+"                route: {cluster: model, timeout: 120s}\n",
			catchAll+"                route: {cluster: model, timeout: 120s}\n"+
				"                typed_per_filter_config:\n"+strings.Replace(disable, "disabled: true", "config: {}", 1))},
	}
	// The last case also needs the virtual host's opt-out.
	last := &accepted[len(accepted)-1]
	if strings.Count(last.text, vhost) != 1 {
		t.Fatal("no virtual host to disable the filter on")
	}
	last.text = strings.Replace(last.text, vhost, vhost+vhostDisable, 1)
	for _, c := range accepted {
		t.Run("accepts/"+c.name, func(t *testing.T) {
			if l := lintBytes(file, []byte(c.text)); len(l.findings) != 0 || l.checked != 1 {
				t.Fatalf("checked %d, findings %v", l.checked, l.findings)
			}
		})
	}
}

// The linter knows key_headers (it validates with cachecore's parser): a
// route keyed by a request header lints clean, and a name that cannot be
// keyed is a finding on its own line.
func TestLintKnowsKeyHeaders(t *testing.T) {
	const file = "envoy/istio/wasmplugin.yaml"
	good := broken(t, file, "      ttl: 10m\n", "      ttl: 10m\n      key_headers: [openai-project, OpenAI-Organization]\n")
	if l := lintBytes(file, []byte(good)); len(l.findings) != 0 || l.checked != 1 {
		t.Fatalf("findings %v (checked %d)", l.findings, l.checked)
	}
	bad := broken(t, file, "      ttl: 10m\n", "      ttl: 10m\n      key_headers:\n      - openai-project\n      - authorization\n")
	l := lintBytes(file, []byte(bad))
	if len(l.findings) != 1 || !strings.Contains(l.findings[0].msg, `routes[0].key_headers[1]: "authorization" carries credentials`) {
		t.Fatalf("findings %v", l.findings)
	}
	if want := lineOf(t, bad, "- authorization"); l.findings[0].line != want {
		t.Fatalf("line %d, want %d: %s", l.findings[0].line, want, l.findings[0])
	}
}
