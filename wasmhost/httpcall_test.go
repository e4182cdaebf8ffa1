package wasmhost

import (
	"testing"
	"time"
)

func TestHTTPCall(t *testing.T) {
	t.Run("dispatched and answered on the root context", func(t *testing.T) {
		h := newHost(t, Config{Workers: 2})
		var calls []*HTTPCall
		h.cfg.HTTPCall = func(c *HTTPCall) {
			calls = append(calls, c)
			c.Respond(201, [][2]string{{"x-a", "b"}}, []byte("pong"))
		}
		resp := mustExchange(t, h, 1, Request{Headers: req("http-call", "x-timeout", "250")})
		if len(calls) != 1 {
			t.Fatalf("calls = %d", len(calls))
		}
		c := calls[0]
		if c.VM != 1 || c.Token != 4 || c.Cluster != "upstream" || string(c.Body) != "ping" || c.Timeout != 250*time.Millisecond {
			t.Fatalf("call %+v", c)
		}
		if header(c.Headers, "content-length") != "4" || header(c.Headers, ":authority") != "model" {
			t.Fatalf("call headers %q", c.Headers)
		}
		if resp.Status != 200 || string(resp.Body) != "pong" || header(resp.Headers, "x-call-status") != "201" {
			t.Fatalf("client got %+v", resp)
		}
		// ctx is the root (1), num_headers counts :status.
		if countLogs(h, "worker-1", `http_call_response root=1 token=4 headers=2 body=4 trailers=0 status="201" body="pong" get_status=0/""`) != 1 {
			t.Fatal("callback arguments wrong")
		}
	})
	t.Run("response after the stream is gone still reaches the root", func(t *testing.T) {
		h := newHost(t, Config{Workers: 1})
		ex := h.StartExchange(0, Request{Headers: req("http-call")})
		pending := h.PendingHTTPCalls()
		if len(pending) != 1 || ex.Done() {
			t.Fatalf("pending = %d, done = %v", len(pending), ex.Done())
		}
		ex.Abort()
		if !ex.Done() || countLogs(h, "worker-0", "on_delete ctx=2") != 1 {
			t.Fatal("abort did not end the stream")
		}
		pending[0].Respond(200, nil, []byte("late"))
		if countLogs(h, "worker-0", `http_call_response root=1 token=4 headers=1 body=4`) != 1 {
			t.Fatal("late response not delivered to the root context")
		}
		if countLogs(h, "worker-0", "http call caller 2 is gone: set_effective_context status=2") != 1 {
			t.Fatal("guest should see BAD_ARGUMENT switching to the deleted stream")
		}
		if len(h.PendingHTTPCalls()) != 0 {
			t.Fatal("answered call still pending")
		}
	})
	t.Run("Fail: num_headers 0 and get_status (11, reset)", func(t *testing.T) {
		h := newHost(t, Config{Workers: 1})
		h.cfg.HTTPCall = func(c *HTTPCall) { c.Fail() }
		resp := mustExchange(t, h, 0, Request{Headers: req("http-call")})
		if resp.Status != 502 || header(resp.Headers, "x-call-code") != "11" {
			t.Fatalf("client got %+v", resp)
		}
		if countLogs(h, "worker-0", `headers=0 body=0 trailers=0 status="" body="" get_status=11/"reset"`) != 1 {
			t.Fatal("failure callback wrong")
		}
	})
	t.Run("timeout on the fake clock", func(t *testing.T) {
		clock := NewFakeClock(time.Time{})
		h := newHost(t, Config{Workers: 1, Clock: clock})
		ex := h.StartExchange(0, Request{Headers: req("http-call", "x-timeout", "100")})
		h.AdvanceAndTick(99 * time.Millisecond)
		if ex.Done() {
			t.Fatal("timed out early")
		}
		h.AdvanceAndTick(time.Millisecond)
		r := ex.Response()
		if !ex.Done() || header(r.Headers, "x-call-status") != "504" || string(r.Body) != "upstream request timeout" {
			t.Fatalf("after timeout: %+v", r)
		}
	})
	t.Run("validation", func(t *testing.T) {
		tests := []struct {
			name string
			kv   []string
		}{
			{"unknown cluster", []string{"x-cluster", "nope"}},
			{"missing :authority", []string{"x-bad-headers", "1"}},
			{"negative timeout as int", []string{"x-timeout", "4294967295"}},
		}
		h := newHost(t, Config{Workers: 1})
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp := mustExchange(t, h, 0, Request{Headers: req("http-call", tt.kv...)})
				if resp.Status != 500 || header(resp.Headers, "x-status") != itoa(int(StatusBadArgument)) {
					t.Fatalf("client got %+v", resp)
				}
			})
		}
		if len(h.PendingHTTPCalls()) != 0 {
			t.Fatal("a rejected call was dispatched")
		}
	})
}
