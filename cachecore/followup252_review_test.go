package cachecore

import (
	"testing"
)

// Review Z252: follow-up of b70738c (review Z250: asksJSON, laxTrue,
// soleMember).

// b70738c reads response_format and its type "in any case, as Go servers
// read them" (Ollama's OpenAI API), but compares the type's value exactly.
// Ollama's handler reads the value as
// strings.ToLower(strings.TrimSpace(r.ResponseFormat.Type)): to it
// "JSON_OBJECT", "Json_Object" and " json_object" are JSON mode as
// "json_object" is. asksJSON says no JSON was asked, so a JSON reply cut
// short under finish_reason "stop" is stored and served to every later
// caller of the key, whose client fails to decode it — the harm the
// JSON-mode check exists for (reviews Z241, Z245, Z246). Expected: refused
// bad_shape, as for "json_object".
func TestFollowup252JSONModeTypeValueInAnotherCaseNotChecked(t *testing.T) {
	if r := storeVerdict(t, testConfig, "chat", alice, `{`+z250Msgs+`,"response_format":{"type":"json_object"}}`, jsonCT, z250CutJSON); r != ReasonBadShape {
		t.Fatalf("setup: json_object: %q", r)
	}
	for _, typ := range []string{`"JSON_OBJECT"`, `"Json_Object"`, `" json_object"`, `"json_object "`} {
		env := newEnv(t, testConfig)
		req := env.request("chat", alice, `{`+z250Msgs+`,"response_format":{"type":`+typ+`}}`)
		if req.Bypassed() {
			continue // refused at the request: not stored either
		}
		if r := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(z250CutJSON), OriginUpstream, 10).Reason; r != ReasonBadShape {
			t.Errorf("response_format type %s (JSON mode to Ollama, which lower-cases and trims it): a JSON reply cut short "+
				"under finish_reason stop: reason %q, want %q (not stored)", typ, r, ReasonBadShape)
		}
	}
}

// b70738c reads the completions echo exemption with soleMember, which
// matches a member name in any case: {"Echo": true} exempts the answer
// from the JSON-mode check. The servers whose legacy completions echo
// (vLLM, SGLang: pydantic; OpenAI) read "echo" case-sensitively and ignore
// "Echo" (vLLM allows extra members, with a warning): their answer is the
// JSON alone, and one cut short under finish_reason "stop" is stored and
// served for the entry's life. The exemption is a leniency (a refusal
// costs a miss, an exemption a poisoned entry), so a spelling some server
// does not read as echo should not grant it. Expected: refused bad_shape,
// as without echo.
func TestFollowup252CompletionsEchoInAnotherCaseExemptsJSONCheck(t *testing.T) {
	cut := z246Completion(`{"colours": ["red", "gre`)
	mode := `"response_format":{"type":"json_object"}`
	if r := storeVerdict(t, testConfig, "completions", alice, `{"model":"m","prompt":"colours as JSON",`+mode+`}`, jsonCT, cut); r != ReasonBadShape {
		t.Fatalf("setup: without echo: %q", r)
	}
	for _, echo := range []string{`"Echo":true`, `"ECHO":"true"`} {
		env := newEnv(t, testConfig)
		req := env.request("completions", alice, `{"model":"m","prompt":"colours as JSON",`+echo+`,`+mode+`}`)
		if req.Bypassed() {
			continue
		}
		if r := env.cache.AdmitAndStore(req, 200, jsonCT, []byte(cut), OriginUpstream, 10).Reason; r != ReasonBadShape {
			t.Errorf("completions with %s (no echo to vLLM/OpenAI, which read \"echo\" only) and %s: a JSON text cut short "+
				"under finish_reason stop: reason %q, want %q (not stored)", echo, mode, r, ReasonBadShape)
		}
	}
}
