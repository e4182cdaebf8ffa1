package cachecore

import "testing"

// Review Z246: poisoning on the non-chat kinds (completions, rerank,
// classify, json) and the JSON-mode check of the chat kind.

// z246Completion is a legacy completions answer of one choice per text,
// each finished with "stop".
func z246Completion(texts ...string) string {
	b := `{"id":"cmpl-1","object":"text_completion","model":"m","choices":[`
	for i, t := range texts {
		if i > 0 {
			b += ","
		}
		b += `{"index":` + string(rune('0'+i)) + `,"text":` + quote(t) + `,"logprobs":null,"finish_reason":"stop"}`
	}
	return b + `]}`
}

// A legacy completions request whose response_format asks for JSON (vLLM
// and SGLang take response_format on /v1/completions; kinds.go keys it
// there since review Z243) is refused no text that is not JSON: asksJSON
// is consulted only for chat (jsonAsked := !text && ...). A JSON object
// cut short under finish_reason "stop" is stored and served to every later
// json_object caller, whose json.loads fails for the entry's life — the
// reason the chat check exists (cc03597, RATIONALE "a message is JSON when
// the request's response_format asked for JSON"). Expected: refused
// bad_shape, as on a chat route; a whole JSON text is stored.
func TestZ246CompletionsJSONResponseFormatStoresTextCutShort(t *testing.T) {
	req := `{"model":"m","prompt":"List three colours as a JSON object:","response_format":{"type":"json_object"}}`
	if r := storeVerdict(t, testConfig, "completions", alice, req, jsonCT, z246Completion(`{"colours": ["red", "gre`)); r != ReasonBadShape {
		t.Errorf("completions, response_format json_object, text cut short under stop: reason %q, want %q (not stored)", r, ReasonBadShape)
	}
	if r := storeVerdict(t, testConfig, "completions", alice, req, jsonCT, z246Completion(`{"colours": ["red", "green", "blue"]}`)); r != ReasonNone {
		t.Errorf("completions, response_format json_object, whole JSON: reason %q, want stored", r)
	}
}

// The chat kind keys the servers' own ways of asking for JSON beside
// response_format (vLLM's guided_json and structured_outputs, llama.cpp's
// json_schema: review Z243), but the JSON check (asksJSON) reads only
// response_format's json_object and json_schema. TGI's response_format
// {"type": "json", "value": schema} is its JSON mode too. A reply cut short
// under "stop" to any of these is stored and fails every later caller that
// decodes it. Expected: refused bad_shape as for response_format
// json_object.
func TestZ246ChatServerJSONModesStoreContentCutShort(t *testing.T) {
	answer := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"{\"colours\": [\"red\", \"gre"},"finish_reason":"stop"}]}`
	ask := func(extra string) string {
		return `{"model":"m","messages":[{"role":"user","content":"list three colours as JSON"}],` + extra + `}`
	}
	for name, extra := range map[string]string{
		"vLLM guided_json":           `"guided_json":{"type":"object","properties":{"colours":{"type":"array"}}}`,
		"vLLM structured_outputs":    `"structured_outputs":{"json":{"type":"object"}}`,
		"llama.cpp json_schema":      `"json_schema":{"type":"object"}`,
		"TGI response_format json":   `"response_format":{"type":"json","value":{"type":"object"}}`,
		"json_object (control case)": `"response_format":{"type":"json_object"}`,
	} {
		if r := storeVerdict(t, testConfig, "chat", alice, ask(extra), jsonCT, answer); r != ReasonBadShape {
			t.Errorf("%s: a JSON reply cut short under stop: reason %q, want %q (not stored)", name, r, ReasonBadShape)
		}
	}
}

// A legacy completions request's n as a string ("n": "3") is read as 3 by
// pydantic's lax mode (vLLM, SGLang, FastChat), which answers with three
// choices; checkCompletion reads n only when it is a JSON number, so it
// checks no count at all and an answer of one choice is stored under the
// n "3" key and served to every client that asked for three. Rerank
// bypasses top_n "3" for this reason (README: "3.0" and "3" included: no
// answer to it could be checked). Expected: the answer refused bad_shape
// (not as many choices as n), or the request bypassed.
func TestZ246CompletionsStringNSkipsTheChoiceCount(t *testing.T) {
	chatOne := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"red"},"finish_reason":"stop"}]}`
	for _, tc := range []struct{ route, req, answer string }{
		{"completions", `{"model":"m","prompt":"Name a colour:","n":"3"}`, z246Completion(" red")},
		{"chat", `{"model":"m","messages":[{"role":"user","content":"Name a colour"}],"n":"3"}`, chatOne}, // the same code path
	} {
		env := newEnv(t, testConfig)
		req := env.request(tc.route, alice, tc.req)
		if req.Bypassed() {
			continue // not cached: fixed
		}
		if r := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(tc.answer), OriginUpstream, 10).Reason; r == ReasonNone {
			t.Errorf(`%s: n "3" (three choices to a lax server) answered with one choice: stored, want refused %q or the request bypassed`, tc.route, ReasonBadShape)
		}
	}
}

// Go's encoding/json reads "N" and "Prompt" as n and prompt (LocalAI and
// other Go servers; the rerank checks fold names for this reason, review
// Z97, soleMember). checkCompletion and promptCount read "n" and "prompt"
// exactly, so a request of "Prompt" with three prompts, or of "N": 3,
// checks no choice count: an answer of one choice is stored under the
// key and served to every later client that asked the same. Expected:
// refused bad_shape (one choice where three were asked), or the request
// bypassed.
func TestZ246CompletionsCaseFoldedNOrPromptSkipsTheChoiceCount(t *testing.T) {
	for name, body := range map[string]string{
		`"N": 3`:                      `{"model":"m","prompt":"Name a colour:","N":3}`,
		`"Prompt" with three prompts`: `{"model":"m","Prompt":["Name a colour:","Name a fruit:","Name a city:"]}`,
	} {
		env := newEnv(t, testConfig)
		req := env.request("completions", alice, body)
		if req.Bypassed() {
			continue // not cached: fixed
		}
		if r := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(z246Completion(" red")), OriginUpstream, 10).Reason; r == ReasonNone {
			t.Errorf("%s answered with one choice: stored, want refused %q or the request bypassed", name, ReasonBadShape)
		}
	}
}
