package cachecore

import "testing"

// Review Z127. README (Streaming): a stream is stored only if "the message
// assembled from the deltas passes the same checks as a non-streamed answer
// (..., non-empty content or tool calls that each name a function, ...)", and
// refused.bad_shape covers "tool calls that do not each name a function".
// A non-streamed message whose tool_calls is not an array (an object) is refused.bad_shape (checkToolCalls). AssembleStream reads a
// delta's tool_calls with gjson's ForEach, which walks an object's member
// values as if they were the array's elements: the stream is stored. Replayed, a client that
// iterates delta.tool_calls (openai-python's stream helpers, any agent loop
// doing `for tc in delta.tool_calls: tc.index`) meets a dict's keys and
// fails, on every hit.
func TestReviewZ127StreamToolCallsNotAnArrayRefused(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","finish_reasons":["stop","tool_calls"]}]}`
	plain := `{"model":"m","messages":[{"role":"user","content":"weather?"}]}`
	streamed := `{"model":"m","stream":true,"messages":[{"role":"user","content":"weather?"}]}`
	call := `{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}`
	for _, tc := range []struct {
		name, calls, content, finish string
	}{
		{"object holding a call", `{"0":` + call + `}`, `null`, "tool_calls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jsonAns := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":` +
				tc.content + `,"tool_calls":` + tc.calls + `},"finish_reason":"` + tc.finish + `"}]}`
			if r := storeVerdict(t, cfg, "chat", alice, plain, jsonCT, jsonAns); r != ReasonBadShape {
				t.Fatalf("setup: the JSON form with tool_calls %s: %q, want bad_shape", tc.calls, r)
			}
			stream := sseEvent(chatChunk(`{"role":"assistant","content":`+tc.content+`,"tool_calls":`+tc.calls+`}`, "")) +
				sseEvent(chatChunk(`{}`, tc.finish)) + sseEvent("[DONE]")
			if r := storeVerdict(t, cfg, "chat", alice, streamed, sseCT, stream); r != ReasonBadShape {
				t.Errorf("a stream whose delta.tool_calls is %s (not an array): %q, want bad_shape as its JSON form; assembled: %s",
					tc.calls, r, AssembleStream(KindChat, []byte(stream)).Assembled)
			}
		})
	}
}

// Review Z127. README (Validation rules): "A stream is judged on the message
// it assembles to (id, model, usage, ...)". AssembleStream writes a chunk's
// id and model with gjson's String(), which turns any value into a string
// (a model of 5, {"name":"m"} or ["m"] assembles to the string "5",
// `{"name":"m"}`, `["m"]`), and writes both even when no chunk carried
// them ("model":""). A rule that holds the answer's model to a string
// ({"path":"model","type":"string"}), or to being there at all
// ({"path":"model","exists":true}), refuses the JSON answer
// (refused.validation) and passes the stream that carries the same value
// (or none) in every chunk: stored and replayed to every later client (a
// Go client's `Model string` fails to decode each chunk of the first kind).
func TestReviewZ127StreamRuleJudgedOnModelAsCarried(t *testing.T) {
	plain := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	for _, tc := range []struct{ name, rule, model string }{
		{"number", `{"path":"model","type":"string","non_empty":true}`, `5`},
		{"object", `{"path":"model","type":"string","non_empty":true}`, `{"name":"m"}`},
		{"array", `{"path":"model","type":"string","non_empty":true}`, `["m"]`},
		{"absent", `{"path":"model","exists":true}`, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","validate":[` + tc.rule + `]}]}`
			member := ``
			if tc.model != "" {
				member = `"model":` + tc.model + `,`
			}
			jsonAns := `{"id":"c1","object":"chat.completion",` + member +
				`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}]}`
			if r := storeVerdict(t, cfg, "chat", alice, plain, jsonCT, jsonAns); r != ReasonValidation {
				t.Fatalf("setup: the JSON answer %s: %q, want validation", jsonAns, r)
			}
			chunk := func(delta, finish string) string {
				return `{"id":"c1","object":"chat.completion.chunk",` + member + `"choices":[{"index":0,"delta":` + delta +
					`,"finish_reason":` + finish + `}]}`
			}
			stream := sseEvent(chunk(`{"role":"assistant","content":"Hello"}`, "null")) +
				sseEvent(chunk(`{}`, `"stop"`)) + sseEvent("[DONE]")
			if r := storeVerdict(t, cfg, "chat", alice, streamChatRequest, sseCT, stream); r != ReasonValidation {
				t.Errorf("rule %s, a stream whose every chunk has %q: %q, want validation as its JSON form (assembled: %s)",
					tc.rule, member, r, AssembleStream(KindChat, []byte(stream)).Assembled)
			}
		})
	}
}

