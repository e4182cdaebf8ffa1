package cachecore

import "testing"

// README (Streaming): a stream is stored if "the message assembled from
// the deltas passes the same checks as a non-streamed answer (..., tool
// calls that each name a function, ...)". A tool call's "type" is
// optional: the JSON form of a call without one is stored (toolCallNamed
// takes a missing type for "function"), and the OpenAI SDKs read a delta
// tool call without one (ChoiceDeltaToolCall.type is Optional). But
// AssembleStream writes a missing type as `"type":""`, which the JSON check
// then refuses as bad_shape: the streamed form of an answer whose JSON form
// is cached is never cached. Expected: the stream is judged as its JSON
// form (no type, or "function"), and stored.
func TestStreamedToolCallWithoutTypeStoredAsItsJSONForm(t *testing.T) {
	plain := `{"model":"m","messages":[{"role":"user","content":"weather?"}]}`
	jsonAns := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,` +
		`"tool_calls":[{"id":"call_1","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},"finish_reason":"tool_calls"}]}`
	if r := storeVerdict(t, testConfig, "tools", alice, plain, jsonCT, jsonAns); r != ReasonNone {
		t.Fatalf("setup: the JSON tool call without a type: %v, want stored", r)
	}
	stream := sseEvent(`{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null,`+
		`"tool_calls":[{"index":0,"id":"call_1","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}`) +
		sseEvent(`{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{`+
			`"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":\"Oslo\"}"}}]},"finish_reason":null}]}`) +
		sseEvent(chatChunk(`{}`, "tool_calls")) + sseEvent("[DONE]")
	if r := storeVerdict(t, testConfig, "tools", alice, streamChatRequest, sseCT, stream); r != ReasonNone {
		t.Errorf("the streamed form of a stored JSON tool call was refused: %s; assembled: %s",
			r, AssembleStream(KindChat, []byte(stream)).Assembled)
	}
}

// README (Streaming, Validation rules): a stream is judged on the message
// it assembles to and must pass "the route's validation rules" as its
// non-streamed form would. A server that sends a message's content as an
// array of content parts (Mistral's typed chunks) sends each delta's
// content as such an array too, and that is what a hit replays. A route
// that keeps only plain-text answers ({"path":
// "choices.0.message.content","type":"string"}) refuses the JSON form
// (refused.validation), but AssembleStream flattens the parts' text into a
// string, so the rule holds on the stream and the parts-array stream is
// stored and replayed to every later stream client the rule was written
// to protect. Expected: the streamed form is refused as its JSON form is
// (the assembly keeps content parts as parts, or such a rule refuses
// streams).
func TestStreamedContentPartsJudgedAsTheirJSONForm(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
	  "validate":[{"path":"choices.0.message.content","type":"string"}]}]}`
	plain := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	jsonAns := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant",` +
		`"content":[{"type":"text","text":"Hello"}]},"finish_reason":"stop"}]}`
	if r := storeVerdict(t, cfg, "chat", alice, plain, jsonCT, jsonAns); r != ReasonValidation {
		t.Fatalf("setup: the JSON answer with content parts: %v, want validation", r)
	}
	stream := sseEvent(chatChunk(`{"role":"assistant","content":[{"type":"text","text":"Hel"}]}`, "")) +
		sseEvent(chatChunk(`{"content":[{"type":"text","text":"lo"}]}`, "")) +
		sseEvent(chatChunk(`{}`, "stop")) + sseEvent("[DONE]")
	if r := storeVerdict(t, cfg, "chat", alice, streamChatRequest, sseCT, stream); r == ReasonNone {
		t.Errorf("a stream of content-part deltas was stored where its JSON form is refused.validation; assembled: %s",
			AssembleStream(KindChat, []byte(stream)).Assembled)
	}
}
