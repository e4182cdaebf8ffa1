package cachecore

// Real answers the shape checks must still store (review 7), and a purge
// path that could never match.

import (
	"strings"
	"testing"
)

// OpenAI's chat completions return custom-tool calls (tools of type
// "custom", GPT-5) as {"type":"custom","custom":{"name","input"}}: no
// "function" member. Before today any non-empty tool_calls array made the
// answer complete; now it is refused as bad_shape.
func TestCustomToolCallIsStored(t *testing.T) {
	ans := `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-5","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,` +
		`"tool_calls":[{"id":"call_1","type":"custom","custom":{"name":"code_exec","input":"print(1)"}}]},"finish_reason":"tool_calls"}]}`
	if r := storeVerdict(t, testConfig, "tools", alice, chatRequest("run it"), jsonCT, ans); r != ReasonNone {
		t.Fatalf("OpenAI custom tool call answer refused: %s", r)
	}
}

// Legacy completions: n is "how many completions to generate for each
// prompt", and prompt may be an array, so 2 prompts x n=2 = 4 choices.
func TestBatchPromptWithNIsStored(t *testing.T) {
	req := `{"model":"m","prompt":["a","b"],"n":2}`
	ch := func(i string) string {
		return `{"index":` + i + `,"text":"x` + i + `","logprobs":null,"finish_reason":"stop"}`
	}
	ans := `{"id":"c","object":"text_completion","model":"m","choices":[` +
		strings.Join([]string{ch("0"), ch("1"), ch("2"), ch("3")}, ",") + `]}`
	if r := storeVerdict(t, testConfig, "completions", alice, req, jsonCT, ans); r != ReasonNone {
		t.Fatalf("2 prompts x n=2 answered with 4 choices refused: %s", r)
	}
}

// Mistral's reasoning models (Magistral) stream delta.content as an array
// of typed chunks; the same content in a non-streamed answer is stored
// ("an array of content parts with text"), the stream is refused.
func TestStreamedContentPartsAreStored(t *testing.T) {
	chunk := func(delta, fr string) string {
		return sseEvent(`{"id":"c1","object":"chat.completion.chunk","model":"magistral-medium-latest","choices":[{"index":0,"delta":` +
			delta + `,"finish_reason":` + fr + `}]}`)
	}
	stream := chunk(`{"role":"assistant","content":[{"type":"thinking","thinking":[{"type":"text","text":"Let me think."}]}]}`, "null") +
		chunk(`{"content":[{"type":"text","text":"Hello"}]}`, "null") +
		chunk(`{"content":""}`, `"stop"`) + sseEvent("[DONE]")
	nonStream := `{"id":"c1","object":"chat.completion","model":"magistral-medium-latest","choices":[{"index":0,"message":{"role":"assistant","content":` +
		`[{"type":"thinking","thinking":[{"type":"text","text":"Let me think."}]},{"type":"text","text":"Hello"}]},"finish_reason":"stop"}]}`
	if r := storeVerdict(t, testConfig, "chat", alice, chatRequest("hi"), jsonCT, nonStream); r != ReasonNone {
		t.Fatalf("control: non-streamed content parts refused: %s", r)
	}
	if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, stream); r != ReasonNone {
		t.Fatalf("streamed content parts refused: %s (the same answer unstreamed is stored)", r)
	}
}

// A purge.path with a query never matches (IsPurge compares the request's
// path without its query), the very reason route paths with ? or # are
// now refused; purge.path is not checked, so the purge API is silently off.
func TestConfigPurgePathWithQueryRefused(t *testing.T) {
	cfg := `{"purge":{"path":"/_modelcache/purge?v=1","token":"0123456789abcdef"},
	         "routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat"}]}`
	parsed, err := ParseConfig([]byte(cfg))
	if err == nil {
		c := New(parsed, Options{Store: NewMemStore(), Now: newFakeClock().Now, Rand: seededRand(1)})
		if !c.IsPurge("POST", "/_modelcache/purge?v=1") {
			t.Fatalf("purge.path %q accepted, yet no request is a purge call (not even one to that exact path)", "/_modelcache/purge?v=1")
		}
	}
}

// A streamed custom tool call assembles to one, and is stored.
func TestStreamedCustomToolCallIsStored(t *testing.T) {
	stream := sseEvent(`{"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"custom","custom":{"name":"code_exec","input":""}}]}}]}`) +
		sseEvent(`{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"custom":{"input":"print(1)"}}]}}]}`) +
		sseEvent(`{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`) + sseEvent("[DONE]")
	if r := storeVerdict(t, testConfig, "tools", alice, streamChatRequest, sseCT, stream); r != ReasonNone {
		t.Fatalf("streamed custom tool call refused: %s", r)
	}
	if got := AssembleStream(KindChat, []byte(stream)).Assembled; !strings.Contains(string(got), `"custom":{"name":"code_exec","input":"print(1)"}`) {
		t.Fatalf("assembled %s", got)
	}
}