// Review Z127. The same rule on a stream whose chunks disagree: the first
// chunk names another model than the rest (a router that answered with
// its fallback model, then relabelled). AssembleStream keeps the last
// chunk's model, so {"path":"model","equals":"m"} holds, though the
// stream also says "other-model" — the one openai-python's stream
// accumulator reports as the completion's model (taken from the first
// chunk). Two models for one answer say two things, as two finish_reasons
// for one choice do (refused.bad_shape since review Z88) and as a repeated
// member does (duplicate_key): the stream should not be stored.
func TestReviewZ127StreamChunksDisagreeOnModelNotStored(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
	  "validate":[{"path":"model","equals":"m"}]}]}`
	first := `{"id":"c1","object":"chat.completion.chunk","model":"other-model","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}`
	stream := sseEvent(first) + sseEvent(chatChunk(`{"content":"lo"}`, "")) + sseEvent(chatChunk(`{}`, "stop")) + sseEvent("[DONE]")
	// Control: the same stream with "m" in every chunk is stored.
	if r := storeVerdict(t, cfg, "chat", alice, streamChatRequest, sseCT, goodStream("")); r != ReasonNone {
		t.Fatalf("setup: a stream naming m in every chunk: %q, want stored", r)
	}
	if r := storeVerdict(t, cfg, "chat", alice, streamChatRequest, sseCT, stream); r == ReasonNone {
		t.Errorf("a stream whose first chunk names model \"other-model\" and later ones \"m\" was stored under a rule model == \"m\" (assembled: %s)",
			AssembleStream(KindChat, []byte(stream)).Assembled)
	}
}

// Review Z127. README (Stats, refused.bad_shape): "not as many choices as
// the request's `n`". A legacy completions request may ask its question
// without a prompt: vLLM's prompt_embeds, which the README keys in the
// prompt's place. checkCompletion multiplies n by promptCount, which is 0
// when the request holds no prompt it can read, and the count is then not
// checked at all: an answer with one choice to a request for n=3 is stored,
// and every later client asking the same n=3 is served one choice.
func TestReviewZ127CompletionsPromptEmbedsNChoicesChecked(t *testing.T) {
	cfg := `{"routes":[{"name":"cmpl","kind":"completions","path_prefix":"/v1/completions","ttl":"1h"}]}`
	one := `{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" Paris.","finish_reason":"stop"}]}`
	// Control: the same n with a prompt is held to it.
	withPrompt := `{"model":"m","prompt":"The capital of France is","n":3,"temperature":1}`
	if r := storeVerdict(t, cfg, "cmpl", alice, withPrompt, jsonCT, one); r != ReasonBadShape {
		t.Fatalf("setup: one choice for n=3 with a prompt: %q, want bad_shape", r)
	}
	embeds := `{"model":"m","prompt_embeds":"AAAAAAAAgD8AAABAAABAQA==","n":3,"temperature":1}`
	if r := storeVerdict(t, cfg, "cmpl", alice, embeds, jsonCT, one); r != ReasonBadShape {
		t.Errorf("one choice for a prompt_embeds request with n=3: %q, want bad_shape (not as many choices as the request's n)", r)
	}
}
