package cachecore

import "testing"

// Review Z136 (slo_age): the shadow comparison's comparators.

// README (shadow): "`text` (case- and whitespace-insensitive, default for
// chat and completions on `choices.#.message.content`/`tool_calls` or
// `choices.#.text`)". The default paths go through every choice, so gjson
// hands normalizeText an array, which it canonicalizes to JSON text before
// folding whitespace: a line break inside the content is the
// escape `\n` there, and a space next to the closing quote is glued
// to it, so neither is folded. The same answer with a trailing newline, or
// with a line break where the cached one has a space, counts as a
// divergence on the default chat comparator (it agrees on a single-choice
// path such as choices.0.message.content). Expected: agree.
func TestShadowTextDefaultChatPathIgnoresWhitespace(t *testing.T) {
	const chat = `{"model":"m","messages":[{"role":"user","content":"capital of France?"}]}`
	cached := "Paris is the capital of France. It lies on the Seine."
	for _, fresh := range []string{
		"Paris is the capital of France.\nIt lies on the Seine.",
		"Paris is the capital of France. It lies on the Seine.\n",
		" Paris is the capital of France. It lies on the Seine. ",
	} {
		env := newEnv(t, `{"upstream_cluster":"u","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat","shared":true,"shadow":{"sample":1}}]}`)
		env.fill(env.request("chat", nil, chat), jsonCT, chatResponse(cached), 10)
		req, d := env.lookup("chat", nil, chat)
		if d != Serve {
			t.Fatal("setup: not a hit")
		}
		agree, ok := env.cache.compareFresh(req, jsonCT, []byte(chatResponse(fresh)))
		if !agree || !ok {
			t.Errorf("compare text (default paths): %q against the cached %q, which differ only in whitespace: agree=%v comparable=%v, want agree",
				fresh, cached, agree, ok)
		}
	}
}

// toolCallAnswer is a chat answer calling get_weather for Paris, whose
// tool call carries the per-call id the model generates (OpenAI:
// "call_…", different on every completion).
func toolCallAnswer(id string) string {
	return `{"id":"chatcmpl-` + id + `","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,` +
		`"tool_calls":[{"id":"call_` + id + `","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},` +
		`"finish_reason":"tool_calls"}]}`
}

// The chat kind's default shadow paths include choices.#.message.tool_calls,
// compared "text" as canonical JSON of the whole tool-call objects — their
// "id" included, which the model makes anew on every completion (as the
// chat answer's own id, which README says the default paths leave out for
// that reason). The very same call (same function, same arguments) counts
// as a divergence on every sample, and min_samples of them invalidate the
// model for everyone: another client's cached answer is gone. Expected:
// the same tool call agrees, and nothing is invalidated.
func TestShadowSameToolCallWithNewCallIdDoesNotInvalidate(t *testing.T) {
	const ask = `{"model":"m","messages":[{"role":"user","content":"weather in Paris?"}]}`
	const other = `{"model":"m","messages":[{"role":"user","content":"someone else's question"}]}`
	env := newEnv(t, `{"upstream_cluster":"u","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat","shared":true,`+
		`"finish_reasons":["stop","tool_calls"],"shadow":{"sample":1,"max_concurrent":4,"min_samples":3,"max_divergence":0.5}}]}`)
	env.fill(env.request("chat", nil, ask), jsonCT, toolCallAnswer("aaa111"), 10)
	env.fill(env.request("chat", nil, other), jsonCT, chatResponse("cached for someone else"), 10)
	for s, id := range []string{"bbb222", "ccc333", "ddd444"} {
		req, d := env.lookup("chat", nil, ask)
		if d != Serve {
			t.Fatalf("sample %d: not a hit", s)
		}
		acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/chat"))
		if len(acts) == 0 || acts[0].Call == nil {
			t.Fatalf("sample %d: no shadow call: %+v", s, acts)
		}
		for _, a := range acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(toolCallAnswer(id))}) {
			if a.Kind == ActCount && a.Event == EvShadowDiverge {
				t.Errorf("sample %d: the same tool call (get_weather, {\"city\":\"Paris\"}) with the model's new call id %q counts as a divergence", s, "call_"+id)
			}
			if a.Kind == ActCount && a.Event == EvInvalidation {
				t.Errorf("sample %d: the same tool call invalidated the model", s)
			}
		}
	}
	if _, d := env.lookup("chat", nil, other); d != Serve {
		t.Fatal("identical tool calls invalidated the model: another client's entry is gone")
	}
}

// An embeddings item whose vector is all zeros (admitted: every element is
// a finite number) compared with the very same fresh vector: cosine()
// returns 0 for a zero vector, under min_cosine, so identical answers
// count as a divergence, and min_samples of them invalidate the model,
// dropping every other item's vector. Expected: identical vectors agree.
func TestShadowIdenticalZeroVectorsAgree(t *testing.T) {
	env, batch := shadowEmbeddingsEnv(t, "", []string{"[0,0,0,0]", "[0.1,0.2,0.3,0.4]"})
	fresh := []byte(`{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":[0,0,0,0]},` +
		`{"object":"embedding","index":1,"embedding":[0.1,0.2,0.3,0.4]}]}`)
	other := `{"model":"e","input":"someone else's"}`
	req, _ := env.lookup("embed", nil, other)
	env.fill(req, jsonCT, `{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":[1,2,3,4]}]}`, 10)
	for s := 0; s < 3; s++ {
		req, d := env.lookup("embed", nil, batch)
		if d != Serve {
			t.Fatal("setup: batch of cached items not a hit")
		}
		acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/embeddings"))
		if len(acts) == 0 || acts[0].Call == nil {
			t.Fatalf("sample %d: no shadow call: %+v", s, acts)
		}
		for _, a := range acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: fresh}) {
			if a.Kind == ActCount && a.Event == EvShadowDiverge {
				t.Errorf("sample %d: the very same vectors (one all zeros) count as divergence", s)
			}
		}
	}
	if _, d := env.lookup("embed", nil, other); d != Serve {
		t.Fatal("identical answers invalidated the model: another client's vector is gone")
	}
}
