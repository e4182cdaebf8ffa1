package cachecore

import "testing"

// README (shadow): "exact JSON equality ... each on paths".
// A configured path that neither answer holds (an optional member: the
// tool calls of a text answer, a warnings list) is equal in both, as the
// text, label and numeric comparators find it. The exact comparator
// canonicalizes the missing values' empty text, fails, and counts the
// identical answers as divergent: every sample of such answers diverges
// and the model is invalidated for everyone.
func TestShadowExactAbsentPathInBothAgrees(t *testing.T) {
	const chat = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	answer := `{"id":"1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Paris"},"finish_reason":"stop"}]}`
	for _, cmp := range []string{"text", "label", "numeric", "exact"} {
		env := newEnv(t, `{"upstream_cluster":"u","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat","shared":true,`+
			`"shadow":{"sample":1,"compare":"`+cmp+`","paths":["choices.0.message.content","choices.0.message.tool_calls"]}}]}`)
		env.fill(env.request("chat", nil, chat), jsonCT, answer, 10)
		req, d := env.lookup("chat", nil, chat)
		if d != Serve {
			t.Fatalf("%s: setup: not a hit", cmp)
		}
		agree, ok := env.cache.compareFresh(req, jsonCT, []byte(answer))
		if !agree || !ok {
			t.Errorf("compare %q: the very same answer (no tool_calls in either) compared agree=%v comparable=%v", cmp, agree, ok)
		}
	}
}

// The consequence: identical fresh answers, sampled min_samples times,
// invalidate the model; another client's entry is gone.
func TestShadowExactIdenticalAnswersDoNotInvalidate(t *testing.T) {
	const chat = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	const other = `{"model":"m","messages":[{"role":"user","content":"someone else"}]}`
	answer := `{"id":"1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Paris"},"finish_reason":"stop"}]}`
	env := newEnv(t, `{"upstream_cluster":"u","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat","shared":true,`+
		`"shadow":{"sample":1,"max_concurrent":4,"min_samples":3,"max_divergence":0.5,"compare":"exact","paths":["choices.0.message.content","choices.0.message.tool_calls"]}}]}`)
	env.fill(env.request("chat", nil, chat), jsonCT, answer, 10)
	env.fill(env.request("chat", nil, other), jsonCT, answer, 10)
	for s := 0; s < 3; s++ {
		req, d := env.lookup("chat", nil, chat)
		if d != Serve {
			t.Fatalf("sample %d: not a hit", s)
		}
		acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/chat"))
		if len(acts) == 0 || acts[0].Call == nil {
			t.Fatalf("sample %d: no shadow call: %+v", s, acts)
		}
		for _, a := range acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(answer)}) {
			if a.Kind == ActCount && a.Event == EvInvalidation {
				t.Errorf("sample %d: the very same answer invalidated the model", s)
			}
		}
	}
	if _, d := env.lookup("chat", nil, other); d != Serve {
		t.Fatal("identical answers invalidated the model: another client's entry is gone")
	}
}
