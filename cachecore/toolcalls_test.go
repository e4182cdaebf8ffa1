package cachecore

import (
	"strings"
	"testing"
)

// tool_calls make an answer complete only when each call names a
// function: [0], [null], [{}] or a nameless call are invalid output.
func TestToolCallsWithoutAFunctionAreNotStored(t *testing.T) {
	for _, tc := range []struct{ route, finish, calls string }{
		{"chat", "stop", `[0]`}, {"chat", "stop", `[null]`}, {"chat", "stop", `[{}]`},
		{"tools", "tool_calls", `[{"id":"","type":"function","function":{"name":"","arguments":""}}]`},
	} {
		ans := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":` +
			tc.calls + `},"finish_reason":"` + tc.finish + `"}]}`
		if r := storeVerdict(t, testConfig, tc.route, alice, chatRequest("weather?"), jsonCT, ans); r == ReasonNone {
			t.Errorf("%s: answer with tool_calls %s and no content stored", tc.route, tc.calls)
		}
	}
	stream := sseEvent(`{"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0}]}}]}`) +
		sseEvent(`{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`) + sseEvent("[DONE]")
	if r := storeVerdict(t, testConfig, "tools", alice, streamChatRequest, sseCT, stream); r == ReasonNone {
		t.Errorf("stream whose only tool call has no id, type or name stored")
	}
}

// A request for n choices is answered with n: an answer with fewer (or
// more) would be served to every later caller asking for n.
func TestChoiceCountMustBeTheRequestsN(t *testing.T) {
	req := `{"model":"m","n":3,"messages":[{"role":"user","content":"hi"}]}`
	choice := func(i string) string {
		return `{"index":` + i + `,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}`
	}
	ans := func(cs ...string) string {
		return `{"id":"c1","object":"chat.completion","model":"m","choices":[` + strings.Join(cs, ",") + `]}`
	}
	for _, tc := range []struct {
		answer string
		stored bool
	}{
		{ans(choice("0")), false},
		{ans(choice("0"), choice("1"), choice("2"), choice("3")), false},
		{ans(choice("0"), choice("1"), choice("2")), true},
	} {
		r := storeVerdict(t, testConfig, "chat", alice, req, jsonCT, tc.answer)
		if (r == ReasonNone) != tc.stored {
			t.Errorf("%s: reason %s, want stored %v", tc.answer, r, tc.stored)
		}
	}
	if r := storeVerdict(t, testConfig, "chat", alice, chatRequest("hi"), jsonCT, ans(choice("0"))); r != ReasonNone {
		t.Errorf("one choice for a request without n: %s", r)
	}
}

// A streamed tool call passes the checks its non-streamed form passes: a
// name and arguments that are strings, in a function that is an object.
// Fragments of any other type were read as their text ("{\"x\":1}") and
// stored; the same answer unstreamed is refused.
func TestStreamedToolCallFragmentsMustBeStrings(t *testing.T) {
	for _, call := range []string{
		`{"index":0,"id":"call_1","type":"function","function":{"name":{"x":1},"arguments":"{}"}}`,
		`{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":{"city":"Oslo"}}}`,
		`{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":7}}`,
		`{"index":0,"id":"call_1","type":"custom","custom":{"name":"code_exec","input":true}}`,
		`{"index":0,"id":"call_1","type":"function","function":"junk"}`,
	} {
		stream := sseEvent(`{"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[`+call+`]}}]}`) +
			sseEvent(`{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{}"}}]}}]}`) +
			sseEvent(`{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`) + sseEvent("[DONE]")
		if r := storeVerdict(t, testConfig, "tools", alice, streamChatRequest, sseCT, stream); r == ReasonNone {
			t.Errorf("stream with tool call %s stored", call)
		}
	}
	// The control: string fragments over two chunks are stored.
	ok := sseEvent(`{"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_","arguments":""}}]}}]}`) +
		sseEvent(`{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"weather","arguments":"{\"city\":\"Oslo\"}"}}]}}]}`) +
		sseEvent(`{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`) + sseEvent("[DONE]")
	if r := storeVerdict(t, testConfig, "tools", alice, streamChatRequest, sseCT, ok); r != ReasonNone {
		t.Fatalf("control: a well-formed streamed tool call refused: %s", r)
	}
}

// Text beside tool calls has to be text, as everywhere else: an array
// whose parts are not text parts is invalid output.
func TestContentBesideToolCallsMustBeText(t *testing.T) {
	for _, content := range []string{`[7,{"text":5}]`, `[7]`, `[{"text":5}]`, `7`, `{"text":"a"}`} {
		ans := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":` + content +
			`,"tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`
		if r := storeVerdict(t, testConfig, "tools", alice, chatRequest("weather?"), jsonCT, ans); r == ReasonNone {
			t.Errorf("answer with content %s beside tool_calls stored", content)
		}
	}
	for _, content := range []string{`null`, `""`, `"Let me look."`, `[{"type":"text","text":"Let me look."}]`} {
		ans := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":` + content +
			`,"tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`
		if r := storeVerdict(t, testConfig, "tools", alice, chatRequest("weather?"), jsonCT, ans); r != ReasonNone {
			t.Errorf("control: content %s beside tool_calls refused: %s", content, r)
		}
	}
}
