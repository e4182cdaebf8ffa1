package cachecore

import (
	"strings"
	"testing"
)

// Never a wrong answer: a key_fields allowlist may leave out what the
// question is not, but a field that sets the answer's form stays in the
// key whatever the allowlist says (formKeyed). A rerank route keyed on
// model, query and documents (what README requires) served an answer
// stored for top_n 1 to a request for top_n 3: one result where three
// were asked for, which admission refuses for that request
// (rerank_results).
func TestRerankTopNStaysKeyedUnderKeyFields(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"rerank","kind":"rerank","path_prefix":"/v1/rerank","ttl":"1h",
	  "key_fields":["model","query","documents"]}]}`)
	one := rerankRequestBody("what is a cache", "1", "a", "b", "c")
	req, d := env.lookup("rerank", alice, one)
	if req.Bypassed() || d != Forward {
		t.Fatalf("setup: %v %s", d, req.Reason)
	}
	env.fill(req, jsonCT, `{"results":[{"index":1,"relevance_score":0.9}]}`, 5)
	if _, d := env.lookup("rerank", alice, one); d != Serve {
		t.Fatalf("setup: the same request is not served: %v", d)
	}
	three := rerankRequestBody("what is a cache", "3", "a", "b", "c")
	if got, d := env.lookup("rerank", alice, three); d == Serve {
		t.Fatalf("a request for top_n 3 of 3 documents is served the answer stored for top_n 1: %s", strings.TrimSpace(string(got.Entry.Body)))
	}
}

// The same for a chat route keyed on model and messages: n sets how many
// choices the answer holds, logprobs whether they carry log
// probabilities. A client asking for two choices was served one.
func TestChatChoiceCountStaysKeyedUnderKeyFields(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "key_fields":["model","messages"]}]}`)
	base := chatRequest("name two colours")
	req, d := env.lookup("chat", alice, base)
	if req.Bypassed() || d != Forward {
		t.Fatalf("setup: %v %s", d, req.Reason)
	}
	env.fill(req, jsonCT, chatResponse("red"), 5)
	for _, extra := range []string{`"n":2`, `"logprobs":true`, `"top_logprobs":2`} {
		body := strings.Replace(base, `"temperature":0`, `"temperature":0,`+extra, 1)
		if got, d := env.lookup("chat", alice, body); d == Serve {
			t.Errorf("a request with %s is served the answer stored without it: %s", extra, got.Entry.Body)
		}
	}
	// What the allowlist leaves out still shares the entry.
	if _, d := env.lookup("chat", alice, strings.Replace(base, `"temperature":0`, `"temperature":0.5`, 1)); d != Serve {
		t.Fatalf("temperature, outside key_fields, is keyed: %v", d)
	}
}
