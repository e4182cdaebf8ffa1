//go:build !wasip1

package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/modelcache/modelcache/wasmhost"
)

// Review Z33: APIs shaped like OpenAI's but not quite.
//
// A chat (or embeddings) route in front of a server that answers in its
// own shape (Anthropic's Messages API, Ollama's native /api/chat and
// /api/embed) stores none of its answers: the kind cannot read them.
// That is safe for the answer. But the refusal is judged "invalid output",
// a failure that may pass, so a burst of identical requests is led one
// after another into the same answer, and after max_retries+1 leaders the
// followers still waiting are answered 502 leader-failed — although the
// model answered every call 200. A retry of the same request meets the
// same shape again: the refusal is lasting (hit-for-miss), as not_json,
// finish_reason or stream_mode are.

// foreignConfig: a chat route on Anthropic's /v1/messages (README's
// key_headers recommends anthropic-version/anthropic-beta for such
// routes), a chat route on Ollama's /api/chat and an embeddings route on
// Ollama's /api/embed.
const foreignConfig = `{
  "upstream_cluster": "model",
  "routes": [
    {"name": "anthropic", "kind": "chat", "path_exact": "/v1/messages", "ttl": "60s",
     "key_headers": ["anthropic-version"],
     "coalesce": {"max_wait": "10s", "max_retries": 2, "hit_for_miss": "30s"}},
    {"name": "ollama", "kind": "chat", "path_exact": "/api/chat", "ttl": "60s",
     "coalesce": {"max_wait": "10s", "max_retries": 2, "hit_for_miss": "30s"}},
    {"name": "ollamaemb", "kind": "embeddings", "path_exact": "/api/embed", "ttl": "60s",
     "coalesce": {"max_wait": "10s", "max_retries": 2, "hit_for_miss": "30s"}},
    {"name": "rerank", "kind": "rerank", "path_exact": "/v1/rerank", "ttl": "60s",
     "coalesce": {"max_wait": "10s", "max_retries": 2, "hit_for_miss": "30s"}}
  ]
}`

func foreignRequest(path, body string) wasmhost.Request {
	return wasmhost.Request{
		Headers: [][2]string{{":method", "POST"}, {":path", path}, {":authority", "models"},
			{"content-type", "application/json"}, {"x-api-key", "sk-ant-tenant-a"}, {"anthropic-version", "2023-06-01"},
			{"content-length", strconv.Itoa(len(body))}},
		Body: []byte(body),
	}
}

func TestForeignShapeBurstGetsNoLeaderFailed(t *testing.T) {
	for _, tc := range []struct {
		name, route, path, req, answer, refused, ct string
	}{
		{
			name: "anthropic messages", route: "anthropic", path: "/v1/messages",
			req: `{"model":"claude-3-5-haiku-latest","max_tokens":256,"system":"be brief","messages":[{"role":"user","content":"hello"}]}`,
			answer: `{"id":"msg_01","type":"message","role":"assistant","model":"claude-3-5-haiku-latest",` +
				`"content":[{"type":"text","text":"Hi there!"}],"stop_reason":"end_turn","stop_sequence":null,` +
				`"usage":{"input_tokens":10,"output_tokens":4}}`,
			refused: "refused.foreign_shape",
		},
		{
			name: "ollama chat", route: "ollama", path: "/api/chat",
			req: `{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hello"}],"options":{"seed":1}}`,
			answer: `{"model":"llama3.2","created_at":"2024-01-01T00:00:00Z","message":{"role":"assistant","content":"Hi!"},` +
				`"done_reason":"stop","done":true,"total_duration":1000,"eval_count":3}`,
			refused: "refused.foreign_shape",
		},
		{
			name: "ollama embed", route: "ollamaemb", path: "/api/embed",
			req:     `{"model":"nomic-embed-text","input":["hello","world"]}`,
			answer:  `{"model":"nomic-embed-text","embeddings":[[0.1,0.2,0.3],[0.4,0.5,0.6]],"total_duration":100}`,
			refused: "refused.foreign_shape",
		},
		{
			// A reranker answering in a shape of its own (scores under
			// another member than results).
			name: "rerank other shape", route: "rerank", path: "/v1/rerank",
			req:     `{"model":"bge-reranker","query":"what is a cache","documents":["a cache keeps answers","bananas"]}`,
			answer:  `{"model":"bge-reranker","scores":[{"index":0,"score":0.9},{"index":1,"score":0.1}]}`,
			refused: "refused.foreign_shape",
		},
		{
			// The stream's verdict (foreign_shape) comes at its end, after the
			// followers waited for it.
			name: "anthropic messages stream", route: "anthropic", path: "/v1/messages", ct: "text/event-stream",
			req: `{"model":"claude-3-5-haiku-latest","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"hello"}]}`,
			answer: "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-3-5-haiku-latest\",\"stop_reason\":null}}\n\n" +
				"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n" +
				"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"}}\n\n" +
				"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
			refused: "refused.foreign_shape",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, foreignConfig, withWorkers(2))
			hs.holdUpstream()
			var exs []*wasmhost.Exchange
			for i := 0; i < 10; i++ {
				exs = append(exs, hs.h.StartExchange(i%2, foreignRequest(tc.path, tc.req)))
			}
			hs.h.Drain()
			// The model answers every call it gets, 200, in its own shape.
			calls := 0
			for round := 0; round < 50; round++ {
				pending := hs.h.PendingUpstream()
				if len(pending) == 0 {
					break
				}
				for _, u := range pending {
					head := [][2]string{{"content-type", "application/json"}, {"content-length", strconv.Itoa(len(tc.answer))}}
					if tc.ct != "" {
						head = [][2]string{{"content-type", tc.ct}}
					}
					u.Respond(200, head, []byte(tc.answer))
					calls++
				}
				hs.h.Drain()
			}
			var bad []string
			for i, ex := range exs {
				if !ex.Done() {
					t.Fatalf("exchange %d stuck: %s", i, ex.State())
				}
				r := ex.Response()
				if r.Status != 200 || strings.Contains(hdr(r, "cache-status"), "leader-failed") {
					bad = append(bad, strconv.Itoa(r.Status)+" "+hdr(r, "cache-status"))
				}
			}
			if tc.refused != "" {
				if n := hs.counter("modelcache_route." + tc.route + "." + tc.refused); n == 0 {
					t.Fatalf("setup: %s not counted: the answer was refused for another reason", tc.refused)
				}
			}
			if len(bad) > 0 {
				t.Fatalf("the model answered all %d calls 200 in its own shape, yet %d of 10 clients got a failure "+
					"(requests.leader_failed %d), e.g. %q",
					calls, len(bad), hs.counter("modelcache_route."+tc.route+".requests.leader_failed"), bad[0])
			}
		})
	}
}
