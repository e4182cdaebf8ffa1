package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcache/modelcache/cachecore"
)

// Review Z249: the linter reads untrusted files "bounded in time and
// memory" (README: 16 MiB, 2^20 nodes), yet placing each of ParseConfig's
// findings (jsonLine: a gjson lookup from the start of the JSON, then a
// count of its newlines up to the member) costs a read of the JSON up to
// the member it names. A configuration with N unknown members is N
// findings, each placed by an O(N) scan: quadratic. 30,000 unknown members
// (about 330 KB) take seconds where ParseConfig itself takes milliseconds;
// a 16 MiB file (about 1.4 million members) takes hours. Expected: the
// findings are placed in time about linear in the input.
func TestZ249LintManyFindingsInBareJSONArePlacedInLinearTime(t *testing.T) {
	const n = 30000
	var b strings.Builder
	b.WriteString(`{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat"}]`)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, ",\n\"k%d\":0", i)
	}
	b.WriteString("}\n")
	in := []byte(b.String())
	start := time.Now()
	_, err := cachecore.ParseConfig(in)
	parse := time.Since(start)
	if err == nil {
		t.Fatal("premise: the filter accepts unknown members")
	}
	start = time.Now()
	l := lintBytes("filter.json", in)
	took := time.Since(start)
	if len(l.findings) != n {
		t.Fatalf("%d findings, want %d", len(l.findings), n)
	}
	// Counted, not timed (a bound in seconds broke under -race before):
	// each finding placed reads the JSON up to it. The time is a guard
	// against a hang only.
	if l.placed > maxPlacedFindings || took > 20*time.Second {
		t.Errorf("%d-byte bare JSON configuration with %d unknown members: %d findings placed by a read of the JSON up to them (quadratic: a 16 MiB file takes hours), want at most %d; lint took %v (ParseConfig %v)",
			len(in), n, l.placed, maxPlacedFindings, took, parse)
	}
}

// Review Z249: the same for a WasmPlugin's pluginConfig, where each
// finding is placed by locate, whose getK8s rebuilds the member list (and
// a map of its keys) of every mapping on the path: N unknown members of
// pluginConfig are N findings each costing O(N). 6,000 members (about
// 80 KB of YAML) take seconds, 20,000 (270 KB) over a minute; a 16 MiB
// manifest (the node bound allows 500,000 members) takes days. Expected:
// about linear.
func TestZ249LintManyFindingsInPluginConfigArePlacedInLinearTime(t *testing.T) {
	const n = 6000
	var b strings.Builder
	b.WriteString("apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: modelcache\nspec:\n  pluginConfig:\n    routes:\n    - name: chat\n      kind: chat\n      path_prefix: /v1/chat\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "    k%d: 0\n", i)
	}
	in := []byte(b.String())
	start := time.Now()
	l := lintBytes("wasmplugin.yaml", in)
	took := time.Since(start)
	if len(l.findings) != n {
		t.Fatalf("%d findings, want %d", len(l.findings), n)
	}
	if l.placed > maxPlacedFindings || took > 20*time.Second {
		t.Errorf("%d-byte WasmPlugin whose pluginConfig has %d unknown members: %d findings located, each rebuilding pluginConfig's member list (quadratic), want at most %d; lint took %v",
			len(in), n, l.placed, maxPlacedFindings, took)
	}
}

