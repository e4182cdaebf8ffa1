package wasmhost

import (
	"errors"
	"strings"
	"testing"
)

func TestGuestFailureMarksVMFailed(t *testing.T) {
	tests := []struct {
		op      string
		wantErr string
	}{
		{"panic", "Function: proxy_on_request_headers failed"},
		{"exit", "wasi proc_exit(3)"},
		{"sleep", "poll_oneoff called 50000 times"},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			h := newHost(t, Config{Workers: 2})
			resp := mustExchange(t, h, 0, Request{Headers: req(tt.op)})
			if resp.Status != 503 || resp.Details != "wasm_fail_stream" {
				t.Fatalf("fail-closed reply: %+v", resp)
			}
			failed := h.FailedVMs()
			err := failed["worker-0"]
			if len(failed) != 1 || err == nil || !errors.Is(err, ErrVMFailed) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("FailedVMs = %v, want worker-0 with %q", failed, tt.wantErr)
			}
			// The failed VM answers every later stream with 503, without
			// calling the plugin; other workers are fine.
			calls := countLogs(h, "worker-0", "request_headers")
			resp = mustExchange(t, h, 0, Request{Headers: req("")})
			if resp.Status != 503 || countLogs(h, "worker-0", "request_headers") != calls {
				t.Fatalf("second request on the failed VM: %+v", resp)
			}
			h.cfg.Upstream = func(u *UpstreamRequest) { u.Respond(200, nil, nil) }
			if resp := mustExchange(t, h, 1, Request{Headers: req("")}); resp.Status != 200 {
				t.Fatalf("healthy worker: %+v", resp)
			}
			if h.Tick(0) {
				t.Fatal("ticked a failed VM")
			}
		})
	}
	t.Run("fail open", func(t *testing.T) {
		h := newHost(t, Config{Workers: 1, FailOpen: true})
		h.cfg.Upstream = func(u *UpstreamRequest) { u.Respond(204, nil, nil) }
		// The trap happens inside on_request_headers; fail-open lets even
		// that request through.
		if resp := mustExchange(t, h, 0, Request{Headers: req("panic")}); resp.Status != 204 {
			t.Fatalf("trapping request: %+v", resp)
		}
		resp := mustExchange(t, h, 0, Request{Headers: req("", "x-anything", "1")})
		if resp.Status != 204 || resp.FromLocalReply {
			t.Fatalf("fail-open stream: %+v", resp)
		}
	})
	t.Run("panic output is logged at error", func(t *testing.T) {
		h := newHost(t, Config{Workers: 1})
		mustExchange(t, h, 0, Request{Headers: req("panic")})
		found := false
		for _, l := range h.LogsContaining("assignment to entry in nil map") {
			found = found || (l.VM == "worker-0" && l.Level == LogError)
		}
		if !found {
			t.Fatal("the Go runtime's panic message (stderr) is not in the log")
		}
	})
}
