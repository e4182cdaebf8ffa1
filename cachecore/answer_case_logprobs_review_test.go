package cachecore

import (
	"encoding/json"
	"testing"
)

// Review Z99 (of 4f127a6). The legacy completions API's logprobs
// (OpenAI's, vLLM's, llama.cpp's /v1/completions with "logprobs": N)
// answer top_logprobs as a list of objects whose member names are tokens:
// the N likeliest tokens at each position and their logprobs. " Yes" and
// " yes", "The" and "the" are different tokens and routinely both among
// the likeliest. No client reads such an object into a struct (OpenAI's
// SDKs and go-openai decode it as a map, which keeps every name exactly),
// so these members are not "read as one"; yet duplicateMembers now calls
// them duplicate_key, and every completions answer with logprobs whose
// top tokens differ only by case is refused — a large share of the
// logprobs answers the README keys for ("logprobs" stays keyed as sent).
func TestReviewZ99CompletionsTopLogprobsCaseTwinTokensRefused(t *testing.T) {
	cfg := `{"routes":[{"name":"cmpl","kind":"completions","path_prefix":"/v1/completions","ttl":"1h"}]}`
	reqBody := `{"model":"m","prompt":"Is the sky blue? Answer:","max_tokens":2,"logprobs":2}`
	answer := `{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" Yes.",` +
		`"logprobs":{"text_offset":[0,4],"token_logprobs":[-0.2,-0.1],"tokens":[" Yes","."],` +
		`"top_logprobs":[{" Yes":-0.2," yes":-1.9},{".":-0.1,"!":-2.5}]},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}`

	// How a Go client reads it (go-openai: TopLogprobs []map[string]float32):
	// both tokens, exactly as named — nothing is read as one member.
	var g struct {
		Choices []struct {
			Logprobs struct {
				TopLogprobs []map[string]float64 `json:"top_logprobs"`
			} `json:"logprobs"`
		} `json:"choices"`
	}
	if err := json.Unmarshal([]byte(answer), &g); err != nil || len(g.Choices) != 1 || len(g.Choices[0].Logprobs.TopLogprobs[0]) != 2 {
		t.Fatalf("setup: Go reads %+v (%v)", g, err)
	}
	if r := storeVerdict(t, cfg, "cmpl", alice, reqBody, jsonCT, answer); r != ReasonNone {
		t.Errorf("a completions answer with logprobs whose top tokens \" Yes\" and \" yes\" differ by case: refused %q, want stored (token maps are read as maps, exactly)", r)
	}

	// Control: the same answer with top tokens that differ otherwise is stored.
	other := `{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" Yes.",` +
		`"logprobs":{"text_offset":[0,4],"token_logprobs":[-0.2,-0.1],"tokens":[" Yes","."],` +
		`"top_logprobs":[{" Yes":-0.2," No":-1.9},{".":-0.1,"!":-2.5}]},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}`
	if r := storeVerdict(t, cfg, "cmpl", alice, reqBody, jsonCT, other); r != ReasonNone {
		t.Fatalf("setup: the control answer is refused too: %q", r)
	}
}

// The same for a streamed completions answer: each chunk carries the
// position's top_logprobs, and one chunk whose top tokens differ only by
// case refuses the whole stream.
func TestReviewZ99CompletionsStreamTopLogprobsCaseTwinTokensRefused(t *testing.T) {
	cfg := `{"routes":[{"name":"cmpl","kind":"completions","path_prefix":"/v1/completions","ttl":"1h"}]}`
	reqBody := `{"model":"m","prompt":"Is the sky blue? Answer:","max_tokens":2,"logprobs":2,"stream":true}`
	chunk := func(text, top, finish string) string {
		return `data: {"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":"` + text +
			`","logprobs":{"text_offset":[0],"token_logprobs":[-0.2],"tokens":["` + text + `"],"top_logprobs":[` + top + `]},"finish_reason":` + finish + `}]}` + "\n\n"
	}
	stream := func(top string) string {
		return chunk(" Yes", top, "null") + chunk(".", `{".":-0.1,"!":-2.5}`, `"stop"`) + "data: [DONE]\n\n"
	}
	if r := storeVerdict(t, cfg, "cmpl", alice, reqBody, sseCT, stream(`{" No":-0.2," Yes":-1.9}`)); r != ReasonNone {
		t.Fatalf("setup: the control stream is refused: %q", r)
	}
	if r := storeVerdict(t, cfg, "cmpl", alice, reqBody, sseCT, stream(`{" Yes":-0.2," yes":-1.9}`)); r != ReasonNone {
		t.Errorf("a completions stream whose top tokens \" Yes\" and \" yes\" differ by case: refused %q, want stored", r)
	}
}
