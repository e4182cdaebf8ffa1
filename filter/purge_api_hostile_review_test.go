//go:build !wasip1

package main

import (
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z176 (2). README "Purge API": where Envoy cannot (or may not)
// hold request headers, "a purge's headers go on to its route's upstream
// without the Authorization header"; stream.go answers a purge sent with
// another method locally because "passed on, it would take the token
// upstream". startPurge drops the error of RemoveHttpRequestHeader
// ("_ = proxywasm.RemoveHttpRequestHeader(...)") and continues the
// headers all the same: when the host refuses the removal, the purge's
// bearer token goes to the model server. A purge whose token could not be
// taken off must not go upstream (answered locally, e.g. 503 "send it
// again", counted in internal_errors).
func TestLatePurgeWhoseTokenCannotBeRemovedDoesNotGoUpstream(t *testing.T) {
	f := &faultPlan{}
	// header_hold "auto" (the default): a VM that has not yet seen
	// holding work lets a purge's headers go on (as Z131's late purge).
	cfg := strings.Replace(chatConfig, `"upstream_cluster": "model",`, `"upstream_cluster": "model", "header_hold": "auto",`, 1)
	hs := newHarness(t, cfg, withWorkers(1), withFaults(f))
	f.set(func(c wasmhost.HostCall) (wasmhost.Status, bool) {
		return wasmhost.StatusInternalFailure, c.Name == "proxy_remove_header_map_value"
	})
	const token = "0123456789abcdef-token"
	req := wasmhost.Request{
		Headers: [][2]string{{":method", "POST"}, {":path", "/modelcache/purge"}, {":authority", "models"},
			{"authorization", "Bearer " + token}, {"content-type", "application/json"}},
		Body:      []byte(`{"all":true}`),
		Streaming: true,
	}
	ex := hs.h.StartExchange(0, req)
	hs.h.Drain()
	f.set(nil)
	if f.failed() == 0 {
		t.Fatalf("setup: the purge's headers did not go on late (no header removal tried): %s", ex.State())
	}
	fwd := forwardedRequestHeaders(ex)
	if fwd == nil {
		// Not gone upstream: answered here, as expected.
		if !ex.Done() || ex.Response().Status != 503 {
			t.Fatalf("the purge neither went upstream nor was answered 503: %s", ex.State())
		}
		return
	}
	for _, h := range fwd {
		if strings.Contains(h[1], token) {
			t.Fatalf("the purge's headers went upstream with its bearer token (the host refused its removal), in %q: %q", h[0], h[1])
		}
	}
}

// forwardedRequestHeaders is what went upstream of an exchange's request
// headers while its body is still held (wasmhost hands an UpstreamRequest
// its headers only once the request is complete, and its
// GetForwardedRequestHeaders knows only contexts made by
// InitializeHttpContext): read from the exchange's stream (s.req.fwdHeaders).
func forwardedRequestHeaders(ex *wasmhost.Exchange) [][2]string {
	s := reflect.ValueOf(ex).Elem().FieldByName("s").Elem()
	f := s.FieldByName("req").FieldByName("fwdHeaders")
	return *(*[][2]string)(unsafe.Pointer(f.UnsafeAddr()))
}
