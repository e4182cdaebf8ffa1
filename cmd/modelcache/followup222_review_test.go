package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Review Z222: follow-up of review Z218's fix (a followed file checked
// already counts as the follower's configuration).

// An Envoy config whose two listeners both take their HTTP filter from one
// ECDS file, and that file holds another team's wasm filter, not
// modelcache's: there is no modelcache configuration anywhere. The first
// config_discovery lints the file (0 configurations, skipped as not
// modelcache); the second finds it "seen" and counts it as one
// configuration (l.checked++ whatever the file held), so lint prints
// "ok (1 configuration(s))" and exits 0. With one listener the same file
// is "no modelcache filter configuration found", exit 1. Expected: the
// same finding and exit 1 with two listeners — a file seen already counts
// the configurations it held, not one.
func TestFollowup222LintSharedNonModelcacheECDSFileCountsNoConfiguration(t *testing.T) {
	dir := t.TempDir()
	ecds := filepath.Join(dir, "authz.yaml")
	if err := os.WriteFile(ecds, []byte(`resources:
- "@type": type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig
  name: ml-clients.authz
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
    config:
      name: ml-clients.authz
      root_id: authz
      vm_config:
        runtime: envoy.wasm.runtime.v8
        code: {local: {filename: build/authz.wasm}}
      configuration:
        "@type": type.googleapis.com/google.protobuf.StringValue
        value: '{"policy": "allow"}'
`), 0o644); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../envoy/istio/ecds/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	boot := strings.Replace(string(raw), "path: envoy/istio/ecds/modelcache.yaml", "path: "+ecds, 1)
	boot = strings.ReplaceAll(boot, "name: ml-clients.modelcache", "name: ml-clients.authz")
	i, j := strings.Index(boot, "  - name: models\n"), strings.Index(boot, "  clusters:")
	if boot == string(raw) || i < 0 || j < i {
		t.Fatal("shipped ECDS bootstrap changed: fix the test's edits")
	}
	listener := boot[i:j]
	second := strings.Replace(strings.Replace(listener, "name: models\n", "name: models2\n", 1), "port_value: 10000", "port_value: 10001", 1)
	one := filepath.Join(dir, "one.yaml")
	two := filepath.Join(dir, "two.yaml")
	if err := os.WriteFile(one, []byte(boot), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(two, []byte(boot[:j]+second+boot[j:]), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runLint([]string{one}, &stdout, &stderr); code != 1 || !strings.Contains(stdout.String(), "no modelcache filter configuration found") {
		t.Fatalf("control (one listener): exit %d, want 1 with 'no modelcache filter configuration found':\n%s%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	code := runLint([]string{two}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stdout.String(), "no modelcache filter configuration found") {
		t.Fatalf("two listeners sharing a non-modelcache ECDS file: exit %d, want 1 with 'no modelcache filter configuration found':\n%s%s", code, stdout.String(), stderr.String())
	}
}