// Review Z249: the per-route opt-out check (lint_routes.go) runs, for
// every modelcache filter of a connection manager, for every route (and
// purge path) of its configuration, over every Envoy route in order
// (firstCovering): filters × cache routes × Envoy routes, each step
// rebuilding a member list. 16 modelcache filters of 512 routes each in
// front of 10,000 Envoy routes (a 780 KB file) take seconds; the file
// bound (16 MiB, 2^20 nodes) allows one that runs for about an hour.
// Expected: about linear in the input (or the check bounded).
func TestZ249LintRouteOptOutCheckIsNotFiltersTimesRoutesTimesEnvoyRoutes(t *testing.T) {
	const filters, specs, envoyRoutes = 16, 512, 10000
	var b strings.Builder
	b.WriteString("http_filters:\n")
	for f := 0; f < filters; f++ {
		var rs []string
		for i := 0; i < specs; i++ {
			rs = append(rs, fmt.Sprintf(`{"name":"f%dr%d","kind":"chat","path_prefix":"/m%d/%d/"}`, f, i, f, i))
		}
		fmt.Fprintf(&b, `- name: modelcache%d
  typed_config:
    "@type": %s
    config:
      root_id: modelcache%d
      configuration:
        "@type": %s
        value: '{"routes":[%s]}'
`, f, wasmFilterType, f, stringValue, strings.Join(rs, ","))
	}
	b.WriteString("- name: envoy.filters.http.router\nroute_config:\n  virtual_hosts:\n  - name: v\n    domains: [\"*\"]\n    routes:\n")
	for i := 0; i < envoyRoutes; i++ {
		fmt.Fprintf(&b, "    - match: {prefix: /z%d}\n", i)
	}
	in := []byte(b.String())
	start := time.Now()
	l := lintBytes("envoy.yaml", in)
	took := time.Since(start)
	if len(l.findings) != 0 || l.checked != filters {
		t.Fatalf("premise: %d configurations checked (want %d), findings %v", l.checked, filters, l.findings)
	}
	// Counted, not timed: the Envoy routes the opt-out check judged, for
	// all filters' routes together; none of these meets another's paths.
	if l.judged > filters*specs || took > 20*time.Second {
		t.Errorf("%d-byte Envoy config (%d modelcache filters × %d routes, %d Envoy routes): the opt-out check judged %d Envoy routes (filters × routes × Envoy routes), want at most %d; lint took %v",
			len(in), filters, specs, envoyRoutes, l.judged, filters*specs, took)
	}
}

// Review Z249: in a bare JSON configuration, ParseConfig refuses the
// second of two members of one name ("routes[0].ttl: duplicate field"),
// but the finding is placed by a gjson lookup, which finds the first: the
// line printed is the one of the member that is fine, not of the
// duplicate. Expected: the line of the duplicate (line 5 here), as the
// linter's own duplicate-key finding for YAML names the repeated key's
// line.
func TestZ249LintDuplicateFieldInBareJSONNamesTheDuplicatesLine(t *testing.T) {
	in := "{\"routes\":[{\"name\":\"chat\",\n" + // 1
		"\"kind\":\"chat\",\n" + // 2
		"\"path_prefix\":\"/v1/chat\",\n" + // 3
		"\"ttl\":\"1m\",\n" + // 4
		"\"ttl\":\"2m\"}]}\n" // 5: the duplicate
	l := lintBytes("filter.json", []byte(in))
	var got []string
	ok := false
	for _, f := range l.findings {
		got = append(got, f.String())
		if strings.Contains(f.msg, "routes[0].ttl: duplicate field") && f.line == 5 {
			ok = true
		}
	}
	if !ok {
		t.Errorf("findings %q: want routes[0].ttl: duplicate field on line 5 (the second ttl)", got)
	}
}

// Review Z249: `modelcache oci` refuses "inputs that are not a valid
// module" by the magic number alone (isWasm): any 8 bytes starting with
// \0asm are packaged, such as a WebAssembly component (version 0x0d, layer
// 1: what `wasm-tools component new` or a wasip2 build writes) or a binary
// of an unknown version. Envoy loads only core modules (version 1), so
// the image is pulled by every proxy and fails to load on each one.
// Expected: the version field (bytes 4-7) is checked; 01 00 00 00 alone
// is packaged.
func TestZ249OCIRefusesAComponentOrAnUnknownBinaryVersion(t *testing.T) {
	for name, mod := range map[string][]byte{
		"component (version 0x0d, layer 1)": []byte("\x00asm\x0d\x00\x01\x00\x00"),
		"version 2":                         []byte("\x00asm\x02\x00\x00\x00"),
	} {
		if _, err := buildImage(mod); err == nil {
			t.Errorf("%s: buildImage packaged it, want it refused as no core wasm module", name)
		}
		dir := t.TempDir()
		w := filepath.Join(dir, "m.wasm")
		if err := os.WriteFile(w, mod, 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		if code := run([]string{"oci", "-wasm", w, "-layout", filepath.Join(dir, "oci")}, &out, &errb); code == 0 {
			t.Errorf("%s: modelcache oci exit 0 (%s), want it refused", name, strings.TrimSpace(out.String()))
		}
	}
}
