package wasmhost

import (
	"strings"
	"testing"
)

func TestExchangeUpstream(t *testing.T) {
	t.Run("held upstream answered later", func(t *testing.T) {
		h := newHost(t, Config{Workers: 2})
		ex := h.StartExchange(1, Request{Headers: req(""), Body: []byte("q")})
		pend := h.PendingUpstream()
		if len(pend) != 1 || ex.Done() || !ex.UpstreamContacted() {
			t.Fatalf("pending %d done %v", len(pend), ex.Done())
		}
		u := pend[0]
		if u.Worker != 1 || u.StreamID != 2 || string(u.Body) != "q" || header(u.Headers, "x-op") != "" || header(u.Headers, ":path") != "/v1/chat" {
			t.Fatalf("upstream request %+v", u)
		}
		u.Respond(200, [][2]string{{"content-type", "application/json"}}, []byte(`{}`))
		r := ex.Response()
		if !ex.Done() || r.Status != 200 || string(r.Body) != "{}" || r.Details != "via_upstream" || r.FromLocalReply {
			t.Fatalf("client got %+v", r)
		}
		if header(r.Headers, "x-seen-by-plugin") != "1" {
			t.Fatal("response did not pass the plugin")
		}
		if len(h.PendingUpstream()) != 0 {
			t.Fatal("still pending")
		}
	})
	t.Run("reset before the response", func(t *testing.T) {
		h := newHost(t, Config{Workers: 1})
		h.cfg.Upstream = func(u *UpstreamRequest) { u.Reset() }
		r := mustExchange(t, h, 0, Request{Headers: req("")})
		if r.Status != 503 || !r.FromLocalReply || r.Details != "upstream_reset_before_response_started{remote_reset}" {
			t.Fatalf("client got %+v", r)
		}
		if header(r.Headers, "x-seen-by-plugin") != "1" || !strings.HasPrefix(string(r.Body), "upstream connect error") {
			t.Fatalf("the router's local reply must run through the plugin: %+v", r)
		}
	})
	t.Run("reset after the response started", func(t *testing.T) {
		h := newHost(t, Config{Workers: 1})
		h.cfg.Upstream = func(u *UpstreamRequest) {
			u.RespondHeaders(200, nil, false)
			u.SendChunk([]byte("data: partial"), false)
			u.Reset()
		}
		r := mustExchange(t, h, 0, Request{Headers: req("")})
		if !r.Reset || r.Complete || r.Status != 200 || string(r.Body) != "data: partial" || r.Details != "upstream_reset_after_response_started{remote_reset}" {
			t.Fatalf("client got %+v", r)
		}
		if countLogs(h, "worker-0", "on_delete ctx=2") != 1 {
			t.Fatal("stream not completed")
		}
	})
	t.Run("client abort cancels the upstream", func(t *testing.T) {
		h := newHost(t, Config{Workers: 1})
		ex := h.StartExchange(0, Request{Headers: req("")})
		u := h.PendingUpstream()[0]
		ex.Abort()
		if !ex.Done() || !u.Cancelled() || !ex.Response().Reset {
			t.Fatalf("abort: done %v cancelled %v", ex.Done(), u.Cancelled())
		}
		if countLogs(h, "worker-0", "on_log ctx=2") != 1 || countLogs(h, "worker-0", "on_delete ctx=2") != 1 {
			t.Fatal("on_log/on_delete missing")
		}
		u.Respond(200, nil, []byte("late"))
		if countLogs(h, "worker-0", "response_headers") != 0 {
			t.Fatal("a cancelled upstream's answer reached the plugin")
		}
	})
	t.Run("Exchange reports where it is stuck", func(t *testing.T) {
		h := newHost(t, Config{Workers: 1})
		_, err := h.Exchange(0, Request{Headers: req("continue-later")})
		if err == nil || !strings.Contains(err.Error(), "request headers held by the plugin") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("streaming request body", func(t *testing.T) {
		h := newHost(t, Config{Workers: 1})
		var body string
		h.cfg.Upstream = func(u *UpstreamRequest) { body = string(u.Body); u.Respond(200, nil, nil) }
		ex := h.StartExchange(0, Request{Headers: req("body-edit", "x-body-op", "append:]"), Streaming: true})
		ex.SendBody([]byte("[1,"), false)
		if ex.UpstreamContacted() != true || body != "" {
			t.Fatal("headers should be upstream, body held")
		}
		ex.SendBody([]byte("2"), true)
		if !ex.Done() || body != "[1,2]" {
			t.Fatalf("done %v body %q", ex.Done(), body)
		}
	})
}
