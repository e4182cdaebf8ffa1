//go:build !wasip1

package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/wasmhost"
)

// longStory is a chat request that asks for an event stream.
func longStory() wasmhost.Request {
	req := chatRequest("")
	req.Body = []byte(streamBody("a long story"))
	return req
}

func streamBody(content string) string {
	return `{"model":"sim-chat","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"` + content + `"}]}`
}

func dataLines(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "data:") {
			out = append(out, l)
		}
	}
	return out
}

func TestStreamMissThenByteIdenticalReplay(t *testing.T) {
	hs := newHarness(t, chatConfig)
	first := hs.post(0, "/v1/chat/completions", streamBody("tell me a story"))
	if first.Status != 200 || !strings.HasPrefix(hdr(first, "content-type"), "text/event-stream") {
		t.Fatalf("first: %d %v", first.Status, first.Headers)
	}
	expectCacheStatus(t, first, "fwd=miss")
	if n := len(dataLines(first.Body)); n < 4 {
		t.Fatalf("only %d data lines in the original stream", n)
	}
	if hs.counter("modelcache_route.chat.stored") != 1 {
		t.Fatalf("stream not stored; refused: %v", hs.h.MetricNames())
	}
	hit := hs.post(1, "/v1/chat/completions", streamBody("tell me a story"))
	expectCacheStatus(t, hit, "hit")
	if !strings.HasPrefix(hdr(hit, "content-type"), "text/event-stream") {
		t.Fatalf("replay content-type %q", hdr(hit, "content-type"))
	}
	if a, b := dataLines(first.Body), dataLines(hit.Body); strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatalf("replayed data lines differ:\n%s\n---\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	if !bytes.Contains(hit.Body, []byte("data: [DONE]")) || !bytes.Contains(hit.Body, []byte(`"usage"`)) {
		t.Fatal("replay lacks [DONE] or the usage chunk")
	}
	// stream:false is another entry.
	expectCacheStatus(t, hs.post(0, "/v1/chat/completions", strings.Replace(streamBody("tell me a story"), `"stream":true`, `"stream":false`, 1)), "fwd=miss")
	if hs.sim.Calls("/v1/chat/completions") != 2 {
		t.Fatalf("model calls = %d", hs.sim.Calls("/v1/chat/completions"))
	}
}

func TestStreamToolCallsReplay(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","finish_reasons":["stop","tool_calls"]}]}`
	hs := newHarness(t, cfg)
	body := `{"model":"sim-chat","stream":true,"tools":[{"type":"function","function":{"name":"get_weather","parameters":{}}}],"messages":[{"role":"user","content":"weather in Oslo?"}]}`
	first := hs.post(0, "/v1/chat/completions", body)
	if !bytes.Contains(first.Body, []byte("tool_calls")) {
		t.Fatalf("simulator sent no tool call: %s", first.Body)
	}
	hit := hs.post(1, "/v1/chat/completions", body)
	expectCacheStatus(t, hit, "hit")
	if !bytes.Equal(first.Body, hit.Body) {
		t.Fatal("tool-call stream replayed differently")
	}
}

// A stream that does not finish properly is never stored, and says why.
func TestBrokenStreamsNeverStored(t *testing.T) {
	tests := []struct {
		name   string
		header string
		value  string
		fault  func(u *wasmhost.UpstreamRequest) bool
		abort  bool
		stat   string
	}{
		{name: "truncated (no [DONE])", header: "x-sim-fault", value: "truncate", stat: "refused.truncated"},
		{name: "finish_reason length", header: "x-sim-finish-reason", value: "length", stat: "refused.finish_reason"},
		{name: "malformed chunk", header: "x-sim-fault", value: "malformed", stat: "refused.malformed_json"},
		{name: "upstream reset mid-stream", fault: func(u *wasmhost.UpstreamRequest) bool {
			u.RespondHeaders(200, [][2]string{{"content-type", "text/event-stream"}}, false)
			u.SendChunk([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"), false)
			u.Reset()
			return true
		}, stat: "refused.truncated"},
		{name: "client abort", fault: func(u *wasmhost.UpstreamRequest) bool {
			u.RespondHeaders(200, [][2]string{{"content-type", "text/event-stream"}}, false)
			u.SendChunk([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"), false)
			return true
		}, abort: true, stat: "refused.truncated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, chatConfig)
			hs.fault = tc.fault
			req := chatRequest("")
			req.Body = []byte(streamBody("broken " + tc.name))
			if tc.header != "" {
				req.Headers = append(req.Headers, [2]string{tc.header, tc.value})
			}
			for i := 0; i < 2; i++ {
				ex := hs.h.StartExchange(i, req)
				hs.h.Drain()
				if tc.abort {
					ex.Abort()
					hs.h.Drain()
				}
			}
			if got := hs.upstream.Load(); got != 2 {
				t.Fatalf("upstream calls = %d: a broken stream was served from cache", got)
			}
			if got := hs.counter("modelcache_route.chat." + tc.stat); got != 2 {
				t.Fatalf("%s = %d", tc.stat, got)
			}
			if hs.counter("modelcache_route.chat.stored") != 0 {
				t.Fatal("stored")
			}
		})
	}
}

func TestStreamStampedeOneUpstreamCall(t *testing.T) {
	hs := newHarness(t, coalesceConfig, withWorkers(2))
	hs.holdUpstream()
	var exs []*wasmhost.Exchange
	req := chatRequest("")
	req.Body = []byte(streamBody("fifty at once"))
	for i := 0; i < 50; i++ {
		exs = append(exs, hs.h.StartExchange(i%2, req))
	}
	hs.h.Drain()
	if n := len(hs.h.PendingUpstream()); n != 1 {
		t.Fatalf("%d upstream requests, want 1", n)
	}
	hs.answer(hs.h.PendingUpstream()[0])
	hs.h.Drain()
	want := dataLines(exs[0].Response().Body)
	for i, ex := range exs {
		if !ex.Done() || ex.Response().Status != 200 {
			t.Fatalf("stream %d: %s", i, ex.State())
		}
		got := dataLines(ex.Response().Body)
		if strings.Join(got, "\n") != strings.Join(want, "\n") || got[len(got)-1] != "data: [DONE]" {
			t.Fatalf("stream %d incomplete or different", i)
		}
	}
}

func TestStreamRecordingBounded(t *testing.T) {
	cfg := `{"store":{"max_entry_bytes":2048},"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions"}]}`
	hs := newHarness(t, cfg)
	res := hs.post(0, "/v1/chat/completions", streamBody(strings.Repeat("long ", 400)))
	if res.Status != 200 || !bytes.Contains(res.Body, []byte("[DONE]")) {
		t.Fatal("the client's stream was affected")
	}
	if hs.counter("modelcache_route.chat.refused.too_large") != 1 {
		t.Fatalf("too_large = %d", hs.counter("modelcache_route.chat.refused.too_large"))
	}
	_ = cachecore.ReasonTooLarge
}
