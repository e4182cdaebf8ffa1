package cachecore

import (
	"strings"
	"testing"
)

// Review Z122: what the key leaves out of chat, completions and embeddings
// requests.
//
// RATIONALE ("Embeddings: an entry per item"): "What a key_fields allowlist
// may leave out is what changes the content of an answer, never its shape"
// — the fields that set an answer's form are kept in the key as sent
// whatever key_fields says (formKeyed). The chat list holds stream,
// stream_options, n, logprobs, top_logprobs, prompt_logprobs,
// return_token_ids, echo, add_generation_prompt and continue_final_message;
// these tests name request members of the servers the README targets that
// change the answer's shape just as those do, and are left out.

// z122ChatForm stores a plain answer to a chat request on a route keyed on
// model and messages (README's allowlist), then looks up the same request
// with extra members added, each of which changes the shape of the answer
// a real server gives; none must be served the stored one.
func TestReviewZ122ChatFormFieldsStayKeyedUnderKeyFields(t *testing.T) {
	cases := []struct {
		name, base, extra string
	}{
		// OpenAI Chat Completions API reference, "modalities": "Output
		// types that you would like the model to generate ... ["text",
		// "audio"]" and "audio: Parameters for audio output. Required
		// when audio output is requested with modalities: ["audio"]".
		// The answer's message then carries an "audio" object (id, data,
		// expires_at, transcript); the client reads
		// choices[0].message.audio.data, which the stored text answer
		// does not have.
		{"openai modalities audio", `"temperature":0`, `"modalities":["text","audio"],"audio":{"voice":"alloy","format":"wav"}`},
		// vLLM ChatCompletionRequest, return_tokens_as_token_ids: "If
		// specified with 'logprobs', tokens are represented as strings
		// of the form 'token_id:{token_id}' so that tokens that are not
		// JSON-encodable can be identified." logprobs is kept (formKeyed);
		// its tokens' form is not.
		{"vllm return_tokens_as_token_ids", `"temperature":0,"logprobs":true,"top_logprobs":1`, `"return_tokens_as_token_ids":true`},
		// llama.cpp server README, post_sampling_probs: "Returns the
		// probabilities of top n_probs tokens after applying sampling
		// chain": each token then has "prob" and "top_probs" in place of
		// "logprob" and "top_logprobs" (probs_to_json), the OpenAI
		// endpoint's logprobs included.
		{"llama.cpp post_sampling_probs", `"temperature":0,"logprobs":true,"top_logprobs":1`, `"post_sampling_probs":true`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
			  "key_fields":["model","messages"]}]}`)
			base := strings.Replace(chatRequest("say hi"), `"temperature":0`, tc.base, 1)
			req, d := env.lookup("chat", alice, base)
			if req.Bypassed() || d != Forward {
				t.Fatalf("setup: %v %s", d, req.Reason)
			}
			env.fill(req, jsonCT, chatResponse("hi"), 5)
			if _, d := env.lookup("chat", alice, base); d != Serve {
				t.Fatalf("setup: the same request is not served: %v", d)
			}
			body := strings.Replace(base, tc.base, tc.base+","+tc.extra, 1)
			if got, d := env.lookup("chat", alice, body); d == Serve {
				t.Errorf("a request with %s is served the answer stored without it (its shape differs): %s", tc.extra, got.Entry.Body)
			}
		})
	}
}

// The same for legacy completions, where logprobs and echo are formKeyed
// but the form of the log probabilities they return is not always:
//   - vLLM's CompletionRequest has return_tokens_as_token_ids too, with the
//     same effect on logprobs.tokens and top_logprobs' keys;
//   - llama.cpp's server reads n_probs before the OpenAI "logprobs"
//     (server-task.cpp: "Use OpenAI API logprobs only if n_probs wasn't
//     provided"), so {"logprobs":1,"n_probs":3} answers three top tokens
//     per position where {"logprobs":1} answers one.
func TestReviewZ122CompletionsLogprobsFormStaysKeyedUnderKeyFields(t *testing.T) {
	for _, extra := range []string{`"return_tokens_as_token_ids":true`, `"n_probs":3`} {
		t.Run(strings.Split(extra, `"`)[1], func(t *testing.T) {
			env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"cmpl","kind":"completions","path_prefix":"/v1/completions","ttl":"1h",
			  "key_fields":["model","prompt"]}]}`)
			base := `{"model":"m","prompt":"Once upon a","max_tokens":3,"logprobs":1}`
			req, d := env.lookup("cmpl", alice, base)
			if req.Bypassed() || d != Forward {
				t.Fatalf("setup: %v %s", d, req.Reason)
			}
			ans := `{"id":"cmpl-1","object":"text_completion","model":"m","choices":[{"index":0,"text":" time there",` +
				`"logprobs":{"tokens":[" time"," there"],"token_logprobs":[-0.1,-0.2],"top_logprobs":[{" time":-0.1},{" there":-0.2}],"text_offset":[0,5]},"finish_reason":"stop"}]}`
			env.fill(req, jsonCT, ans, 5)
			if _, d := env.lookup("cmpl", alice, base); d != Serve {
				t.Fatalf("setup: the same request is not served: %v", d)
			}
			body := strings.Replace(base, `"logprobs":1`, `"logprobs":1,`+extra, 1)
			if got, d := env.lookup("cmpl", alice, body); d == Serve {
				t.Errorf("a request with %s is served the log probabilities stored without it: %s", extra, got.Entry.Body)
			}
		})
	}
}

// The question of a completions request is "prompt" (kinds.go, question),
// and key_fields must keep it "or the route is refused" (README,
// key_fields): "without it every request to a model shares one key". vLLM's
// completions API takes the question as prompt_embeds too (CompletionRequest:
// "prompt_embeds: bytes | list[bytes] | None"; docs "Prompt Embedding
// Inputs": a request carries "prompt_embeds", a base64 torch tensor, in
// place of "prompt"). A route keyed on model and prompt, which the config
// accepts as keeping the question, keys every prompt_embeds question to a
// model alike: the first one's answer is served to all the others.
func TestReviewZ122CompletionsPromptEmbedsQuestionLeavesTheKey(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"cmpl","kind":"completions","path_prefix":"/v1/completions","ttl":"1h",
	  "key_fields":["model","prompt","max_tokens","temperature"]}]}`)
	one := `{"model":"m","prompt_embeds":"UEsDBAAACAgAAAAAAAAAAAAAAAAAAAAAAAAQABIAYXJjaGl2ZS9kYXRhLnBrbA==","max_tokens":8,"temperature":0}`
	two := `{"model":"m","prompt_embeds":"UEsDBAAACAgAAAAAAAAAAAAAAAAAAAAAAAAQABIAYXJjaGl2ZS92ZXJzaW9uRkI=","max_tokens":8,"temperature":0}`
	req, d := env.lookup("cmpl", alice, one)
	if req.Bypassed() || d != Forward {
		t.Fatalf("setup: %v %s", d, req.Reason)
	}
	env.fill(req, jsonCT, `{"id":"cmpl-1","object":"text_completion","model":"m","choices":[{"index":0,"text":"Paris is the capital.","finish_reason":"stop"}]}`, 5)
	if got, d := env.lookup("cmpl", alice, two); d == Serve {
		t.Errorf("a request with other prompt_embeds (another question) is served the first one's answer: %s", got.Entry.Body)
	}
}

