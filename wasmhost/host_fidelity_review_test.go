package wasmhost

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Review Z143 (host_fidelity): places where wasmhost answers a plugin
// differently from Envoy + proxy-wasm-cpp-host, in ways that hide a
// filter defect from the filter's wasmhost tests.
//
// The tests drive a small guest of their own (fidelityGuestMain below,
// built with the test guest's raw ABI declarations), so that each one
// makes exactly the host calls it is about.

// fidelityGuestMain is the guest's program. Per request it does what the
// x-fid request header says:
//
//	grow-response: holds the response (headers Pause; body chunks Pause,
//	    i.e. StopIterationAndBuffer) and, at its end, replaces the held
//	    body with x-size bytes of 'x' (proxy_set_buffer_bytes(1, 0,
//	    max, …), as proxy-wasm-go-sdk's ReplaceHttpResponseBody and the
//	    filter's do), then continues. The status of the set is reported
//	    in the x-set-status response header.
const fidelityGuestMain = `//go:build wasip1

package main

import (
	"strconv"
)

func main() {}

var ops = map[uint32]map[string]string{}

func getHeader(typ uint32, key string) string {
	var raw *byte
	var n uint32
	kp, kn := strOf(key)
	if proxy_get_header_map_value(typ, kp, kn, ptr(&raw), &n) != 0 {
		return ""
	}
	return string(outBytes(raw, n))
}

func setHeader(typ uint32, k, v string) uint32 {
	kp, kn := strOf(k)
	vp, vn := strOf(v)
	return proxy_replace_header_map_value(typ, kp, kn, vp, vn)
}

//go:wasmexport proxy_on_context_create
func onContextCreate(ctx, parent uint32) {
	if parent != 0 {
		ops[ctx] = map[string]string{}
	}
}

//go:wasmexport proxy_on_vm_start
func onVMStart(root, size uint32) bool { return true }

//go:wasmexport proxy_on_configure
func onConfigure(root, size uint32) bool { return true }

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(ctx, n, eos uint32) uint32 {
	pinned = pinned[:0]
	st := ops[ctx]
	st["op"] = getHeader(0, "x-fid")
	st["size"] = getHeader(0, "x-size")
	return 0
}

//go:wasmexport proxy_on_response_headers
func onResponseHeaders(ctx, n, eos uint32) uint32 {
	pinned = pinned[:0]
	if ops[ctx]["op"] == "grow-response" && eos == 0 {
		return 1
	}
	return 0
}

//go:wasmexport proxy_on_response_body
func onResponseBody(ctx, size, eos uint32) uint32 {
	pinned = pinned[:0]
	st := ops[ctx]
	if st["op"] != "grow-response" {
		return 0
	}
	if eos == 0 {
		return 1 // StopIterationAndBuffer
	}
	n, _ := strconv.Atoi(st["size"])
	body := make([]byte, n)
	for i := range body {
		body[i] = 'x'
	}
	bp, bn := bytesOf(body)
	s := proxy_set_buffer_bytes(1, 0, 0xffffffff, bp, bn)
	setHeader(2, "x-set-status", strconv.Itoa(int(s)))
	return 0
}

//go:wasmexport proxy_on_done
func onDone(ctx uint32) bool { return true }

//go:wasmexport proxy_on_delete
func onDelete(ctx uint32) { delete(ops, ctx) }
`

var (
	fidelityOnce   sync.Once
	fidelityModule *Module
	fidelityErr    error
)

