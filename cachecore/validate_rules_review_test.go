package cachecore

import "testing"

// Review Z171: the validation rules engine against hostile or odd answers,
// and the rules' configuration. Each test fails on the code it was written
// against.

const z171Plain = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`

func z171ChatCfg(rule string) string {
	return `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","finish_reasons":["stop","tool_calls"],"validate":[` + rule + `]}]}`
}

// README ("Hostile bytes", RATIONALE "Every parse of untrusted bytes is
// bounded first"): a model's answer is read with work linear in its size.
// A rule whose path holds a gjson query with a `%` pattern of two
// sandwiched wildcards — a refusal detector such as
// choices.#(message.content%"*sorry*cannot*")#, max_items 0 — is accepted,
// and gjson's matcher (tidwall/match, capped only at 10,000 steps per byte)
// is quadratic in the string it reads: a model that loops on one word
// ("sorry sorry sorry …", a common degenerate output, or one a user asks
// for) makes a 72 KB answer cost ~15 s of the worker's CPU natively, far
// more in Envoy's V8, per answer. Expected: judging such a rule on a
// repetitive answer costs about what the same rule with an == query costs
// (or the pattern is a config error).
func TestValidateRulesQueryPatternWorkIsBoundedOnARepetitiveAnswer(t *testing.T) {
	// (Rewritten from a timing comparison: the mend refuses such patterns
	// at start, which a test can show without timing.) gjson matches a %
	// pattern with a star inside its text by backtracking, quadratic in the
	// answer: a 36 KB answer repeating "sorry " took 1.6 s to judge.
	if _, err := ParseConfig([]byte(z171ChatCfg(`{"path":"choices.#(message.content%\"*sorry*cannot*\")#","max_items":0}`))); err == nil {
		t.Fatal(`a % pattern with a star inside its text (*sorry*cannot*), quadratic in the answer, loads`)
	}
	for _, ok := range []string{`*sorry*`, `sorry*`, `*sor?y`} {
		if _, err := ParseConfig([]byte(z171ChatCfg(`{"path":"choices.#(message.content%\"` + ok + `\")#","max_items":0}`))); err != nil {
			t.Errorf("the linear pattern %s is refused: %v", ok, err)
		}
	}
}

// README (Validation rules): "A stream is judged on the message it
// assembles to (id, model, usage, and each choice's role, content, tool
// calls and finish reason)". Review Z127 made id and model assemble as the
// chunks carry them; system_fingerprint (which rebuiltOnStreams counts as
// rebuilt, and a route's model_version.body_path often names) is still
// written with gjson's String(): a chunk's "system_fingerprint": 42 or
// {"v":1} assembles to the string "42" / `{"v":1}`. A rule
// {"path":"system_fingerprint","type":"string"} refuses the JSON answer
// (refused.validation) and stores the stream carrying the same value in
// every chunk, replayed to every later client. Expected: validation, as
// the JSON form.
func TestValidateRulesStreamSystemFingerprintJudgedAsCarried(t *testing.T) {
	cfg := z171ChatCfg(`{"path":"system_fingerprint","type":"string"}`)
	for _, fp := range []string{`42`, `{"v":1}`, `["fp_a"]`} {
		t.Run(fp, func(t *testing.T) {
			jsonAns := `{"id":"c1","object":"chat.completion","model":"m","system_fingerprint":` + fp +
				`,"choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}]}`
			if r := storeVerdict(t, cfg, "chat", alice, z171Plain, jsonCT, jsonAns); r != ReasonValidation {
				t.Fatalf("setup: the JSON answer %s: %q, want validation", jsonAns, r)
			}
			chunk := func(delta, finish string) string {
				return `{"id":"c1","object":"chat.completion.chunk","model":"m","system_fingerprint":` + fp +
					`,"choices":[{"index":0,"delta":` + delta + `,"finish_reason":` + finish + `}]}`
			}
			stream := sseEvent(chunk(`{"role":"assistant","content":"Hello"}`, "null")) +
				sseEvent(chunk(`{}`, `"stop"`)) + sseEvent("[DONE]")
			if r := storeVerdict(t, cfg, "chat", alice, streamChatRequest, sseCT, stream); r != ReasonValidation {
				t.Errorf("a stream whose every chunk has \"system_fingerprint\":%s: %q, want validation as its JSON form (assembled: %s)",
					fp, verdict(r), AssembleStream(KindChat, []byte(stream)).Assembled)
			}
		})
	}
}

