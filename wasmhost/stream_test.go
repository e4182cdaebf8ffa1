package wasmhost

import (
	"slices"
	"strings"
	"testing"
)

// logIndex is the position of the first log line containing substr on vm.
func logIndex(h *Host, vm, substr string) int {
	for i, l := range h.Logs() {
		if l.VM == vm && strings.Contains(l.Msg, substr) {
			return i
		}
	}
	return -1
}

// TestDeferredContinueFromTick: a paused request is resumed from the root
// context's tick by switching the effective context. The continue takes
// effect only after the tick returns; the request maps are gone at once.
func TestDeferredContinueFromTick(t *testing.T) {
	h := newHost(t, Config{Workers: 2, PluginConfig: []byte("tick_ms=50")})
	var got []*UpstreamRequest
	h.cfg.Upstream = func(u *UpstreamRequest) { got = append(got, u); u.Respond(200, nil, []byte("ok")) }

	ex := h.StartExchange(1, Request{Headers: req("continue-later"), Body: []byte(`{"a":1}`)})
	if ex.Done() || ex.UpstreamContacted() {
		t.Fatal("paused request reached the upstream")
	}
	if n := countLogs(h, "worker-1", "request_body"); n != 0 {
		t.Fatal("on_request_body was called while the headers were paused (Envoy buffers without calling the plugin)")
	}
	h.Tick(0) // another worker's tick cannot resume it
	if ex.Done() {
		t.Fatal("resumed from the wrong worker")
	}
	h.Tick(1)
	if !ex.Done() {
		t.Fatal(ex.State())
	}
	if len(got) != 1 {
		t.Fatalf("upstream requests = %d", len(got))
	}
	u := got[0]
	if header(u.Headers, "x-resumed-by") != "tick" || header(u.Headers, "x-after-continue") != "" {
		t.Fatalf("upstream headers %q: want x-resumed-by and no x-after-continue", u.Headers)
	}
	if string(u.Body) != `{"a":1}` {
		t.Fatalf("upstream body %q", u.Body)
	}
	if n := countLogs(h, "worker-1", "add_after_continue=2"); n != 1 {
		t.Fatal("adding a header after continue_stream must fail with BAD_ARGUMENT")
	}
	// The body callback ran after the tick returned (deferred), with the
	// whole buffered body.
	end, body := logIndex(h, "worker-1", "tick end"), logIndex(h, "worker-1", `request_body ctx=2 size=7 eos=1`)
	if end < 0 || body < 0 || body < end {
		t.Fatalf("tick end at %d, request_body at %d: continue must be deferred", end, body)
	}
	if !h.RequestResumedEx(ex) {
		t.Fatal("RequestResumed false")
	}
}

// RequestResumedEx is a test helper reading an exchange's resumed flag.
func (h *Host) RequestResumedEx(ex *Exchange) bool {
	r := false
	ex.locked(func(s *stream) { r = s.req.resumed })
	return r
}

func TestResumeFromQueue(t *testing.T) {
	h := newHost(t, Config{Workers: 2, PluginConfig: []byte("register_queue=wake")})
	h.cfg.Upstream = func(u *UpstreamRequest) { u.Respond(200, nil, nil) }
	// The last registrant (worker-1) owns "wake": park a request there.
	ex := h.StartExchange(1, Request{Headers: req("continue-later")})
	if ex.Done() {
		t.Fatal("not paused")
	}
	sharedOp(t, h, 0, "enqueue", "x-queue", "wake", "x-value", "resume")
	if !ex.Done() {
		t.Fatal(ex.State())
	}
	if n := countLogs(h, "worker-1", "resumed request 2 by queue status=0"); n != 1 {
		t.Fatal("not resumed by the queue")
	}
}

