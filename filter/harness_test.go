//go:build !wasip1

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelcache/modelcache/e2e/modelsim"
	"github.com/modelcache/modelcache/internal/wasmbuild"
	"github.com/modelcache/modelcache/wasmhost"
)

// These tests load the real build artifact (modelcache.wasm, built fresh
// from this tree) into the wazero host, so "works in Go, breaks in wasm" is
// caught without Envoy; e2e/ then confirms the same behaviour in Envoy.

var module *wasmhost.Module

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	ctx := context.Background()
	wasm, err := os.ReadFile(wasmbuild.Filter(&mainTB{}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	module, err = wasmhost.Compile(ctx, wasm)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compile:", err)
		return 1
	}
	defer module.Close(ctx)
	return m.Run()
}

// mainTB lets wasmbuild report a build failure from TestMain.
type mainTB struct{ testing.TB }

func (*mainTB) Helper() {}
func (*mainTB) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

// harness is one simulated Envoy process with the filter and a model
// simulator as its upstream.
type harness struct {
	t     *testing.T
	h     *wasmhost.Host
	clock *wasmhost.FakeClock
	sim   *modelsim.Server
	// fault, when set, answers upstream requests instead of the simulator.
	fault    func(u *wasmhost.UpstreamRequest) bool
	upstream atomic.Int64 // requests that reached the upstream
	// holdCalls keeps background HTTP calls pending (see withHTTPCalls).
	holdCalls bool
	// mod, if set, is the module loaded instead of the product one
	// (withModule).
	mod *wasmhost.Module
}

type harnessOpt func(*harness, *wasmhost.Config)

func withWorkers(n int) harnessOpt {
	return func(_ *harness, c *wasmhost.Config) { c.Workers = n }
}

// withModule loads m (a test variant of the filter) instead of the
// product module.
func withModule(m *wasmhost.Module) harnessOpt {
	return func(hs *harness, _ *wasmhost.Config) { hs.mod = m }
}

func withManualDrain() harnessOpt {
	return func(_ *harness, c *wasmhost.Config) { c.ManualDrain = true }
}

// withHTTPCalls answers the filter's background calls with the simulator,
// unless holdCalls is set (then the test answers PendingHTTPCalls itself).
func withHTTPCalls() harnessOpt {
	return func(hs *harness, c *wasmhost.Config) {
		c.HTTPCall = func(call *wasmhost.HTTPCall) {
			if !hs.holdCalls {
				hs.answerCall(call)
			}
		}
	}
}

func (hs *harness) answerCall(call *wasmhost.HTTPCall) {
	status, headers, body := hs.simulate(call.Headers, call.Body)
	call.Respond(status, headers, body)
}

func newHarness(t *testing.T, config string, opts ...harnessOpt) *harness {
	t.Helper()
	hs := &harness{t: t, clock: wasmhost.NewFakeClock(wasmhost.DefaultFakeTime)}
	hs.sim = modelsim.New(modelsim.Options{Now: hs.clock.Now})
	cfg := wasmhost.Config{
		Workers:                     2,
		PluginConfig:                []byte(config),
		Clock:                       hs.clock,
		Clusters:                    []string{"model"},
		AllowOnHeadersStopIteration: true, // as envoy/envoy.yaml sets it
		LogLevel:                    wasmhost.LogInfo,
		Upstream:                    hs.serveUpstream,
	}
	for _, o := range opts {
		o(hs, &cfg)
	}
	mod := module
	if hs.mod != nil {
		mod = hs.mod
	}
	h, err := wasmhost.New(context.Background(), mod, cfg)
	if err != nil {
		t.Fatalf("starting plugin: %v", err)
	}
	hs.h = h
	t.Cleanup(func() {
		if failed := h.FailedVMs(); len(failed) > 0 {
			t.Errorf("failed VMs: %v", failed)
		}
		if t.Failed() {
			for _, l := range h.Logs() {
				t.Log(l)
			}
		}
		h.Close()
	})
	return hs
}

// serveUpstream answers a request with the simulator (or the test's fault).
func (hs *harness) serveUpstream(u *wasmhost.UpstreamRequest) {
	hs.upstream.Add(1)
	if hs.fault != nil && hs.fault(u) {
		return
	}
	status, headers, body, aborted := hs.simulateAbortable(u.Headers, u.Body)
	if aborted {
		// The simulator cut the response (fault "truncate"): what it wrote,
		// then a reset.
		u.RespondHeaders(status, headers, false)
		if len(body) > 0 {
			u.SendChunk(body, false)
		}
		u.Reset()
		return
	}
	if ct := hdrOf(headers, "content-type"); strings.HasPrefix(ct, "text/event-stream") {
		// Deliver a stream event by event, as a real upstream would.
		var chunks [][]byte
		for _, ev := range bytes.SplitAfter(body, []byte("\n\n")) {
			if len(ev) > 0 {
				chunks = append(chunks, ev)
			}
		}
		u.RespondChunks(status, headers, chunks)
		return
	}
	u.Respond(status, headers, body)
}

func hdrOf(h [][2]string, name string) string {
	for _, kv := range h {
		if kv[0] == name {
			return kv[1]
		}
	}
	return ""
}