// The same for a tool call's id: AssembleStream writes `"id":` + the
// String() of what the deltas carried, and "" when no delta carried one.
// A rule on choices.0.message.tool_calls.#.id ("type": "string", or
// "exists": true — a call without an id cannot be answered, its
// tool_call_id is required) refuses the JSON answer and stores the stream
// with the same tool call (id 7, or none). Expected: validation, as the
// JSON form.
func TestValidateRulesStreamToolCallIDJudgedAsCarried(t *testing.T) {
	for _, tc := range []struct{ name, rule, id string }{
		{"number", `{"path":"choices.0.message.tool_calls.#.id","type":"string"}`, `"id":7,`},
		{"absent", `{"path":"choices.0.message.tool_calls.#.id","exists":true}`, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := z171ChatCfg(tc.rule)
			jsonAns := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{` +
				tc.id + `"type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`
			if r := storeVerdict(t, cfg, "chat", alice, z171Plain, jsonCT, jsonAns); r != ReasonValidation {
				t.Fatalf("setup: the JSON answer %s: %q, want validation", jsonAns, r)
			}
			stream := sseEvent(chatChunk(`{"role":"assistant","content":null,"tool_calls":[{"index":0,`+tc.id+`"type":"function","function":{"name":"f","arguments":"{}"}}]}`, "")) +
				sseEvent(chatChunk(`{}`, "tool_calls")) + sseEvent("[DONE]")
			if r := storeVerdict(t, cfg, "chat", alice, streamChatRequest, sseCT, stream); r != ReasonValidation {
				t.Errorf("rule %s, a stream whose tool call has %q: %q, want validation as its JSON form (assembled: %s)",
					tc.rule, tc.id, verdict(r), AssembleStream(KindChat, []byte(stream)).Assembled)
			}
		})
	}
}

// The same for a message's role: a delta's "role": 5 assembles to the
// string "5", so {"path":"choices.0.message.role","type":"string"} refuses
// the JSON answer and stores the stream. Expected: validation.
func TestValidateRulesStreamRoleJudgedAsCarried(t *testing.T) {
	cfg := z171ChatCfg(`{"path":"choices.0.message.role","type":"string"}`)
	jsonAns := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":5,"content":"Hello"},"finish_reason":"stop"}]}`
	if r := storeVerdict(t, cfg, "chat", alice, z171Plain, jsonCT, jsonAns); r != ReasonValidation {
		t.Fatalf("setup: the JSON answer %s: %q, want validation", jsonAns, r)
	}
	stream := sseEvent(chatChunk(`{"role":5,"content":"Hello"}`, "")) + sseEvent(chatChunk(`{}`, "stop")) + sseEvent("[DONE]")
	if r := storeVerdict(t, cfg, "chat", alice, streamChatRequest, sseCT, stream); r != ReasonValidation {
		t.Errorf("a stream whose delta has \"role\":5: %q, want validation as its JSON form (assembled: %s)",
			verdict(r), AssembleStream(KindChat, []byte(stream)).Assembled)
	}
}

// README: every gjson path of the configuration has "no @ modifier or |
// pipe" — paths that read something other than the answer's members. A
// path starting with '!' is gjson's other such form, a static literal
// (execStatic): "!true", "!0.99", `!"x"`, `!{"label":"ok"}.label` read the
// constant, never the answer. Such a rule holds on every answer or on none
// ({"path":"!true","exists":true} stores {"x":1} on a classifier route),
// and a confidence path "!0.99" gives every answer, whatever it says, the
// top tier. Both load. Expected: a config error naming the path.
func TestValidateRulesLiteralPathIsAConfigError(t *testing.T) {
	for _, tc := range []struct{ name, cfg string }{
		{"rule", `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[
			{"path":"!true","exists":true}]}]}`},
		{"rule object literal", `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[
			{"path":"!{\"label\":\"ok\"}.label","type":"string","non_empty":true}]}]}`},
		{"confidence", `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,
			"confidence":{"path":"!0.99","tiers":[{"min":0.9,"ttl":"1h"}]}}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseConfig([]byte(tc.cfg)); err == nil {
				r := storeVerdict(t, tc.cfg, "cls", nil, `{"model":"m","input":"x"}`, jsonCT, `{"x":1}`)
				t.Fatalf("a path reading a gjson literal (not the answer) loads; the answer {\"x\":1}: %s", verdict(r))
			}
		})
	}
}

// README (Validation rules): "These rules, which no answer can pass, are
// config errors naming them: … a type other than number on a path ending
// in # (a length) … an equals (or every one_of value) that fails the
// rule's other predicates". A length is a number: {"path":"choices.#",
// "equals":"1"} (a quoted number, a common slip) can hold on no answer,
// yet loads, and the route silently stores nothing (refused.validation).
// Expected: a config error, as "type": "string" on the same path is.
func TestValidateRulesLengthPathEqualsAStringIsAConfigError(t *testing.T) {
	cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[
		{"path":"labels.#","equals":"1"}]}]}`
	if _, err := ParseConfig([]byte(cfg)); err == nil {
		r := storeVerdict(t, cfg, "cls", nil, `{"model":"m","input":"x"}`, jsonCT, `{"labels":["cat"]}`)
		t.Fatalf("equals \"1\" (a string) on the length labels.# loads; {\"labels\":[\"cat\"]}: %s", verdict(r))
	}
}
