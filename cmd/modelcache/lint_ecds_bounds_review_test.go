//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// An ECDS file is followed wherever config_discovery's path points, and
// read whole with os.ReadFile: a path of /dev/zero (or any endless or huge
// file) in an untrusted config makes the linter read until memory runs out
// and crash (Envoy itself refuses paths under /dev). The linter must stay
// bounded: report such a path (or a file over a size limit) as a finding.
// Run in a child process whose address space is capped at 1 GiB, so the
// unbounded read fails fast instead of taking the machine's memory.
func TestLintECDSPathIsReadBounded(t *testing.T) {
	if os.Getenv("MODELCACHE_LINT_DEVZERO_CHILD") == "1" {
		lim := &syscall.Rlimit{Cur: 1 << 30, Max: 1 << 30}
		if err := syscall.Setrlimit(syscall.RLIMIT_AS, lim); err != nil {
			fmt.Println("setrlimit:", err)
			os.Exit(3)
		}
		f := filepath.Join(os.Getenv("MODELCACHE_LINT_DIR"), "envoy.yaml")
		os.Exit(run([]string{"lint", "-q", f}, os.Stdout, os.Stderr))
	}
	dir := t.TempDir()
	y := `http_filters:
- name: modelcache
  config_discovery:
    config_source:
      path_config_source:
        path: /dev/zero
    type_urls: ["` + wasmFilterType + `"]
- name: envoy.filters.http.router
`
	if err := os.WriteFile(filepath.Join(dir, "envoy.yaml"), []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLintECDSPathIsReadBounded$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MODELCACHE_LINT_DEVZERO_CHILD=1", "MODELCACHE_LINT_DIR="+dir)
	done := make(chan struct{})
	var outb []byte
	var err error
	go func() { outb, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("lint of a config_discovery path /dev/zero still running after 60s")
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	out := string(outb)
	if len(out) > 300 {
		out = out[:300] + "…"
	}
	if code != 1 || strings.Contains(out, "out of memory") {
		t.Errorf("lint of a config_discovery path /dev/zero: exit %d, output:\n%s\nwant exit 1 with a finding naming the path", code, out)
	}
}
