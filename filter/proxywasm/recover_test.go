//go:build !wasip1

package proxywasm_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// A Go panic must never trap the VM: the binding recovers it, logs it,
// reports it to the panic hook, and lets the stream through (fail open).
// The plugin under test panics in the callback a request header names.
func TestPanicsFailOpen(t *testing.T) {
	var upstream int
	h := startPanicGuest(t, func(u *wasmhost.UpstreamRequest) {
		upstream++
		u.Respond(200, [][2]string{{"content-type", "text/plain"}}, []byte("from upstream"))
	})
	for i, where := range []string{"request-headers", "request-body", "response-headers", "request-headers"} {
		res, err := h.Exchange(0, wasmhost.Request{
			Headers: [][2]string{{":method", "POST"}, {":path", "/"}, {":authority", "x"}, {"x-panic-in", where}},
			Body:    []byte("body"),
		})
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if res.Status != 200 || string(res.Body) != "from upstream" {
			t.Fatalf("%s: status %d body %q: the stream did not fail open", where, res.Status, res.Body)
		}
		if upstream != i+1 {
			t.Fatalf("%s: upstream saw %d requests", where, upstream)
		}
	}
	if failed := h.FailedVMs(); len(failed) != 0 {
		t.Fatalf("a panic trapped the VM: %v", failed)
	}
	if n, _ := h.Counter("panicguest.panics"); n != 4 {
		t.Fatalf("panic hook ran %d times, want 4", n)
	}
	logs := h.LogsContaining("panic in proxy_on_")
	if len(logs) != 4 || !strings.Contains(logs[1].Msg, "boom in request body") {
		t.Fatalf("panics not logged: %v", logs)
	}
}

// A stream whose OnHttpStreamDone panicked is never offered for reuse
// (OnHttpStreamDeleted): its state is whatever the panic left.
func TestPanicInStreamDoneIsNeverReused(t *testing.T) {
	h := startPanicGuest(t, func(u *wasmhost.UpstreamRequest) {
		u.Respond(200, [][2]string{{"content-type", "text/plain"}}, []byte("ok"))
	})
	if _, err := h.Exchange(0, wasmhost.Request{
		Headers: [][2]string{{":method", "POST"}, {":path", "/"}, {":authority", "x"}, {"x-panic-in", "done"}},
		Body:    []byte("body"),
	}); err != nil {
		t.Fatal(err)
	}
	if n, _ := h.Counter("panicguest.panics"); n != 1 {
		t.Fatalf("panics: %d", n)
	}
	if n, _ := h.Counter("panicguest.deleted_after_panic"); n != 0 {
		t.Fatalf("a stream that panicked in OnHttpStreamDone was offered for reuse (OnHttpStreamDeleted ran %d times)", n)
	}
}

// The plugin is told of a stream a panic broke as StreamBrokenNotifier
// promises, once the panic is recovered and again when the stream is
// deleted, whichever callback panicked: the stream's end
// (OnHttpStreamDone) too, which before was told at the deletion only, and
// not at all when the end ran in on_delete.
func TestPanicTellsThePluginTwice(t *testing.T) {
	for _, where := range []string{"request-body", "done"} {
		h := startPanicGuest(t, func(u *wasmhost.UpstreamRequest) {
			u.Respond(200, [][2]string{{"content-type", "text/plain"}}, []byte("ok"))
		})
		if _, err := h.Exchange(0, wasmhost.Request{
			Headers: [][2]string{{":method", "POST"}, {":path", "/"}, {":authority", "x"}, {"x-panic-in", where}},
			Body:    []byte("body"),
		}); err != nil {
			t.Fatal(err)
		}
		if n, _ := h.Counter("panicguest.broken"); n != 2 {
			t.Fatalf("panic in %s: the plugin was told %d times of its broken stream, want 2", where, n)
		}
	}
}

// startPanicGuest builds internal/panicguest and runs it on one worker.
func startPanicGuest(t *testing.T, upstream func(*wasmhost.UpstreamRequest)) *wasmhost.Host {
	t.Helper()
	dir := t.TempDir()
	wasm := filepath.Join(dir, "panicguest.wasm")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-buildmode=c-shared", "-o", wasm, "./internal/panicguest")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	code, _ := os.ReadFile(wasm)
	ctx := context.Background()
	mod, err := wasmhost.Compile(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mod.Close(ctx) })
	h, err := wasmhost.New(ctx, mod, wasmhost.Config{Workers: 1, AllowOnHeadersStopIteration: true, Upstream: upstream})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}
