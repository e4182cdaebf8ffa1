package cachecore

import (
	"fmt"
	"strings"
	"testing"
)

// README (semantic): the compared turn is not taken when the "answer
// repeats its own prompt" (a completion's echo) or "lists its own
// prompt's tokens": those are "matched exactly only". vLLM's chat
// endpoint has echo too: with "add_generation_prompt": false the answer's
// role is the last message's (user), and echo prepends that message's
// content to the answer (serving_chat: get_chat_request_role, echo). A
// paraphrase with the same flags (same context) was served an answer that
// starts with another prompt's words. describesOwnPrompt takes "echo" on
// completions only.
func TestSemanticChatEchoMatchesOnlyExactly(t *testing.T) {
	const cfg = `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
	  "ttl":"1h","semantic":{"embedding":{"cluster":"embeddings","model":"e5"}}}]}`
	e := newSemEnv(t, "")
	e.testEnv = newEnv(t, cfg)
	body := func(p string) string {
		return `{"model":"Qwen/Qwen2.5-7B-Instruct","messages":[{"role":"user","content":` + quote(p) +
			`}],"echo":true,"add_generation_prompt":false,"continue_final_message":true,"temperature":0}`
	}
	stored, para := "How do I reset my password?", "How can I reset my password?"
	f, _ := e.semAskBody("chat", "/v1/chat/completions", alice, body(stored), stored)
	f.ResponseHeaders(200, jsonCT, OriginUpstream, false)
	f.Complete(jsonCT, []byte(`{"id":"chatcmpl-1","object":"chat.completion","model":"Qwen/Qwen2.5-7B-Instruct","choices":[{"index":0,`+
		`"message":{"role":"user","content":`+quote(stored+" Click 'forgot password'.")+`},"finish_reason":"stop"}]}`), 5, alice)
	if _, got := e.semAskBody("chat", "/v1/chat/completions", alice, body(stored), stored); !strings.HasSuffix(got, "serve") {
		t.Fatalf("setup: the exact request again (confirms it): %q", got)
	}
	f, got := e.semAskBody("chat", "/v1/chat/completions", alice, body(para), para)
	if strings.HasSuffix(got, "serve") {
		_, _, b := e.cache.HitResponse(f.Request())
		t.Fatalf("a paraphrase with chat echo (add_generation_prompt false) was served as a near hit (%q) an answer echoing another prompt: %s", got, b)
	}
}

// README (semantic): a turn is "embedded and compared — within its
// partition: the exact key with that turn cut out", and
// semantic.veto.<guard> counts "a near match a guard refused". A slot
// holds other contexts' turns too, and semSearch runs the guards on every
// shortlisted record before it puts the record's turn back into the
// request's key: a turn another context (here another system prompt;
// another tenant alike) stored, which could never answer this request,
// is counted as a veto of this request's near match. The veto counters
// (what operators read to see how often the guards caught a false
// positive) count other contexts' unrelated turns.
func TestSemanticVetoCountsOnlyTheRequestsOwnContext(t *testing.T) {
	e := newSemEnv(t, `,"max_entries":8,"confirm":{"exact_hits":0}`)
	const stored, asked = "Convert 10 km to miles", "Convert 100 km to miles"
	body := func(ctx int, turn string) string {
		return `{"model":"gpt-4o-mini","messages":[{"role":"system","content":` + quote(fmt.Sprintf("You are assistant number %d.", ctx)) +
			`},{"role":"user","content":` + quote(turn) + `}],"temperature":0}`
	}
	ask := func(ctx int, turn string) (*Flight, string) {
		return e.semAskBody("chat", "/v1/chat/completions", alice, body(ctx, turn), turn)
	}
	var pair []int
	for _, g := range semContextsBySlot(t, ask, 200, stored) {
		if len(g) >= 2 {
			pair = g[:2]
			break
		}
	}
	if pair == nil {
		t.Fatal("setup: no slot of two contexts")
	}
	a, b := pair[0], pair[1]
	f, _ := ask(a, stored)
	if got := e.answer(f, "6.2 miles"); !strings.Contains(got, "semantic.indexed") {
		t.Fatalf("setup: context %d's store: %q", a, got)
	}
	// The same check within one context is a veto (the guard's job).
	if _, got := ask(a, asked); !strings.Contains(got, "semantic.veto.numbers") {
		t.Fatalf("setup: context %d's own stored turn is not vetoed: %q", a, got)
	}
	// Context b stored nothing: its partition holds no turn to refuse.
	_, got := ask(b, asked)
	if strings.Contains(got, "semantic.veto") {
		t.Fatalf("context %d, whose partition is empty, counted a veto of context %d's turn (same slot): %q", b, a, got)
	}
}

// vLLM's chat echo and the generation prompt's flags change what a chat
// answer holds (the last message echoed, a continued message): keyed
// whatever key_fields says, as completions' echo is (found beside review
// Z48).
func TestChatEchoFlagsStayKeyedUnderKeyFields(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[
	  {"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","key_fields":["model","messages"]}]}`)
	base := `{"model":"m","messages":[{"role":"user","content":"hi"}]`
	plain := string(env.request("chat", alice, base+`}`).Key)
	for _, field := range []string{`"echo":true`, `"add_generation_prompt":false`, `"continue_final_message":true`} {
		if got := string(env.request("chat", alice, base+`,`+field+`}`).Key); got == plain {
			t.Errorf("a chat request with %s has the key of one without it", field)
		}
	}
}
