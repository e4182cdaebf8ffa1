package cachecore

import "testing"

// Review Z241: poisoning through a chat answer's tool calls.

// z241ToolAnswer is a complete non-streamed chat answer whose one choice
// is the function tool call fn (the JSON of its "function" member).
func z241ToolAnswer(fn string) string {
	return `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,` +
		`"tool_calls":[{"id":"call_1","type":"function","function":` + fn + `}]},"finish_reason":"tool_calls"}]}`
}

// README (refused.bad_shape) and RATIONALE ("tool calls complete an answer
// only when each names a function with string `arguments`") promise that
// a function call without string arguments is not stored. toolCallNamed
// lets a call with no "arguments" member at all through
// (!input.Exists() || string): the answer is stored and every later
// caller gets a call whose function.arguments is missing (None in the
// Python SDK, a KeyError for a dict reader, "" for a Go client: each
// fails at json.loads/Unmarshal before the tool runs). Expected: refused
// bad_shape, as `"arguments": null` or `7` is.
func TestZ241ToolCallWithoutArgumentsIsNotStored(t *testing.T) {
	ans := z241ToolAnswer(`{"name":"get_weather"}`)
	if r := storeVerdict(t, testConfig, "tools", alice, chatRequest("weather in Paris?"), jsonCT, ans); r != ReasonBadShape {
		t.Errorf("function tool call without arguments: reason %q, want %q (stored and replayed to every caller)", r, ReasonBadShape)
	}
	// A custom tool call without its input, likewise (checkToolCalls: "its
	// arguments or input a string").
	custom := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,` +
		`"tool_calls":[{"id":"call_1","type":"custom","custom":{"name":"code_exec"}}]},"finish_reason":"tool_calls"}]}`
	if r := storeVerdict(t, testConfig, "tools", alice, chatRequest("run it"), jsonCT, custom); r != ReasonBadShape {
		t.Errorf("custom tool call without input: reason %q, want %q", r, ReasonBadShape)
	}
	// The control: with arguments it is stored.
	ok := z241ToolAnswer(`{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}`)
	if r := storeVerdict(t, testConfig, "tools", alice, chatRequest("weather in Paris?"), jsonCT, ok); r != ReasonNone {
		t.Fatalf("control: a well-formed tool call refused: %s", r)
	}
}

// A function call's arguments are a JSON object encoded as a string (the
// OpenAI API; vLLM, llama.cpp and Ollama alike): the client json.loads
// them and calls the tool. A server that ends a call early but reports
// finish_reason "tool_calls" (or "stop": llama.cpp and Ollama report
// max_tokens on tool calls so) sends `{"city": "Par`. Its retry may well
// complete it, yet the cache stores the cut call and every later caller's
// agent fails to parse it for the route's ttl — the truncated answer the
// cache promises never to keep. Expected: a function call whose arguments
// are not valid JSON is refused (bad_shape), in the JSON form and in a
// stream's assembly alike.
func TestZ241ToolCallWithTruncatedArgumentsIsNotStored(t *testing.T) {
	for _, args := range []string{`"{\"city\": \"Par"`, `"{\"city\": "`, `"{"`} {
		ans := z241ToolAnswer(`{"name":"get_weather","arguments":` + args + `}`)
		if r := storeVerdict(t, testConfig, "tools", alice, chatRequest("weather in Paris?"), jsonCT, ans); r == ReasonNone {
			t.Errorf("JSON answer: function tool call with arguments %s (not JSON) stored", args)
		}
	}
	stream := sseEvent(chatChunk(`{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": "}}]}`, "")) +
		sseEvent(chatChunk(`{"tool_calls":[{"index":0,"function":{"arguments":"\"Par"}}]}`, "")) +
		sseEvent(chatChunk(`{}`, "tool_calls")) + sseEvent("[DONE]")
	if r := storeVerdict(t, testConfig, "tools", alice, streamChatRequest, sseCT, stream); r == ReasonNone {
		t.Errorf("stream: function tool call whose arguments assemble to {\"city\": \"Par stored")
	}
}
