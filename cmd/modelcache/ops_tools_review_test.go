package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Review Z217: modelcache oci and modelcache lint as operators run them.

// `modelcache oci` never checks for positional arguments: Go's flag
// package stops at the first one and every flag after it is silently
// dropped, yet the command exits 0. main.go's own usage line documents
// "-push REF", and -push is a bool, so `oci -push registry/x:v1 -repo …`
// pushes to the default repository; here a stray word before -wasmplugin
// leaves the pinned WasmPlugin unwritten (the stale one in build/istio is
// then applied) while the run reports success. Expected: a positional
// argument is a usage error (exit 2), or at least nothing after it is
// ignored.
func TestOpsToolsOCIStrayArgumentDropsLaterFlagsSilently(t *testing.T) {
	dir := t.TempDir()
	w := filepath.Join(dir, "m.wasm")
	if err := os.WriteFile(w, []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "istio", "wasmplugin.yaml")
	var stdout, stderr bytes.Buffer
	code := run([]string{"oci", "-wasm", w, "-layout", filepath.Join(dir, "oci"), "v1",
		"-wasmplugin", "../../envoy/istio/wasmplugin.yaml", "-wasmplugin-out", out}, &stdout, &stderr)
	_, statErr := os.Stat(out)
	if code == 0 && statErr != nil {
		t.Fatalf("exit 0 (stdout %q) with a stray argument \"v1\", and -wasmplugin-out %s was never written (%v): the flags after the argument were dropped silently; want a usage error (exit 2)",
			strings.TrimSpace(stdout.String()), out, statErr)
	}
}

// An ECDS file that a linted Envoy config names (path_config_source) is
// linted as part of that config; linted as well on its own (make
// lint-config passes envoy/istio/ecds/*.yaml, which holds both files), each
// of its problems is printed twice, identical, and counted twice ("2
// problem(s)" for one broken ttl). README: a configuration reached several
// ways "is checked, and reported, once". Expected: one line per problem.
func TestOpsToolsLintECDSFileGivenTooReportsEachProblemOnce(t *testing.T) {
	dir := t.TempDir()
	boot, err := os.ReadFile("../../envoy/istio/ecds/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ecds, err := os.ReadFile("../../envoy/istio/ecds/modelcache.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bootPath := filepath.Join(dir, "envoy.yaml")
	ecdsPath := filepath.Join(dir, "modelcache.yaml")
	bootText := strings.Replace(string(boot), "path: envoy/istio/ecds/modelcache.yaml", "path: "+ecdsPath, 1)
	ecdsText := strings.Replace(string(ecds), `"ttl": "10m"`, `"ttl": "10 minutes"`, 1)
	if bootText == string(boot) || ecdsText == string(ecds) {
		t.Fatal("shipped ECDS files changed: fix the test's replacements")
	}
	for p, text := range map[string]string{bootPath: bootText, ecdsPath: ecdsText} {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	code := runLint([]string{bootPath, ecdsPath}, &stdout, &stderr)
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], "routes[0].ttl") {
		t.Fatalf("exit %d, %d finding line(s) for one broken ttl, want 1:\n%s%s", code, len(lines), stdout.String(), stderr.String())
	}
}
