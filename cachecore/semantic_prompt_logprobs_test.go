package cachecore

import (
	"strings"
	"testing"
)

// vLLM's prompt_logprobs (completions and chat) returns, with the answer,
// the log-probability of every token of the request's own prompt
// ("prompt_logprobs": [null, {"<id>": {"logprob": …, "decoded_token":
// "How"}}, …]): like echo, which the semantic step already matches
// exactly only, such an answer describes its own prompt. A near match
// hands the paraphrase another prompt's tokens. The paraphrase is asked
// with its own vector identical to the stored one (any small encoder
// puts this pair above 0.9).
func TestSemanticPromptLogprobsMatchOnlyExactly(t *testing.T) {
	stored, para := "How do I reset my password?", "How can I reset my password?"
	for _, c := range []struct {
		name, route, path, cfg string
		body                   func(p string) string
		answer                 string
	}{
		{
			name: "completions", route: "cmpl", path: "/v1/completions",
			cfg: `{"upstream_cluster":"model","routes":[{"name":"cmpl","kind":"completions","path_prefix":"/v1/completions",
			  "ttl":"1h","semantic":{"embedding":{"cluster":"embeddings","model":"e5"}}}]}`,
			body: func(p string) string {
				return `{"model":"Qwen/Qwen2.5-7B","prompt":` + quote(p) + `,"prompt_logprobs":0,"max_tokens":64,"temperature":0}`
			},
			answer: `{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":" Click 'forgot password'.","finish_reason":"stop",` +
				`"prompt_logprobs":[null,{"653":{"logprob":-3.1,"rank":1,"decoded_token":" do"}},{"358":{"logprob":-0.2,"rank":1,"decoded_token":" I"}}]}]}`,
		},
		{
			name: "chat", route: "chat", path: "/v1/chat/completions",
			cfg: `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
			  "ttl":"1h","semantic":{"embedding":{"cluster":"embeddings","model":"e5"}}}]}`,
			body: func(p string) string {
				return `{"model":"Qwen/Qwen2.5-7B-Instruct","messages":[{"role":"user","content":` + quote(p) + `}],"prompt_logprobs":0,"temperature":0}`
			},
			answer: `{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Click 'forgot password'."},` +
				`"finish_reason":"stop"}],"prompt_logprobs":[null,{"653":{"logprob":-3.1,"rank":1,"decoded_token":" do"}}]}`,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newSemEnv(t, "")
			e.testEnv = newEnv(t, c.cfg)
			f, _ := e.semAskBody(c.route, c.path, alice, c.body(stored), stored)
			f.ResponseHeaders(200, jsonCT, OriginUpstream, false)
			f.Complete(jsonCT, []byte(c.answer), 5, alice)
			if _, got := e.semAskBody(c.route, c.path, alice, c.body(stored), stored); !strings.HasSuffix(got, "serve") {
				t.Fatalf("the exact request again: %q", got)
			}
			f, got := e.semAskBody(c.route, c.path, alice, c.body(para), para)
			if strings.HasSuffix(got, "serve") {
				_, _, body := e.cache.HitResponse(f.Request())
				t.Fatalf("a paraphrase with prompt_logprobs was served the stored prompt's token logprobs (%q): %s", got, body)
			}
		})
	}
}
