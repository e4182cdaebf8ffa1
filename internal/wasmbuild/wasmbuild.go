// Package wasmbuild builds the filter's wasm module for tests, once per test
// binary (and set of build tags), as the Makefile does: go build, then its
// branch hints (internal/wasmhint).
// Tests always run against the module built from the code under test, never
// a stale artifact.
package wasmbuild

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
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
		id, err := moduleID(moduleRoot())
		if err != nil {
			b.err = err
			return
		}
		args := []string{"build", "-buildmode=c-shared", "-ldflags", "-X main.moduleID=" + id, "-o", b.path}
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

// moduleID is the Makefile's build name for the module (main.moduleID):
// the first 16 hex digits of the SHA-256 of its sources (GO_SOURCES: the
// non-test Go files under filter, cachecore, internal/wasmhint and
// cmd/wasmhint, go.mod and go.sum), concatenated in path order.
func moduleID(root string) (string, error) {
	var paths []string
	for _, dir := range []string{"filter", "cachecore", "internal/wasmhint", "cmd/wasmhint"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
				rel, _ := filepath.Rel(root, p)
				paths = append(paths, filepath.ToSlash(rel))
			}
			return err
		})
		if err != nil {
			return "", err
		}
	}
	paths = append(paths, "go.mod", "go.sum")
	sort.Strings(paths)
	h := sha256.New()
	for _, p := range paths {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
