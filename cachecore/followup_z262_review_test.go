package cachecore

import (
	"strings"
	"testing"
)

// Review Z262: a follow-up of reviews Z258–Z261.

// z262LegacyStreamRequest is a streamed chat request that offers one legacy
// function (OpenAI's functions) and forces a call to it.
const z262LegacyStreamRequest = `{"model":"m","stream":true,"messages":[{"role":"user","content":"weather in Paris?"}],` +
	`"functions":[{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}],` +
	`"function_call":{"name":"get_weather"}}`

// Review Z259 judges OpenAI's legacy message.function_call as a tool call
// (README, bad_shape: "tool calls (and a legacy function_call) that do not
// each name a function with string arguments that are a JSON object (a
// call cut short ...) are refused"), but only in the JSON form. Streamed,
// the legacy call comes as delta.function_call (its name in the first
// chunk, its arguments in pieces, as openai-python's accumulator and the
// Node SDK's join them), and AssembleStream does not assemble it: the
// assembled message has content null and no call. A whole forced call,
// streamed, is refused empty_content (the refusal Z259 mended for the JSON
// form: such a route never caches a streamed legacy call). Expected:
// stored, as its JSON form is.
func TestZ262StreamedLegacyFunctionCallIsStored(t *testing.T) {
	stream := sseEvent(chatChunk(`{"role":"assistant","content":null,"function_call":{"name":"get_weather","arguments":""}}`, "")) +
		sseEvent(chatChunk(`{"function_call":{"arguments":"{\"city\": "}}`, "")) +
		sseEvent(chatChunk(`{"function_call":{"arguments":"\"Paris\"}"}}`, "")) +
		sseEvent(chatChunk(`{}`, "stop")) + sseEvent("[DONE]")
	if r := storeVerdict(t, testConfig, "chat", alice, z262LegacyStreamRequest, sseCT, stream); r != ReasonNone {
		t.Errorf("a whole streamed legacy function call (delta.function_call get_weather {\"city\": \"Paris\"}, finish_reason stop): refused %q, want stored as its JSON form is", r)
	}
}

// The other half: a streamed legacy call cut short ({"city": "Par), or
// naming a function the request did not offer, beside text, is stored and
// replayed, where the JSON form of each is refused bad_shape (Z259) and so
// is the same cut in a streamed tool_calls (Z241). Every later caller's
// accumulator gets arguments its json.loads fails on, or a name its
// dispatch does not know, for the entry's life. Expected: refused.
func TestZ262StreamedLegacyFunctionCallCutShortIsNotStored(t *testing.T) {
	for _, c := range []struct{ what, name, args string }{
		{"arguments cut short", "get_weather", `{\"city\": \"Par`},
		{"a function not offered", "get_wether", `{\"city\": \"Paris\"}`},
	} {
		stream := sseEvent(chatChunk(`{"role":"assistant","content":"Checking the weather."}`, "")) +
			sseEvent(chatChunk(`{"function_call":{"name":"`+c.name+`","arguments":""}}`, "")) +
			sseEvent(chatChunk(`{"function_call":{"arguments":"`+c.args+`"}}`, "")) +
			sseEvent(chatChunk(`{}`, "stop")) + sseEvent("[DONE]")
		// Control: the same answer in its JSON form is refused.
		json := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Checking the weather.",` +
			`"function_call":{"name":"` + c.name + `","arguments":"` + c.args + `"}},"finish_reason":"stop"}]}`
		jsonReq := strings.Replace(z262LegacyStreamRequest, `"stream":true,`, ``, 1)
		if r := storeVerdict(t, testConfig, "chat", alice, jsonReq, jsonCT, json); r == ReasonNone {
			t.Fatalf("control (%s): the JSON form was stored", c.what)
		}
		if r := storeVerdict(t, testConfig, "chat", alice, z262LegacyStreamRequest, sseCT, stream); r == ReasonNone {
			t.Errorf("a streamed legacy function call beside text, %s: stored (its JSON form is refused bad_shape)", c.what)
		}
	}
}
