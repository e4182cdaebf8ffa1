package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/cachecore"
)

// README, modelcache lint: "Validates every modelcache configuration in
// each file with the filter's own parser (cachecore.ParseConfig, the same
// errors the plugin would log at start) ...: a JSON filter configuration".
// A filter configuration with a stray top-level member that happens to be
// one of the names lint takes for an Envoy config or a manifest ("kind",
// "config", "resources", ...) is not read as a filter configuration at
// all: lint reports "no modelcache filter configuration found", and with
// -allow-none (as make lint-config runs it) passes a configuration the
// filter refuses at start ("kind: unknown field").
func TestLintReadsAFilterConfigWithAStrayManifestKey(t *testing.T) {
	cfg := `{"kind":"chat","routes":[{"name":"c","kind":"chat","path_prefix":"/v1/chat/completions"}]}`
	if _, err := cachecore.ParseConfig([]byte(cfg)); err == nil {
		t.Fatalf("setup: the filter accepts %s", cfg)
	}
	f := filepath.Join(t.TempDir(), "filter.json")
	if err := os.WriteFile(f, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := runLint([]string{"-allow-none", f}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "kind: unknown field") {
		t.Fatalf("lint -allow-none exit %d, stdout %q, stderr %q; want exit 1 naming \"kind: unknown field\" as the filter logs at start", code, out.String(), errb.String())
	}
}
