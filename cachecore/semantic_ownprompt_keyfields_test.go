package cachecore

import (
	"strings"
	"testing"
)

// README (semantic): "neither with vLLM's prompt_logprobs or
// return_token_ids, whose answer lists its own prompt's tokens: those are
// matched exactly only". describesOwnPrompt reads the canonical body,
// which is the key's projection: under a key_fields allowlist (the
// question and the model, a common configuration) those members were not
// in it, so the semantic step did not see them and a paraphrase asking
// for its prompt's token ids was served another prompt's ids (review Z15,
// stop 72). They are now keyed whatever key_fields says (formKeyed).
func TestSemanticPromptDescribingFieldsMatchOnlyExactlyUnderKeyFields(t *testing.T) {
	const cfg = `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
	  "ttl":"1h","key_fields":["model","messages","temperature"],
	  "semantic":{"embedding":{"cluster":"embeddings","model":"e5"},"confirm":{"exact_hits":0}}}]}`
	stored, para := "How do I reset my password?", "How can I reset my password?"
	for _, field := range []string{`"return_token_ids":true`, `"prompt_logprobs":0`} {
		t.Run(field, func(t *testing.T) {
			e := newSemEnv(t, "")
			e.testEnv = newEnv(t, cfg)
			body := func(p string) string {
				return `{"model":"Qwen/Qwen2.5-7B-Instruct","messages":[{"role":"user","content":` + quote(p) + `}],` + field + `,"temperature":0}`
			}
			answer := `{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Click 'forgot password'."},` +
				`"finish_reason":"stop"}],"prompt_token_ids":[4340,653,358,7585,847,3552,30],"prompt_logprobs":[null,{"653":{"logprob":-3.1,"rank":1,"decoded_token":" do"}}]}`
			f, _ := e.semAskBody("chat", "/v1/chat/completions", alice, body(stored), stored)
			f.ResponseHeaders(200, jsonCT, OriginUpstream, false)
			f.Complete(jsonCT, []byte(answer), 5, alice)
			if _, got := e.semAskBody("chat", "/v1/chat/completions", alice, body(stored), stored); !strings.HasSuffix(got, "serve") {
				t.Fatalf("setup: the exact request again: %q", got)
			}
			f, got := e.semAskBody("chat", "/v1/chat/completions", alice, body(para), para)
			if strings.HasSuffix(got, "serve") {
				_, _, b := e.cache.HitResponse(f.Request())
				t.Fatalf("a paraphrase with %s was served as a near hit (%q) the stored prompt's tokens: %s", field, got, b)
			}
		})
	}
}

// The same fields keep exact keys apart under key_fields too: an answer
// listing a prompt's tokens is not served to the request that did not ask
// for them, nor the other way round.
func TestPromptDescribingFieldsStayKeyedUnderKeyFields(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[
	  {"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","key_fields":["model","messages"]},
	  {"name":"cmpl","kind":"completions","path_prefix":"/v1/completions","key_fields":["model","prompt"]}]}`)
	for _, tc := range []struct{ route, base string }{
		{"chat", `{"model":"m","messages":[{"role":"user","content":"hi"}]`},
		{"cmpl", `{"model":"m","prompt":"hi"`},
	} {
		plain := string(env.request(tc.route, alice, tc.base+`}`).Key)
		for _, field := range []string{`"return_token_ids":true`, `"prompt_logprobs":1`} {
			if got := string(env.request(tc.route, alice, tc.base+`,`+field+`}`).Key); got == plain {
				t.Fatalf("%s: a request with %s has the key of one without it", tc.route, field)
			}
		}
	}
}
