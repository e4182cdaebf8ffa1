package cachecore

import "testing"

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
