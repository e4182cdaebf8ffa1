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
