package cachecore

import "testing"

// Review S2 (stop 71): streams stored that README's checks refuse.

// README (Streaming): a stream is stored only if "every chunk valid JSON
// and a chunk object (`choices` an array of objects, text deltas strings;
// otherwise `refused.bad_shape`)"; RATIONALE: "a `data: null`, a
// `choices: null` ... assembles to nothing, so the message looked whole
// while every replay handed the SDKs a chunk they cannot read". A data
// event that is an object with no `choices` at all is just as unreadable
// (openai-node's ChatCompletionStream iterates `chunk.choices`, the SDKs'
// README loops read `chunk.choices[0]`: both throw on undefined as on
// null), yet AssembleStream only refuses a `choices` that exists and is
// not an array, so such a stream is stored and replayed to every client.
func TestStreamChunkWithoutChoicesIsNotStored(t *testing.T) {
	for _, bad := range []string{
		`{}`,
		`{"id":"c1","object":"chat.completion.chunk","model":"m"}`,
	} {
		// The control: choices null, the documented refusal.
		if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT,
			goodStream(sseEvent(`{"id":"c1","object":"chat.completion.chunk","model":"m","choices":null}`))); r != ReasonBadShape {
			t.Fatalf("control: a chunk with choices:null gives %q, want bad_shape", r)
		}
		if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, goodStream(sseEvent(bad))); r == ReasonNone {
			t.Errorf("stream with the chunk `data: %s` (no choices member) stored; want refused.bad_shape as for choices:null", bad)
		}
	}
}

// README (Streaming): "the message assembled from the deltas passes the
// same checks as a non-streamed answer (allowed `finish_reason`, ...)";
// sse.go: assembly keeps "the last finish_reason". A choice whose last
// finish_reason is not a string (here ["length"], after an earlier
// "stop") is refused in JSON form (finish_reason), but AssembleStream
// skips any non-string finish_reason and keeps the earlier "stop", so the
// stream is stored, while a client accumulating the chunks (openai-node:
// `if (finish_reason) choice.finish_reason = finish_reason`) ends with
// the later value.
func TestStreamLastFinishReasonNotAStringIsNotStored(t *testing.T) {
	json := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":["length"]}]}`
	if r := storeVerdict(t, testConfig, "chat", alice, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, jsonCT, json); r == ReasonNone {
		t.Fatalf("control: the JSON form with finish_reason [\"length\"] is stored")
	}
	stream := sseEvent(chatChunk(`{"role":"assistant","content":"Hel"}`, "stop")) +
		sseEvent(`{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":["length"]}]}`) +
		sseEvent("[DONE]")
	if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, stream); r == ReasonNone {
		t.Errorf("stream whose last finish_reason is [\"length\"] stored (assembled as %s); its JSON form is refused", AssembleStream(KindChat, []byte(stream)).Assembled)
	}
}