// simulate runs the simulator's handler on one request.
func (hs *harness) simulate(headers [][2]string, body []byte) (int, [][2]string, []byte) {
	status, h, b, _ := hs.simulateAbortable(headers, body)
	return status, h, b
}

// simulateAbortable also reports whether the handler aborted mid-response.
func (hs *harness) simulateAbortable(headers [][2]string, body []byte) (status int, hdrs [][2]string, out []byte, aborted bool) {
	var method, path string
	req, _ := http.NewRequest("POST", "http://model/", bytes.NewReader(body))
	for _, kv := range headers {
		switch kv[0] {
		case ":method":
			method = kv[1]
		case ":path":
			path = kv[1]
		case ":authority":
			req.Host = kv[1]
		default:
			req.Header.Add(kv[0], kv[1])
		}
	}
	req.Method = method
	req.URL.Path, req.URL.RawQuery, _ = strings.Cut(strings.TrimPrefix(path, "/public"), "?")
	rec := httptest.NewRecorder()
	func() {
		defer func() {
			if r := recover(); r != nil {
				if r != http.ErrAbortHandler {
					panic(r)
				}
				aborted = true
			}
		}()
		hs.sim.Handler().ServeHTTP(rec, req)
	}()
	res := rec.Result()
	out, _ = io.ReadAll(res.Body)
	for k, vs := range res.Header {
		for _, v := range vs {
			hdrs = append(hdrs, [2]string{strings.ToLower(k), v})
		}
	}
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") && !aborted {
		hdrs = append(hdrs, [2]string{"content-length", fmt.Sprint(len(out))})
	}
	return res.StatusCode, hdrs, out, aborted
}

// post sends a POST with a JSON body through worker w. headers are
// name, value pairs; an authorization header for tenant "a" is added unless
// the test passes its own identity or "-" to send none.
func (hs *harness) post(w int, path, body string, headers ...string) *wasmhost.ClientResponse {
	hs.t.Helper()
	req := wasmhost.Request{
		Headers: [][2]string{{":method", "POST"}, {":path", path}, {":authority", "models"}, {":scheme", "http"},
			{"content-type", "application/json"}, {"accept-encoding", "gzip"}, {"content-length", strconv.Itoa(len(body))}},
		Body: []byte(body),
	}
	identity := true
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "-" {
			identity = false
			continue
		}
		if headers[i] == "authorization" || headers[i] == "x-api-key" {
			identity = false
		}
		req.Headers = append(req.Headers, [2]string{headers[i], headers[i+1]})
	}
	if identity {
		req.Headers = append(req.Headers, [2]string{"authorization", "Bearer tenant-a"})
	}
	res, err := hs.h.Exchange(w, req)
	if err != nil {
		hs.t.Fatalf("exchange: %v", err)
	}
	return res
}

func (hs *harness) counter(name string) uint64 {
	v, _ := hs.h.Counter(name)
	return v
}

// requestCounters is every modelcache_route.<route>.requests.<status> counter
// that moved, and their sum.
func requestCounters(hs *harness, route string) (map[string]uint64, uint64) {
	out := map[string]uint64{}
	var sum uint64
	prefix := "modelcache_route." + route + ".requests."
	for _, n := range hs.h.MetricNames() {
		if strings.HasPrefix(n, prefix) {
			if v := hs.counter(n); v > 0 {
				out[strings.TrimPrefix(n, prefix)] = v
				sum += v
			}
		}
	}
	return out, sum
}

// fmtCounters lists counters as name=value, sorted.
func fmtCounters(m map[string]uint64) string {
	var ks []string
	for k, v := range m {
		ks = append(ks, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(ks)
	return strings.Join(ks, " ")
}

func hdr(res *wasmhost.ClientResponse, name string) string {
	for _, kv := range res.Headers {
		if kv[0] == name {
			return kv[1]
		}
	}
	return ""
}

func chatBody(content string) string {
	return `{"model":"sim-chat","messages":[{"role":"user","content":` + fmt.Sprintf("%q", content) + `}]}`
}

// expectCacheStatus fails unless the response's Cache-Status contains every
// given fragment.
func expectCacheStatus(t *testing.T, res *wasmhost.ClientResponse, fragments ...string) {
	t.Helper()
	cs := hdr(res, "cache-status")
	for _, f := range fragments {
		if !strings.Contains(cs, f) {
			t.Fatalf("Cache-Status %q lacks %q (status %d, body %.200s)", cs, f, res.Status, res.Body)
		}
	}
}

const chatConfig = `{
  "upstream_cluster": "model",
  "routes": [
    {"name": "chat", "kind": "chat", "path_prefix": "/v1/chat/completions", "ttl": "60s"},
    {"name": "classify", "kind": "classify", "path_exact": "/v1/classify",
     "confidence": {"path": "score", "tiers": [{"min": 0.9, "ttl": "1h"}, {"min": 0.6, "ttl": "1m"}]}},
    {"name": "public", "kind": "chat", "path_prefix": "/public/v1/chat/completions", "shared": true}
  ],
  "purge": {"path": "/modelcache/purge", "token": "0123456789abcdef-token"}
}`
