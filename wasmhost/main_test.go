package wasmhost

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// testModule is the test guest, built and compiled once per test binary.
var testModule *Module

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wasmhost-testguest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	wasmPath := filepath.Join(dir, "testguest.wasm")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-o", wasmPath, "./internal/testguest")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the test guest: %v\n%s", err, out)
		return 1
	}
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	testModule, err = Compile(context.Background(), wasm)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer testModule.Close(context.Background())
	return m.Run()
}

// newHost starts a host on the test guest and closes it with the test. On
// failure the plugin's log is printed, which is usually the explanation.
func newHost(t *testing.T, cfg Config) *Host {
	t.Helper()
	if cfg.Clusters == nil {
		cfg.Clusters = []string{"upstream"}
	}
	h, err := New(context.Background(), testModule, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range h.Logs() {
				t.Log(l.String())
			}
		}
		h.Close()
	})
	return h
}

// req builds request headers for an x-op.
func req(op string, kv ...string) [][2]string {
	h := [][2]string{{":method", "POST"}, {":path", "/v1/chat"}, {":authority", "model"}, {"x-op", op}}
	for i := 0; i+1 < len(kv); i += 2 {
		h = append(h, [2]string{kv[i], kv[i+1]})
	}
	return h
}

func header(pairs [][2]string, key string) string { return getHeader(pairs, key) }

func mustExchange(t *testing.T, h *Host, worker int, r Request) *ClientResponse {
	t.Helper()
	resp, err := h.Exchange(worker, r)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func countLogs(h *Host, vm, substr string) int {
	n := 0
	for _, l := range h.Logs() {
		if (vm == "" || l.VM == vm) && strings.Contains(l.Msg, substr) {
			n++
		}
	}
	return n
}

func itoa(n int) string { return strconv.Itoa(n) }

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
