package cachecore

import (
	"strings"
	"testing"
)

// Review Z231: request fields a key leaves out (README "Keys",
// key_fields: "fields that set the answer's form stay keyed as sent
// whatever it says"; RATIONALE, "Embeddings: an entry per item": "What a
// key_fields allowlist may leave out is what changes the content of an
// answer, never its shape"). include_reasoning and reasoning_format are
// form-keyed for "a reasoning member ... in the message" (review Z199),
// tool_choice and function_call for "whether the answer is tool calls or
// text". The fields below set the same things on the servers the cache
// fronts, and are not keyed under an allowlist.

// z231ReasoningAnswer is a chat answer from a reasoning model: the
// thinking in its own message member (vLLM's and SGLang's
// reasoning_content, OpenRouter's reasoning), the answer in content.
func z231ReasoningAnswer(member string) string {
	return `{"id":"chatcmpl-1","object":"chat.completion","model":"qwen3-8b","choices":[{"index":0,` +
		`"message":{"role":"assistant","` + member + `":"The user asks for 2+2. That is 4.","content":"4"},"finish_reason":"stop"}]}`
}

// A request that turns a reasoning model's thinking off (or leaves it out
// of the answer) was served the answer stored for one that did not, with
// its reasoning member: a client that asked for no thinking gets it
// (vLLM and SGLang with Qwen3 or DeepSeek-V3.1: chat_template_kwargs
// {"enable_thinking": false} / {"thinking": false}; OpenRouter: reasoning
// {"exclude": true}, the successor of its include_reasoning; SGLang:
// separate_reasoning false puts the thinking inline in content instead of
// reasoning_content; Alibaba's Qwen API: enable_thinking; Z.ai's GLM:
// thinking {"type": "disabled"}). Expected: these fields stay keyed as
// sent, as include_reasoning and reasoning_format do, so the request
// misses.
func TestRequestFieldsReasoningTogglesStayKeyedUnderKeyFields(t *testing.T) {
	for _, tc := range []struct {
		name, member, field string
	}{
		{"vllm_chat_template_kwargs", "reasoning_content", `"chat_template_kwargs":{"enable_thinking":false}`},
		{"openrouter_reasoning_exclude", "reasoning", `"reasoning":{"exclude":true}`},
		{"sglang_separate_reasoning", "reasoning_content", `"separate_reasoning":false`},
		{"qwen_enable_thinking", "reasoning_content", `"enable_thinking":false`},
		{"glm_thinking_disabled", "reasoning_content", `"thinking":{"type":"disabled"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
			  "key_fields":["model","messages"]}]}`)
			base := chatRequest("what is 2+2?")
			req, d := env.lookup("chat", alice, base)
			if req.Bypassed() || d != Forward {
				t.Fatalf("setup: %v %s", d, req.Reason)
			}
			env.fill(req, jsonCT, z231ReasoningAnswer(tc.member), 5)
			if _, d := env.lookup("chat", alice, base); d != Serve {
				t.Fatalf("setup: the same request is not served: %v", d)
			}
			off := strings.Replace(base, `"temperature":0`, `"temperature":0,`+tc.field, 1)
			if got, d := env.lookup("chat", alice, off); d == Serve {
				t.Fatalf("a request with %s (no reasoning asked for) is served the answer stored without it, %s and all: %s",
					tc.field, tc.member, got.Entry.Body)
			}
		})
	}
}

// tools decides whether the model can answer
// with tool calls at all: with tools and no tool_choice (auto) it calls
// one, without tools it can only write text. On a chat route keyed on
// model and messages that admits tool-call answers (finish_reasons
// ["stop","tool_calls"]), a request that declared no tools was served the
// tool call stored for one that did: content null and a call to a
// function the client never declared, the shape tool_choice "none"
// (form-keyed since review Z199) is keyed against. Expected: tools stays
// keyed as sent, as tool_choice and function_call do.
func TestRequestFieldsChatToolsStayKeyedUnderKeyFields(t *testing.T) {
	for _, tc := range []struct{ name, decl string }{
		{"tools", z199Tools},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
			  "key_fields":["model","messages"],"finish_reasons":["stop","tool_calls"]}]}`)
			withTools := strings.Replace(chatRequest("weather in Paris?"), `"temperature":0`, `"temperature":0,`+tc.decl, 1)
			req, d := env.lookup("chat", alice, withTools)
			if req.Bypassed() || d != Forward {
				t.Fatalf("setup: %v %s", d, req.Reason)
			}
			answer := strings.Replace(z199ToolsAnswer(1), `"finish_reason":"stop"`, `"finish_reason":"tool_calls"`, 1)
			env.fill(req, jsonCT, answer, 5)
			if _, d := env.lookup("chat", alice, withTools); d != Serve {
				t.Fatalf("setup: the same request is not served: %v", d)
			}
			plain := chatRequest("weather in Paris?")
			if got, d := env.lookup("chat", alice, plain); d == Serve {
				t.Fatalf("a request declaring no %s is served the tool call stored for one that did: %s", tc.name, got.Entry.Body)
			}
		})
	}
}
