package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The linter reads untrusted files and bounds a document's alias expansion
// to 2^20 nodes (RATIONALE, "modelcache lint shares the parser"), but that
// bound counts YAML nodes, not the work and output each node causes: a
// wasm filter written once behind an anchor and aliased N times is parsed
// by ParseConfig N times and its every error reported N times. A 23 KB file
// (one 200-route configuration with an error per route, aliased 2000 times)
// yields 780,000 findings (~137 MB of output); the same shape at the
// node bound (~55,000 aliases of a filter holding a 1024-route
// configuration, under 400 KB of YAML) asks for over 55 million findings
// (well over 10 GB) and exhausts memory.
// The same configuration node should be linted (and its errors reported)
// once, however many aliases reach it.
func TestLintAliasedConfigurationIsLintedOnce(t *testing.T) {
	var routes []string
	for i := 0; i < 200; i++ {
		routes = append(routes, fmt.Sprintf(`{"name":"r%d","path_prefix":"/p%d","kind":"chat","ttl":"bogus"}`, i, i))
	}
	cfg := `{"routes":[` + strings.Join(routes, ",") + `]}`
	var b strings.Builder
	b.WriteString("http_filters:\n- &f\n  name: modelcache\n  typed_config:\n    \"@type\": " + wasmFilterType +
		"\n    config:\n      root_id: modelcache\n      configuration:\n        \"@type\": " + stringValue + "\n        value: '" + cfg + "'\n")
	const aliases = 2000
	for i := 0; i < aliases; i++ {
		b.WriteString("- *f\n")
	}
	start := time.Now()
	l := lintBytes("aliased.yaml", []byte(b.String()))
	took := time.Since(start)
	out := 0
	for _, f := range l.findings {
		out += len(f.String()) + 1
	}
	// One configuration with 200 errors: its 200 findings (plus a few
	// more about the file) are the whole report.
	if len(l.findings) > 1000 {
		t.Errorf("%d-byte input: %d findings (%d bytes of output, %v), %d ParseConfig runs; want the aliased configuration's 200 errors reported once",
			b.Len(), len(l.findings), out, took, l.checked)
	}
}
