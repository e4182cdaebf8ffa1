package cachecore

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// Review Z232 (follow-up of Z231): Z231 made the chat kind key, under any
// key_fields, "the servers' thinking toggles" (reasoning,
// chat_template_kwargs, separate_reasoning, enable_thinking, thinking),
// since a request that turns thinking off was served an answer stored with
// a reasoning member. It left out reasoning_effort, the toggle the same
// servers read from OpenAI's own field: Ollama's OpenAI-compatible chat
// reads "reasoning": {"effort": …} (now keyed) or, without it,
// "reasoning_effort" (not keyed), and "none" turns thinking off (the
// message then has no "reasoning" member); Groq ("none" on Qwen3), Gemini's
// OpenAI endpoint and GPT-5.1 read "none" the same way, and LiteLLM maps
// reasoning_effort to Anthropic's thinking (reasoning_content in the
// message). On a chat route keyed on model and messages, a request with
// "reasoning_effort": "none" is served the answer stored for one without
// it, reasoning member and all, exactly as the Z231 fields were.
//
// Expected: reasoning_effort stays keyed as sent whatever key_fields says
// (formKeyed), as "reasoning" is, so the request misses.
func TestZ232ReasoningEffortStaysKeyedUnderKeyFields(t *testing.T) {
	for _, tc := range []struct {
		name, member, field string
	}{
		{"ollama_reasoning_effort_none", "reasoning", `"reasoning_effort":"none"`},
		{"groq_reasoning_effort_none", "reasoning_content", `"reasoning_effort":"none"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
			  "key_fields":["model","messages"]}]}`)
			base := chatRequest("what is 2+2?")
			req, d := env.lookup("chat", alice, base)
			if req.Bypassed() || d != Forward {
				t.Fatalf("setup: %v %s", d, req.Reason)
			}
			env.fill(req, jsonCT, z231ReasoningAnswer(tc.member), 5)
			if _, d := env.lookup("chat", alice, base); d != Serve {
				t.Fatalf("setup: the same request is not served: %v", d)
			}
			// The same toggle through "reasoning" misses (Z231's fix).
			viaReasoning := strings.Replace(base, `"temperature":0`, `"temperature":0,"reasoning":{"effort":"none"}`, 1)
			if _, d := env.lookup("chat", alice, viaReasoning); d == Serve {
				t.Fatalf("setup: reasoning {effort: none} is served too")
			}
			off := strings.Replace(base, `"temperature":0`, `"temperature":0,`+tc.field, 1)
			if got, d := env.lookup("chat", alice, off); d == Serve {
				t.Fatalf("a request with %s (thinking off) is served the answer stored without it, %s member and all "+
					"(\"reasoning\": {\"effort\": \"none\"}, the same toggle, misses): %s", tc.field, tc.member, got.Entry.Body)
			}
		})
	}
}

// The same request under ignore_fields: an operator who lists
// reasoning_effort among fields that "cannot change the answer" has it
// taken out of the key, while "reasoning" (Ollama's other spelling of the
// same toggle) is kept whatever ignore_fields says. Expected: kept, as
// the other thinking toggles are.
func TestZ232ReasoningEffortStaysKeyedUnderIgnoreFields(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "ignore_fields":["user","reasoning_effort","reasoning"]}]}`)
	base := chatRequest("what is 2+2?")
	req, d := env.lookup("chat", alice, base)
	if req.Bypassed() || d != Forward {
		t.Fatalf("setup: %v %s", d, req.Reason)
	}
	env.fill(req, jsonCT, z231ReasoningAnswer("reasoning"), 5)
	viaReasoning := strings.Replace(base, `"temperature":0`, `"temperature":0,"reasoning":{"effort":"none"}`, 1)
	if _, d := env.lookup("chat", alice, viaReasoning); d == Serve {
		t.Fatalf("setup: reasoning {effort: none} is served though form-keyed")
	}
	off := strings.Replace(base, `"temperature":0`, `"temperature":0,"reasoning_effort":"none"`, 1)
	if got, d := env.lookup("chat", alice, off); d == Serve {
		t.Fatalf("a request with reasoning_effort none is served the answer with a reasoning member: %s", got.Entry.Body)
	}
}

// Z231 changed what a key_fields chat route's key means (a request with
// tools or a thinking toggle was keyed without them, and now is keyed
// with them) but not the key format's version (keyFormat) nor the
// route's keying tag. RATIONALE ("the key format's version ... is now
// 2") holds that a change of what a key means must move the version, so
// that "a proxy running the module before them and one running this one
// never read each other's entries, neither in shared data kept across a
// module upgrade nor in an L2 that a mesh shares mid-rollout, where the
// old module had filed" one request's answer under another's key. Here
// the module before Z231 filed a tool call (the answer to a request with
// tools) under the key of the same request without them; after the
// upgrade that very key is what a request without tools computes, so the
// tool call it was meant to stop serving is still served from shared
// data, and from an L2 the old proxies keep filling, until its ttl.
//
// The module before Z231 is simulated by the kinds table without the
// Z231 fields and its format byte, '2'. Expected: the key a request
// without tools gets now differs from the key the old module filed the
// tools request's answer under (a new keyFormat, or the kind's
// form-keyed list in the route's keying tag).
func TestZ232OldModulesToolCallEntryIsReadAfterTheUpgrade(t *testing.T) {
	const cfg = `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "key_fields":["model","messages"],"finish_reasons":["stop","tool_calls"]}]}`
	withTools := strings.Replace(chatRequest("weather in Paris?"), `"temperature":0`, `"temperature":0,`+z199Tools, 1)
	plain := chatRequest("weather in Paris?")

	spec, _ := lookupKind(KindChat)
	saved := spec.formKeyed
	z231 := []string{"tools", "functions", "reasoning", "chat_template_kwargs", "separate_reasoning", "enable_thinking", "thinking"}
	spec.formKeyed = slices.DeleteFunc(slices.Clone(saved), func(f string) bool { return slices.Contains(z231, f) })
	old := newEnv(t, cfg)
	oldReq := old.request("chat", alice, withTools)
	spec.formKeyed = saved
	if oldReq.Bypassed() {
		t.Fatalf("setup: %s", oldReq.Reason)
	}
	oldKey := slices.Clone(oldReq.Key[:oldReq.stableLen])
	oldKey[1] = '2' // the module before Z231 wrote keyFormat '2'

	now := newEnv(t, cfg)
	req := now.request("chat", alice, plain)
	if req.Bypassed() {
		t.Fatalf("setup: %s", req.Reason)
	}
	// The new module keys the tools request apart (Z231's fix).
	if r := now.request("chat", alice, withTools); bytes.Equal(r.Key[:r.stableLen], req.Key[:req.stableLen]) {
		t.Fatalf("setup: the tools request and the plain one share a key")
	}
	if bytes.Equal(req.Key[:req.stableLen], oldKey) {
		t.Fatalf("after the upgrade, a request without tools computes the very key (%q) the module before Z231 filed "+
			"a tools request's answer (a tool call) under: kept in shared data or an L2, it is served the tool call; "+
			"the key format's version (keyFormat %q) and the keying tag did not move", oldKey[:2], string(rune(keyFormat)))
	}
}
