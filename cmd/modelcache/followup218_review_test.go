package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Review Z218: follow-up of review Z217's fix (lint keeps one record of the
// files checked across the command line).

// writeECDSPair writes the shipped ECDS bootstrap (naming ecdsPath) and its
// ECDS file into dir; the bootstrap's only modelcache configuration is the
// one its config_discovery follows.
func writeECDSPair(t *testing.T, dir, bootName string) (bootPath, ecdsPath string) {
	t.Helper()
	boot, err := os.ReadFile("../../envoy/istio/ecds/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ecds, err := os.ReadFile("../../envoy/istio/ecds/modelcache.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bootPath = filepath.Join(dir, bootName)
	ecdsPath = filepath.Join(dir, "modelcache.yaml")
	bootText := strings.Replace(string(boot), "path: envoy/istio/ecds/modelcache.yaml", "path: "+ecdsPath, 1)
	if bootText == string(boot) {
		t.Fatal("shipped ECDS bootstrap changed: fix the test's replacement")
	}
	if err := os.WriteFile(bootPath, []byte(bootText), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ecdsPath, ecds, 0o644); err != nil {
		t.Fatal(err)
	}
	return bootPath, ecdsPath
}

// The ECDS file named first, then the Envoy config that follows it (both
// valid, the order `ls`/a shell glob gives for e.g. ecds.yaml envoy.yaml):
// the config's config_discovery now finds the file "seen" and adds nothing,
// so the Envoy config counts 0 configurations and is reported as "no
// modelcache filter configuration found", exit 1 — a problem invented by
// the order of the arguments (the other order passes). Expected: exit 0, no
// finding.
func TestFollowup218LintECDSFileFirstThenItsEnvoyConfigIsNoProblem(t *testing.T) {
	bootPath, ecdsPath := writeECDSPair(t, t.TempDir(), "envoy.yaml")
	var stdout, stderr bytes.Buffer
	if code := runLint([]string{bootPath, ecdsPath}, &stdout, &stderr); code != 0 {
		t.Fatalf("control (Envoy config first): exit %d:\n%s%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	code := runLint([]string{ecdsPath, bootPath}, &stdout, &stderr)
	if code != 0 || stdout.Len() != 0 {
		t.Fatalf("ECDS file first, then its (valid) Envoy config: exit %d, want 0; findings:\n%s%s", code, stdout.String(), stderr.String())
	}
}

// Two Envoy configs (two proxies, two listeners' bootstraps) following the
// same valid ECDS file: before the fix each was linted on its own; now the
// second finds the ECDS file "seen", counts 0 configurations and fails with
// "no modelcache filter configuration found". Expected: both pass, exit 0.
func TestFollowup218LintTwoEnvoyConfigsSharingOneECDSFileBothPass(t *testing.T) {
	dir := t.TempDir()
	boot1, _ := writeECDSPair(t, dir, "envoy-a.yaml")
	data, err := os.ReadFile(boot1)
	if err != nil {
		t.Fatal(err)
	}
	boot2 := filepath.Join(dir, "envoy-b.yaml")
	if err := os.WriteFile(boot2, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := runLint([]string{boot1, boot2}, &stdout, &stderr)
	if code != 0 || stdout.Len() != 0 {
		t.Fatalf("two valid Envoy configs sharing one ECDS file: exit %d, want 0; findings:\n%s%s", code, stdout.String(), stderr.String())
	}
}

// The ECDS file reached through a symlink by the Envoy config (as a
// ConfigMap mount's ..data links are) and given by its real path: the
// record is kept by filepath.Abs, which resolves no link, so a broken ttl
// is printed and counted twice — what review Z217's fix meant to end.
// Expected: one line for one problem.
func TestFollowup218LintECDSFileBySymlinkAndRealPathReportsOnce(t *testing.T) {
	dir := t.TempDir()
	bootPath, ecdsPath := writeECDSPair(t, dir, "envoy.yaml")
	ecds, err := os.ReadFile(ecdsPath)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(ecds), `"ttl": "10m"`, `"ttl": "10 minutes"`, 1)
	if broken == string(ecds) {
		t.Fatal("shipped ECDS file changed: fix the test's replacement")
	}
	if err := os.WriteFile(ecdsPath, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink(ecdsPath, link); err != nil {
		t.Skip(err)
	}
	boot, err := os.ReadFile(bootPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bootPath, []byte(strings.Replace(string(boot), "path: "+ecdsPath, "path: "+link, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := runLint([]string{bootPath, ecdsPath}, &stdout, &stderr)
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if code != 1 || len(lines) != 1 {
		t.Fatalf("exit %d, %d finding line(s) for one broken ttl, want 1:\n%s%s", code, len(lines), stdout.String(), stderr.String())
	}
}
