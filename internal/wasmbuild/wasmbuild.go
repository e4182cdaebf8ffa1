// Package wasmbuild builds the filter's wasm module for tests, once per test
// binary (and set of build tags), as the Makefile does: go build, then its
// branch hints (internal/wasmhint).
// Tests always run against the module built from the code under test, never
// a stale artifact.
package wasmbuild

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/modelcache/modelcache/internal/wasmhint"
)

type build struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

var (
	mu     sync.Mutex
	builds = map[string]*build{}
)

// Filter returns the path of a freshly built modelcache.wasm: the product
// module, exactly as make build produces it.
func Filter(tb testing.TB) string {
	tb.Helper()
	return FilterWithTags(tb)
}

// FilterWithTags builds the filter with extra build tags into a temporary
// directory, e.g. FilterWithTags(t, "modelcache_crashtest") for the
// test-only module that can trap on demand (filter/crashtest.go). Such
// variants never touch build/.
func FilterWithTags(tb testing.TB, tags ...string) string {
	tb.Helper()
	key := strings.Join(tags, ",")
	mu.Lock()
	b := builds[key]
	if b == nil {
		b = &build{}
		builds[key] = b
	}
	mu.Unlock()
	b.once.Do(func() {
		var dir string
		dir, b.err = os.MkdirTemp("", "modelcache-wasm-")
		if b.err != nil {
			return
		}
		b.path = filepath.Join(dir, "modelcache.wasm")
		args := []string{"build", "-buildmode=c-shared", "-o", b.path}
		if key != "" {
			args = append(args, "-tags", key)
		}
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append(args, "./filter")...)
		cmd.Dir = moduleRoot()
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b.out, b.err = cmd.CombinedOutput(); b.err == nil {
			b.err = wasmhint.File(b.path)
		}
	})
	if b.err != nil {
		tb.Fatalf("building filter (tags %q): %v\n%s", key, b.err, b.out)
	}
	return b.path
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
