package cachecore

import (
	"strings"
	"testing"
)

// Review Z259: answer validation on chat/completions (poisoning): tool
// calls, legacy function calls.

// z259Tools is a chat request on the "tools" route (finish_reasons stop
// and tool_calls) that offers one function tool, get_weather.
const z259Tools = `{"model":"m","messages":[{"role":"user","content":"weather in Paris?"}],` +
	`"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}`

// A function call's arguments are a JSON object encoded as a string: the
// client json.loads them and calls the tool with the object (openai-agents
// validates it against the tool's parameters, LangChain's ToolCall.args is
// a dict). toolCallNamed checks only that the string is JSON (scanJSON):
// a call whose arguments decode to a JSON string passes. That is the
// double-encoding Granite 4 emits through vLLM's hermes parser
// (vllm-project/vllm#25729, #54964: arguments
// '"{\n  \"city\": \"Bengaluru\"\n}"'), a model failure a retry may not
// repeat; here the inner text is even cut short. Stored, every later caller
// of the key gets a call whose arguments decode to a str, not an object,
// and its agent fails before the tool runs, for the entry's life — the
// invalid answer the cache promises never to keep (README, bad_shape:
// "tool calls that do not each name a function with string arguments that
// are JSON"; the arguments' JSON is the object the call passes). Expected:
// refused (bad_shape), in the JSON form and in a stream's assembly alike;
// a call whose arguments are an object is stored (control).
func TestZ259ToolCallArgumentsThatDecodeToAStringAreNotStored(t *testing.T) {
	if r := storeVerdict(t, testConfig, "tools", alice, z259Tools, jsonCT,
		z241ToolAnswer(`{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}`)); r != ReasonNone {
		t.Fatalf("control: arguments an object: %s", r)
	}
	for _, args := range []string{
		`"\"{\\\"city\\\": \\\"Par\""`,                // a JSON string of a cut object
		`"\"{\\n  \\\"city\\\": \\\"Paris\\\"\\n}\""`, // Granite 4's double-encoding, whole inside
	} {
		ans := z241ToolAnswer(`{"name":"get_weather","arguments":` + args + `}`)
		if r := storeVerdict(t, testConfig, "tools", alice, z259Tools, jsonCT, ans); r == ReasonNone {
			t.Errorf("JSON answer: function call with arguments %s (JSON that decodes to a string, not an object) stored", args)
		}
	}
	stream := `{"model":"m","stream":true,` + strings.TrimPrefix(z259Tools, `{"model":"m",`)
	events := sseEvent(chatChunk(`{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"\"{\\\"city\\\": "}}]}`, "")) +
		sseEvent(chatChunk(`{"tool_calls":[{"index":0,"function":{"arguments":"\\\"Par\""}}]}`, "")) +
		sseEvent(chatChunk(`{}`, "tool_calls")) + sseEvent("[DONE]")
	control := sseEvent(chatChunk(`{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": "}}]}`, "")) +
		sseEvent(chatChunk(`{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}`, "")) +
		sseEvent(chatChunk(`{}`, "tool_calls")) + sseEvent("[DONE]")
	if r := storeVerdict(t, testConfig, "tools", alice, stream, sseCT, control); r != ReasonNone {
		t.Fatalf("control: a stream whose arguments assemble to an object: %s", r)
	}
	if r := storeVerdict(t, testConfig, "tools", alice, stream, sseCT, events); r == ReasonNone {
		t.Errorf("stream: function call whose arguments assemble to a JSON string of a cut object stored")
	}
}

// A tool call names a tool the request offered: the client dispatches it
// by name among its own tools. A call to a name the request's "tools" do
// not hold (gpt-oss calling its built-in "browser.search" or "python"
// unoffered, a model misspelling a name) fails every client's dispatch
// ("tool not found"), and a retry may well name the offered tool. The
// cache checks that each call names some tool (toolCallNamed) but not that
// it is one the request offered, though "tools" is in every key
// (formKeyed) — as a rerank answer's index outside the documents is
// refused (rerank_index), a call outside the offered tools is the answer
// of no request with that key. Stored, it is served to every caller for
// the entry's life. Expected: refused (bad_shape); the control, a call to
// get_weather, is stored.
func TestZ259ToolCallToAToolNotOfferedIsNotStored(t *testing.T) {
	if r := storeVerdict(t, testConfig, "tools", alice, z259Tools, jsonCT,
		z241ToolAnswer(`{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}`)); r != ReasonNone {
		t.Fatalf("control: a call to the offered get_weather: %s", r)
	}
	for _, name := range []string{"browser.search", "get_wether"} {
		ans := z241ToolAnswer(`{"name":"` + name + `","arguments":"{\"city\": \"Paris\"}"}`)
		if r := storeVerdict(t, testConfig, "tools", alice, z259Tools, jsonCT, ans); r == ReasonNone {
			t.Errorf("a call to %q, a tool the request did not offer (it offered get_weather only), stored", name)
		}
	}
}

// OpenAI's legacy function calling (functions, function_call), which the
// Chat Completions API still serves and whose fields the key holds as sent
// (formKeyed, review Z202), answers a forced call ("function_call":
// {"name": …}) with message.function_call, content null and
// finish_reason "stop". checkCompletion knows only tool_calls: the content
// null is empty_content, so every whole legacy call is refused and the
// route never caches one (a lasting refusal of a valid answer). And a
// function_call beside text is not looked at: its arguments cut short are
// stored and replayed, where the same cut in tool_calls is refused (review
// Z241). Expected: the whole forced call stored; a call whose arguments
// are cut short refused, whatever text is beside it.
func TestZ259LegacyFunctionCallIsJudgedAsAToolCall(t *testing.T) {
	const functions = `"functions":[{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]`
	req := `{"model":"m","messages":[{"role":"user","content":"weather in Paris?"}],` + functions + `,"function_call":{"name":"get_weather"}}`
	legacy := func(content, args string) string {
		return `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":` + content +
			`,"function_call":{"name":"get_weather","arguments":` + args + `}},"finish_reason":"stop"}]}`
	}
	if r := storeVerdict(t, testConfig, "chat", alice, req, jsonCT, legacy(`null`, `"{\"city\": \"Paris\"}"`)); r != ReasonNone {
		t.Errorf("a whole forced legacy function call (content null, finish_reason stop): refused %q, want stored", r)
	}
	if r := storeVerdict(t, testConfig, "chat", alice, req, jsonCT, legacy(`"Checking the weather."`, `"{\"city\": \"Par"`)); r == ReasonNone {
		t.Errorf("a legacy function call whose arguments are cut short ({\"city\": \"Par), beside text: stored")
	}
}
