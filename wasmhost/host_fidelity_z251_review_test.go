package wasmhost

import (
	"bytes"
	"context"
	"testing"
)

// Review Z251 (host_fidelity_z251): places where wasmhost is kinder than
// (or differs from) Envoy + proxy-wasm-cpp-host, so that a filter test
// passes on wasmhost while real Envoy behaves otherwise. Each test drives
// the package's test guest (internal/testguest).

// Envoy's AsyncClient does not buffer an HTTP call's answer without bound:
// AsyncRequestSharedImpl::onData compares the buffered body plus the new
// chunk with response_buffer_limit_ (runtime
// "http.async_response_buffer_limit", default kBufferLimitForResponse =
// 32 MiB, source/common/http/async_client_impl.h) and past it drains the
// data, sets response_buffer_overlimit_ and resets the request — the
// callbacks get onFailure(ExceedResponseBufferLimit), which
// Context::onHttpCallFailure turns into proxy_on_http_call_response with
// num_headers = 0 and proxy_get_status = (11 BROKEN_CONNECTION, "reset").
//
// wasmhost hands any answer to the plugin whole (HTTPCall.Respond has no
// limit), so a refetch, shadow or L2 answer over 32 MiB is a success in
// every wasmhost test and a failed call in Envoy.
//
// Expected: an HTTP call answered with a body over 32 MiB reaches the
// plugin as a failed call (num_headers 0, get_status 11/"reset"); the test
// guest then answers its caller 502 with x-call-code: 11.
func TestHTTPCallAnswerOverAsyncClientLimitIsAFailedCall(t *testing.T) {
	const envoyLimit = 32 * 1024 * 1024 // kBufferLimitForResponse
	// Not newHost: its log dump on failure would print the 32 MiB body the
	// guest logs.
	h, err := New(context.Background(), testModule, Config{Workers: 1, Clusters: []string{"upstream"}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	h.cfg.HTTPCall = func(c *HTTPCall) {
		c.Respond(200, [][2]string{{"content-type", "application/octet-stream"}}, bytes.Repeat([]byte{'a'}, envoyLimit+1))
	}
	resp := mustExchange(t, h, 0, Request{Headers: req("http-call")})
	if resp.Status != 502 || header(resp.Headers, "x-call-code") != "11" {
		t.Fatalf("client got status %d (x-call-code %q, x-call-status %q, %d body bytes): want 502 with x-call-code 11 — "+
			"Envoy's AsyncClient resets an answer over its %d-byte response buffer limit and the plugin sees a failed call",
			resp.Status, header(resp.Headers, "x-call-code"), header(resp.Headers, "x-call-status"), len(resp.Body), envoyLimit)
	}
}
