// Package wasmbuild builds the filter's wasm module for tests, once per test
// binary, with the same command the Makefile uses. Tests always run against
// the module built from the code under test, never a stale artifact.
package wasmbuild

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	once sync.Once
	path string
	err  error
	out  []byte
)

// Filter returns the path of a freshly built modelcache.wasm.
func Filter(tb testing.TB) string {
	tb.Helper()
	once.Do(func() {
		var dir string
		dir, err = os.MkdirTemp("", "modelcache-wasm-")
		if err != nil {
			return
		}
		path = filepath.Join(dir, "modelcache.wasm")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build",
			"-buildmode=c-shared", "-o", path, "./filter")
		cmd.Dir = moduleRoot()
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		out, err = cmd.CombinedOutput()
	})
	if err != nil {
		tb.Fatalf("building filter: %v\n%s", err, out)
	}
	return path
}

// Bytes returns the built module's bytes.
func Bytes(tb testing.TB) []byte {
	b, err := os.ReadFile(Filter(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
