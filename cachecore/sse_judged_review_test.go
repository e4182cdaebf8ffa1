package cachecore

import "testing"

// README (Validation rules): "A stream is judged on the message it
// assembles to (id, model, usage, and each choice's role, content, tool
// calls and finish reason): a rule with "exists": false on any other
// member (a message's refusal, logprobs) cannot be judged on it, and such
// a route stores no streamed answer (refused.validation), only JSON ones."
// unjudgedOnStreams looks only at a rule path's last component: a rule
// on choices.0.logprobs.content ends in "content", which it takes for the
// message's rebuilt content, though the assembly never rebuilds a
// choice's logprobs. The rule then holds on every stream: a streamed
// answer carrying logprobs is stored where its JSON twin is refused.
func TestStreamExistsFalseRuleOnUnrebuiltMemberRefused(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
	  "validate":[{"path":"choices.0.logprobs.content","exists":false}]}]}`
	lp := `"logprobs":{"content":[{"token":"hi","logprob":-0.1,"bytes":[104,105],"top_logprobs":[]}],"refusal":null}`
	// The JSON form is refused by the rule.
	jsonAns := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},` + lp + `,"finish_reason":"stop"}]}`
	plain := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	if r := storeVerdict(t, cfg, "chat", alice, plain, jsonCT, jsonAns); r != ReasonValidation {
		t.Fatalf("setup: JSON answer with logprobs: %v, want validation", r)
	}
	stream := sseEvent(`{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},`+lp+`,"finish_reason":null}]}`) +
		sseEvent(chatChunk(`{}`, "stop")) + sseEvent("[DONE]")
	if r := storeVerdict(t, cfg, "chat", alice, streamChatRequest, sseCT, stream); r == ReasonNone {
		t.Errorf("a stream carrying choices.0.logprobs.content was stored on a route whose rule says it must not exist (its JSON form is refused.validation)")
	}
}

// README (Shadow comparison): "Only an answer ... that can be read — JSON
// within max_entry_bytes, no error report, a finished stream ... — is
// compared; any other counts as shadow.errors, never as a divergence."
// A fresh stream the cache cannot read — a chunk with a duplicate member
// name (refused.duplicate_key when stored: "the cache's checks read the
// first copy, while many clients' parsers keep the last") — is compared
// anyway: AssembleStream skips the unreadable event (Unreadable) and goes
// on to [DONE], and assembledClean checks only TooDeep, ErrorEvent,
// Malformed and Done, so the message assembled without that event's text
// counts as a divergence, towards invalidating every entry of the model.
func TestShadowUnreadableFreshStreamIsAnErrorNotADivergence(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"u","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",`+
		`"shadow":{"sample":1,"min_samples":5,"max_divergence":0.5}}]}`)
	req, _ := env.lookup("chat", alice, streamChatRequest)
	env.fill(req, sseCT, goodStream(""), 10)
	for name, fresh := range map[string]string{
		"duplicate member": sseEvent(chatChunk(`{"role":"assistant","content":"Hel","content":"Hel"}`, "")) + sseEvent(chatChunk(`{"content":"lo"}`, "")) + sseEvent(chatChunk(`{}`, "stop")) + sseEvent("[DONE]"),
	} {
		if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, fresh); r == ReasonNone {
			t.Fatalf("setup: %s: the fresh stream would be stored", name)
		}
		hit, d := env.lookup("chat", alice, streamChatRequest)
		if d != Serve {
			t.Fatalf("setup: not a hit: %v", d)
		}
		if agree, ok := env.cache.compareFresh(hit, sseCT, []byte(fresh)); ok {
			t.Errorf("%s: a fresh stream the cache cannot read was compared (agree=%v): counted shadow.%s, not shadow.errors",
				name, agree, map[bool]string{true: "agree", false: "diverge"}[agree])
		}
	}
}

// README (Streaming): the copy is stored only if "the message assembled
// from the deltas passes the same checks as a non-streamed answer (...,
// the route's validation rules)". A tool-call answer has no text: its
// non-streamed form says "content": null, and every delta of its streamed
// form says so too, yet AssembleStream always writes the content as a
// string ("" here). A route that keeps only text answers with
// {"path":"choices.0.message.content","type":"string"} refuses the JSON
// tool call (refused.validation) and stores the streamed one, replayed to
// every later stream client.
func TestStreamedToolCallWithNullContentJudgedAsItsJSONForm(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","finish_reasons":["stop","tool_calls"],
	  "validate":[{"path":"choices.0.message.content","type":"string"}]}]}`
	call := `{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}`
	plain := `{"model":"m","messages":[{"role":"user","content":"weather?"}]}`
	jsonAns := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[` +
		call + `]},"finish_reason":"tool_calls"}]}`
	if r := storeVerdict(t, cfg, "chat", alice, plain, jsonCT, jsonAns); r != ReasonValidation {
		t.Fatalf("setup: the JSON tool call: %v, want validation", r)
	}
	stream := sseEvent(chatChunk(`{"role":"assistant","content":null,"tool_calls":[`+call+`]}`, "")) +
		sseEvent(chatChunk(`{}`, "tool_calls")) + sseEvent("[DONE]")
	streamed := `{"model":"m","stream":true,"messages":[{"role":"user","content":"weather?"}]}`
	if r := storeVerdict(t, cfg, "chat", alice, streamed, sseCT, stream); r == ReasonNone {
		t.Errorf("the streamed tool call (content null in every delta) was stored where its JSON form is refused.validation; assembled: %s",
			AssembleStream(KindChat, []byte(stream)).Assembled)
	}
}
