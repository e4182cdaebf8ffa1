package cachecore

import (
	"encoding/json"
	"testing"
)

// Review Z102 (of 5e138b2). The case-twin exemption is meant for the
// legacy completions' top_logprobs token maps (README: "not in the token
// maps of completions' top_logprobs"). duplicateMembers exempts every
// object opened under a member named "top_logprobs", on every route kind:
// chat's top_logprobs are lists of {token, logprob, bytes} structs, which
// Go clients (go-openai's TopLogProbs) decode into fields, case-
// insensitively, the last copy winning. A chat route that scores a
// yes/no classification by the top token's logprob (confidence.path
// through top_logprobs) reads "logprob" -0.01 and stores the answer under
// its high tier, while a Go client reads "LogProb" -4.6.
func TestReviewZ102ChatTopLogprobsCaseTwinsEscapeTheDuplicateCheck(t *testing.T) {
	answer := `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,` +
		`"message":{"role":"assistant","content":"Yes"},` +
		`"logprobs":{"content":[{"token":"Yes","logprob":-0.01,"bytes":[89,101,115],` +
		`"top_logprobs":[{"token":"Yes","logprob":-0.01,"bytes":[89,101,115],"LogProb":-4.6,"Token":"No"}]}]},` +
		`"finish_reason":"stop"}]}`
	var g struct {
		Choices []struct {
			Logprobs struct {
				Content []struct {
					TopLogprobs []struct {
						Token   string  `json:"token"`
						LogProb float64 `json:"logprob"`
					} `json:"top_logprobs"`
				} `json:"content"`
			} `json:"logprobs"`
		} `json:"choices"`
	}
	if err := json.Unmarshal([]byte(answer), &g); err != nil {
		t.Fatal(err)
	}
	top := g.Choices[0].Logprobs.Content[0].TopLogprobs[0]
	if top.Token != "No" || top.LogProb != -4.6 {
		t.Fatalf("setup: Go reads %+v", top)
	}
	req := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Is the sky blue? yes/no"}],"temperature":0,"logprobs":true,"top_logprobs":1}`

	t.Run("plain chat route", func(t *testing.T) {
		cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1","ttl":"1h"}]}`
		if r := storeVerdict(t, cfg, "chat", alice, req, jsonCT, chatResponse("x")); r != ReasonNone {
			t.Fatalf("setup: control refused %q", r)
		}
		moved := `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,` +
			`"message":{"role":"assistant","content":"Yes"},` +
			`"logprobs":{"content":[{"token":"Yes","logprob":-0.01,"bytes":[89,101,115],"LogProb":-4.6,` +
			`"top_logprobs":[{"token":"Yes","logprob":-0.01,"bytes":[89,101,115]}]}]},` +
			`"finish_reason":"stop"}]}`
		if r := storeVerdict(t, cfg, "chat", alice, req, jsonCT, moved); r != ReasonDuplicateKey {
			t.Fatalf("setup: the twin one level up (content[0]) is not refused: %q", r)
		}
		if r := storeVerdict(t, cfg, "chat", alice, req, jsonCT, answer); r != ReasonDuplicateKey {
			t.Errorf("chat answer whose top_logprobs entry holds token/Token and logprob/LogProb: verdict %q, want duplicate_key (README: case twins are duplicates but in completions' token maps; a Go client reads token %q, logprob %v)", r, top.Token, top.LogProb)
		}
	})
	t.Run("confidence read through top_logprobs", func(t *testing.T) {
		cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1","ttl":"1h",` +
			`"confidence":{"path":"choices.0.logprobs.content.0.top_logprobs.0.logprob","tiers":[{"min":-0.1,"ttl":"1h"},{"min":-1,"ttl":"1m"}]}}]}`
		if r := storeVerdict(t, cfg, "chat", alice, req, jsonCT, answer); r != ReasonDuplicateKey {
			t.Errorf("verdict %q: the confidence tier read logprob -0.01 while a Go client reads LogProb %v (below every tier): want duplicate_key", r, top.LogProb)
		}
	})
}

// The exemption is by member name on every kind: a classify route whose
// confidence path goes through a member named top_logprobs is scored by
// "score" while Go reads "Score".
func TestReviewZ102ClassifyConfidenceUnderTopLogprobsCaseTwin(t *testing.T) {
	cfg := `{"routes":[{"name":"c","kind":"classify","path_prefix":"/c","ttl":"1h",` +
		`"validate":[{"path":"label","type":"string","non_empty":true}],` +
		`"confidence":{"path":"top_logprobs.score","tiers":[{"min":0.9,"ttl":"1h"}]}}]}`
	reqBody := `{"model":"m","input":"great film"}`
	ok := `{"label":"positive","top_logprobs":{"score":0.95}}`
	if r := storeVerdict(t, cfg, "c", alice, reqBody, jsonCT, ok); r != ReasonNone {
		t.Fatalf("setup: control refused %q", r)
	}
	twin := `{"label":"positive","top_logprobs":{"score":0.95,"Score":0.12}}`
	if r := storeVerdict(t, cfg, "c", alice, reqBody, jsonCT, twin); r != ReasonDuplicateKey {
		t.Errorf("verdict %q: score 0.95 passed the 0.9 tier while Go reads Score 0.12: want duplicate_key", r)
	}
	// Control: the same twin under another name is refused.
	other := `{"label":"positive","probs":{"score":0.95,"Score":0.12}}`
	cfg2 := `{"routes":[{"name":"c","kind":"classify","path_prefix":"/c","ttl":"1h",` +
		`"validate":[{"path":"label","type":"string","non_empty":true}],` +
		`"confidence":{"path":"probs.score","tiers":[{"min":0.9,"ttl":"1h"}]}}]}`
	if r := storeVerdict(t, cfg2, "c", alice, reqBody, jsonCT, other); r != ReasonDuplicateKey {
		t.Fatalf("setup: the twin under another name: %q", r)
	}
}