func TestLocalReplyForcesPause(t *testing.T) {
	h := newHost(t, Config{Workers: 1})
	id := h.InitializeHttpContext(0)
	// The guest returns Continue after proxy_send_local_response.
	if a := h.CallOnRequestHeaders(0, id, req("local-reply", "x-code", "429"), true); a != ActionPause {
		t.Fatalf("action = %v, want Pause", a)
	}
	if fwd := h.GetForwardedRequestHeaders(0, id); fwd != nil {
		t.Fatalf("request went upstream: %q", fwd)
	}
	lr := h.GetSentLocalResponse(0, id)
	if lr == nil || lr.StatusCode != 429 || string(lr.Body) != "denied" || lr.Details != "denied by test" || lr.GrpcStatus != -1 {
		t.Fatalf("local response %+v", lr)
	}
	cr := h.GetClientResponse(0, id)
	if cr.Status != 429 || !cr.FromLocalReply || string(cr.Body) != "denied" || cr.Details != "denied_by_test" {
		t.Fatalf("client got %+v", cr)
	}
	wantHeaders := [][2]string{{":status", "429"}, {"x-local", "1"}, {"content-length", "6"}, {"content-type", "text/plain"}, {"x-seen-by-plugin", "1"}}
	if !slices.Equal(cr.Headers, wantHeaders) {
		t.Fatalf("client headers %q, want %q", cr.Headers, wantHeaders)
	}
	// The local reply ran through the plugin's response callbacks.
	if countLogs(h, "worker-0", "response_headers ctx=2 status=429") != 1 {
		t.Fatal("on_response_headers not called for the local reply")
	}
	h.CompleteHttpContext(0, id)
	if !h.StreamCompleted(0, id) {
		t.Fatal("not completed")
	}
	logI, doneI, delI := logIndex(h, "worker-0", "on_log ctx=2"), logIndex(h, "worker-0", "on_done ctx=2"), logIndex(h, "worker-0", "on_delete ctx=2")
	if !(logI >= 0 && logI < doneI && doneI < delI) {
		t.Fatalf("order on_log %d, on_done %d, on_delete %d", logI, doneI, delI)
	}
}

func TestResponsePhaseLocalReplyIsDirect(t *testing.T) {
	h := newHost(t, Config{Workers: 1})
	h.cfg.Upstream = func(u *UpstreamRequest) { u.Respond(200, [][2]string{{"x-up", "1"}}, []byte("upstream body")) }
	resp := mustExchange(t, h, 0, Request{Headers: req("", "x-resp-op", "local-reply")})
	if resp.Status != 502 || string(resp.Body) != "replaced by plugin" || header(resp.Headers, "x-up") != "" {
		t.Fatalf("client got %+v", resp)
	}
	// Sent straight to the codec: the plugin's response callbacks did not
	// see the 502.
	if countLogs(h, "worker-0", "response_headers ctx=2 status=502") != 0 {
		t.Fatal("the direct local reply went through the plugin")
	}
}

func TestBodyEdits(t *testing.T) {
	tests := []struct {
		op       string
		wantBody string
		status   Status
	}{
		{"append:!", "hello world!", StatusOK},
		{"prepend:>", ">hello world", StatusOK},
		{"replace:bye", "bye", StatusOK},
		{"middle:X", "hello world", StatusBadArgument}, // Envoy supports no in-place range edit
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			h := newHost(t, Config{Workers: 1})
			id := h.InitializeHttpContext(0)
			h.CallOnRequestHeaders(0, id, req("body-edit", "x-body-op", tt.op), false)
			if a := h.CallOnRequestBody(0, id, []byte("hello "), false); a != ActionPause {
				t.Fatalf("first chunk action %v", a)
			}
			if got := h.GetForwardedRequestBody(0, id); len(got) != 0 {
				t.Fatalf("paused chunk forwarded: %q", got)
			}
			if a := h.CallOnRequestBody(0, id, []byte("world"), true); a != ActionContinue {
				t.Fatalf("last chunk action %v", a)
			}
			// The second call saw the whole buffered body.
			if countLogs(h, "worker-0", `request_body ctx=2 size=11 eos=1 body="hello world"`) != 1 {
				t.Fatal("second body callback did not get the whole buffer")
			}
			if countLogs(h, "worker-0", "body edit "+tt.op+" status="+itoa(int(tt.status))) != 1 {
				t.Fatalf("edit status not %v", tt.status)
			}
			if got := string(h.GetForwardedRequestBody(0, id)); got != tt.wantBody {
				t.Fatalf("forwarded body %q, want %q", got, tt.wantBody)
			}
		})
	}
}