// fidelityGuest builds and compiles the guest once per test binary.
func fidelityGuest(t *testing.T) *Module {
	t.Helper()
	fidelityOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wasmhost-fidelity-")
		if err != nil {
			fidelityErr = err
			return
		}
		defer os.RemoveAll(dir)
		abi, err := os.ReadFile(filepath.Join("internal", "testguest", "abi.go"))
		if err != nil {
			fidelityErr = err
			return
		}
		for name, src := range map[string][]byte{
			"abi.go":  abi,
			"main.go": []byte(fidelityGuestMain),
			"go.mod":  []byte("module fidelityguest\n\ngo 1.24\n"),
		} {
			if err := os.WriteFile(filepath.Join(dir, name), src, 0o644); err != nil {
				fidelityErr = err
				return
			}
		}
		out := filepath.Join(dir, "guest.wasm")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-buildmode=c-shared", "-o", out, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=-mod=mod", "GOWORK=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			fidelityErr = &buildError{err: err, out: string(b)}
			return
		}
		wasm, err := os.ReadFile(out)
		if err != nil {
			fidelityErr = err
			return
		}
		fidelityModule, fidelityErr = Compile(context.Background(), wasm)
	})
	if fidelityErr != nil {
		t.Fatalf("building the fidelity guest: %v", fidelityErr)
	}
	return fidelityModule
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

func fidelityHost(t *testing.T, cfg Config) *Host {
	t.Helper()
	if cfg.Clusters == nil {
		cfg.Clusters = []string{"upstream"}
	}
	h, err := New(context.Background(), fidelityGuest(t), cfg)
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

// Envoy applies the buffer limit to a held body however it grows. A body
// held with StopIterationAndBuffer is the filter manager's buffered data, a
// WatermarkBuffer whose high watermark is the stream's buffer limit
// (ActiveStreamEncoderFilter::createBuffer: setWatermarks(buffer_limit_)).
// proxy_set_buffer_bytes on it (Context::getBuffer → modifyEncodingBuffer,
// then Buffer::copyFrom → drain + prepend) goes through
// WatermarkBuffer::prepend/add → checkHighAndOverflowWatermarks, which
// past the limit calls responseDataTooLarge: with the encoder not
// streaming (StopIterationAndBuffer), sendLocalReply(500,
// "response_payload_too_large") — straight to the client while the
// response headers are held (sendDirectLocalReply). Review Z100 saw it in
// real Envoy (e2e/refetch_buffer_review_test.go): a held answer replaced by
// a body over 1 MiB was the client's 500.
//
// wasmhost checks the limit only when a chunk joins the buffer
// (stream.checkLimit from onData/filterData); bufferRef.copyFrom grows the
// buffer without it, so the replaced body reaches the client as a 200.
// What that hides: the filter writes a partly cached embeddings batch's
// merged answer (cachecore ActReplaceBody → ReplaceHttpResponseBody) into
// the held answer's buffer with no bound on the merged size (mergeTooLarge
// bounds only the missing items' answer), so in Envoy a batch whose cached
// items make the merged answer exceed per_connection_buffer_limit_bytes is
// a 500, while every wasmhost test of it passes.
func TestReplacedHeldBodyOverTheBufferLimitIsEnvoys500(t *testing.T) {
	const limit = 4096
	h := fidelityHost(t, Config{Workers: 1, BufferLimit: limit, AllowOnHeadersStopIteration: true,
		Upstream: func(u *UpstreamRequest) {
			// An answer well within the limit, in two chunks: the first is
			// held (StopIterationAndBuffer), the second ends it.
			u.RespondChunks(200, [][2]string{{"content-type", "application/json"}},
				[][]byte{[]byte(`{"part":1,`), []byte(`"part2":2}`)})
		}})
	resp := mustExchange(t, h, 0, Request{Headers: req("", "x-fid", "grow-response", "x-size", itoa(2*limit))})
	if resp.Status != 500 || resp.Details != "response_payload_too_large" || !resp.FromLocalReply {
		t.Fatalf("client got status %d (details %q, local reply %v, %d body bytes, x-set-status %q): "+
			"want Envoy's 500 response_payload_too_large, the replaced held body (%d bytes) being over the %d-byte buffer limit",
			resp.Status, resp.Details, resp.FromLocalReply, len(resp.Body), header(resp.Headers, "x-set-status"), 2*limit, limit)
	}
	if bytes.Contains(resp.Body, []byte("xxxx")) {
		t.Fatalf("the over-limit body reached the client")
	}
}