// encoding_format and dimensions stay in an embeddings item's key even when
// ignore_fields names them (README, "Embeddings: one entry per item": "they
// change the vector's form"; RATIONALE: a route that ignored either served a
// float vector to a base64 request, stop 69). vLLM's EmbeddingRequest has
// two more members that set the form of a base64 vector: embed_dtype ("What
// dtype to use for encoding. Default to using float32 for base64 encoding
// to match the OpenAI python client behavior"; float16, bfloat16, fp8...)
// and endianness ("native", "big", "little"). A route that ignores them is
// served, for a float16 or big-endian request, the float32 little-endian
// bytes stored for another: decoded as the client asked, a vector of twice
// the length or of garbage values.
func TestReviewZ122EmbeddingsBase64ElementFormStaysKeyed(t *testing.T) {
	for _, f := range []struct{ name, first, second string }{
		{"embed_dtype", `"embed_dtype":"float32"`, `"embed_dtype":"float16"`},
		{"endianness", `"endianness":"little"`, `"endianness":"big"`},
	} {
		t.Run(f.name, func(t *testing.T) {
			env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h",
			  "ignore_fields":["user",`+quote(f.name)+`]}]}`)
			body := func(p string) string {
				return `{"model":"e","input":["a"],"encoding_format":"base64",` + p + `}`
			}
			req, d := env.lookup("emb", alice, body(f.first))
			if req.Bypassed() || d != Forward {
				t.Fatalf("setup: %v %s", d, req.Reason)
			}
			env.fill(req, jsonCT, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":"AACAPwAAAEA="}],"model":"e","usage":{"prompt_tokens":1,"total_tokens":1}}`, 5)
			if _, d := env.lookup("emb", alice, body(f.first)); d != Serve {
				t.Fatalf("setup: the same request is not served: %v", d)
			}
			if got, d := env.lookup("emb", alice, body(f.second)); d == Serve {
				_, _, body := env.cache.HitResponse(got)
				t.Errorf("a request with %s is served the base64 vector stored for %s: %s", f.second, f.first, body)
			}
		})
	}
}