// TestHoldHeadersWhileReadingBody shows the two Envoy modes of a Pause in
// on_request_headers (proxy-wasm-cpp-host#143).
func TestHoldHeadersWhileReadingBody(t *testing.T) {
	chunks := [][]byte{[]byte(`{"model":`), []byte(`"m"}`)}
	t.Run("default: body not seen until resumed", func(t *testing.T) {
		h := newHost(t, Config{Workers: 1})
		h.cfg.Upstream = func(u *UpstreamRequest) { u.Respond(200, nil, nil) }
		ex := h.StartExchange(0, Request{Headers: req("hold-body"), BodyChunks: chunks})
		if ex.Done() || ex.UpstreamContacted() {
			t.Fatal("request went on")
		}
		if countLogs(h, "worker-0", "request_body") != 0 {
			t.Fatal("on_request_body called under StopAllIterationAndWatermark")
		}
	})
	t.Run("allow_on_headers_stop_iteration", func(t *testing.T) {
		h := newHost(t, Config{Workers: 1, AllowOnHeadersStopIteration: true})
		var up *UpstreamRequest
		h.cfg.Upstream = func(u *UpstreamRequest) { up = u; u.Respond(200, nil, nil) }
		resp := mustExchange(t, h, 0, Request{Headers: req("hold-body"), BodyChunks: chunks})
		if resp.Status != 200 || up == nil {
			t.Fatalf("resp %+v", resp)
		}
		if header(up.Headers, "x-body-len") != "13" || string(up.Body) != `{"model":"m"}` {
			t.Fatalf("upstream got headers %q body %q", up.Headers, up.Body)
		}
	})
}

func TestBufferLimit(t *testing.T) {
	h := newHost(t, Config{Workers: 1, BufferLimit: 8})
	ex := h.StartExchange(0, Request{Headers: req("body-edit", "x-body-op", "append:x"), BodyChunks: [][]byte{[]byte("12345"), []byte("67890"), []byte("z")}})
	h.Drain()
	r := ex.Response()
	if !ex.Done() || r.Status != 413 || r.Details != "request_payload_too_large" {
		t.Fatalf("resp %+v", r)
	}
}

func TestResponsePauseAndBuffer(t *testing.T) {
	t.Run("headers paused, resumed from tick", func(t *testing.T) {
		h := newHost(t, Config{Workers: 1, PluginConfig: []byte("tick_ms=10")})
		h.cfg.Upstream = func(u *UpstreamRequest) {
			u.RespondChunks(200, [][2]string{{"x-up", "1"}}, [][]byte{[]byte("a"), []byte("b")})
		}
		ex := h.StartExchange(0, Request{Headers: req("", "x-resp-op", "pause")})
		if ex.Done() || ex.Response().Status != 0 {
			t.Fatalf("response not held: %+v", ex.Response())
		}
		if countLogs(h, "worker-0", "response_body") != 0 {
			t.Fatal("response body reached the plugin while headers were paused")
		}
		h.Tick(0)
		r := ex.Response()
		if !ex.Done() || r.Status != 200 || string(r.Body) != "ab" || header(r.Headers, "x-response-resumed-by") != "tick" {
			t.Fatalf("resp %+v (%s)", r, ex.State())
		}
		if countLogs(h, "worker-0", `response_body ctx=2 size=2 eos=1 body="ab"`) != 1 {
			t.Fatal("the buffered response body was not delivered whole after the resume")
		}
	})
	t.Run("body buffered and rewritten", func(t *testing.T) {
		h := newHost(t, Config{Workers: 1})
		h.cfg.Upstream = func(u *UpstreamRequest) {
			u.RespondChunks(200, nil, [][]byte{[]byte("hello "), []byte("model")})
		}
		resp := mustExchange(t, h, 0, Request{Headers: req("", "x-resp-op", "upper")})
		if string(resp.Body) != "HELLO MODEL" || resp.Details != "via_upstream" || resp.FromLocalReply {
			t.Fatalf("resp %+v", resp)
		}
	})
}

func TestCloseStreamAndBadEffectiveContext(t *testing.T) {
	h := newHost(t, Config{Workers: 1})
	ex := h.StartExchange(0, Request{Headers: req("close")})
	r := ex.Response()
	if !ex.Done() || !r.Reset || r.Details != "wasm_close_stream" {
		t.Fatalf("close_stream: %+v", r)
	}
	resp := mustExchange(t, h, 0, Request{Headers: req("effective-bad")})
	if header(resp.Headers, "x-status") != itoa(int(StatusBadArgument)) {
		t.Fatalf("set_effective_context(unknown) = %s", header(resp.Headers, "x-status"))
	}
}
