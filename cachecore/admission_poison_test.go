package cachecore

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// storeThenServe offers ans for storage on route and, if stored, looks the
// same request up again: it returns the refusal (ReasonNone: stored) and
// the body a later client is served (nil: not served).
func storeThenServe(t *testing.T, cfg, route string, h [][2]string, reqBody string, ct [][2]string, ans string) (Reason, []byte) {
	t.Helper()
	env := newEnv(t, cfg)
	req := env.request(route, h, reqBody)
	if req.Bypassed() {
		t.Fatalf("bypassed: %s", req.Reason)
	}
	st := env.cache.AdmitAndStore(req, 200, ct, []byte(ans), OriginUpstream, 10)
	if st.Reason != ReasonNone {
		return st.Reason, nil
	}
	victim, d := env.lookup(route, h, reqBody)
	if d != Serve {
		return ReasonNone, nil
	}
	_, _, body := env.cache.HitResponse(victim)
	return ReasonNone, body
}

// An answer that is not UTF-8 is not JSON a client can read (RFC 8259
// §8.1; Python's json.loads / httpx Response.json() and the OpenAI SDK's
// SSE decoder raise UnicodeDecodeError on it): stored, every replay would
// fail.
func TestAnAnswerThatIsNotUTF8IsNotStored(t *testing.T) {
	cases := []struct {
		name, req, ans string
		ct             [][2]string
	}{
		{"json", chatRequest("hi"), `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hel` + "\xff\xfe" + `lo"},"finish_reason":"stop"}]}`, jsonCT},
		{"stream", streamChatRequest, sseEvent(chatChunk(`{"role":"assistant","content":"Hel`+"\xc3\x28"+`"}`, "")) + sseEvent(chatChunk(`{"content":"lo"}`, "stop")) + sseEvent("[DONE]"), sseCT},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, served := storeThenServe(t, testConfig, "chat", alice, tc.req, tc.ct, tc.ans)
			if r == ReasonNone {
				t.Fatalf("answer with invalid UTF-8 stored (served on hit: %v, valid UTF-8: %v)", served != nil, utf8.Valid(served))
			}
		})
	}
}

// WHATWG HTML §9.2.6: a leading U+FEFF BOM is stripped before the stream is
// parsed (TextDecoder, as used by openai-node and EventSource, strips it).
// The cache's scanner must too: else it reads the first line as an
// unknown field "\ufeffdata", misses an error event there, and stores and
// replays the stream with it.
func TestAByteOrderMarkDoesNotHideAStreamsErrorEvent(t *testing.T) {
	in := "\ufeff" + sseEvent(`{"error":{"message":"upstream overloaded","type":"server_error"}}`) + goodStream("")
	r, served := storeThenServe(t, testConfig, "chat", alice, streamChatRequest, sseCT, in)
	if r == ReasonNone {
		t.Fatalf("stream whose first event is an error report stored (served on hit: %v): %q", served != nil, firstLine(served))
	}
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i]
	}
	return b
}

// Validation rules are judged on the message AssembleStream rebuilds,
// which drops every member it does not know (refusal, logprobs, created,
// service_tier, ...). A rule "exists: false" on such a member would always
// hold on a stream, and the answer the rule forbids, refused as JSON,
// would be stored as a stream: such a rule refuses streams.
func TestAnExistsFalseRuleTheAssemblyCannotJudgeRefusesAStream(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1","validate":[{"path":"choices.0.message.refusal","exists":false}]}]}`
	non := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello","refusal":"I can't help with that"},"finish_reason":"stop"}]}`
	if r := storeVerdict(t, cfg, "chat", alice, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, jsonCT, non); r != ReasonValidation {
		t.Fatalf("JSON form: %q, want validation", r)
	}
	stream := sseEvent(chatChunk(`{"role":"assistant","content":"Hello"}`, "")) +
		sseEvent(chatChunk(`{"refusal":"I can't help with that"}`, "")) +
		sseEvent(chatChunk(`{}`, "stop")) + sseEvent("[DONE]")
	if r := storeVerdict(t, cfg, "chat", alice, streamChatRequest, sseCT, stream); r == ReasonNone {
		t.Fatalf("stream form of the same answer stored: the rule choices.0.message.refusal exists:false was judged on an assembly without refusal")
	}
}

// A chunk's choice index is an integer. AssembleStream reads it with
// gjson's Int(), so index 0.5 (or -0.5) is folded into choice 0: the
// cache would assemble "Hello"/stop, while a client that groups deltas by
// the index it reads (openai-node: snapshot.choices[index]) has choice 0
// end without a finish_reason ("Hel", cut) and a stray choice 0.5.
func TestAStreamWithANonIntegerChoiceIndexIsNotStored(t *testing.T) {
	in := sseEvent(`{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}`) +
		sseEvent(`{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0.5,"delta":{"content":"lo"},"finish_reason":"stop"}]}`) +
		sseEvent("[DONE]")
	if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, in); r == ReasonNone {
		t.Fatalf("stream whose choice 0 never finishes (its finish came under index 0.5) stored; assembled as %s", AssembleStream(KindChat, []byte(in)).Assembled)
	}
}
