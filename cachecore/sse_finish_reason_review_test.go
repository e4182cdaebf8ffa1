package cachecore

import "testing"

// README (Streaming): a stream is stored only if "the message assembled
// from the deltas passes the same checks as a non-streamed answer (allowed
// finish_reason, …)"; the mission: never cache a truncated or filtered
// answer. AssembleStream keeps only the *last* finish_reason a choice's
// chunks carry, so a choice that reports "length" (cut at max_tokens) or
// "content_filter" and then, in a later chunk, "stop" is judged complete
// and stored. Clients act on the first: openai-python's stream helper
// (ChatCompletionStreamState._accumulate_chunk) raises
// LengthFinishReasonError / ContentFilterFinishReasonError at the chunk
// that says so, so every replay raises; a client that stops reading at the
// first finish_reason shows the truncated text. (The non-streamed form
// cannot say two things: a repeated finish_reason member is refused as
// duplicate_key, README "Hostile bytes", for the same reason.)
func TestStreamReportingADisallowedFinishBeforeStopIsNotStored(t *testing.T) {
	c := func(delta, fr string) string { return sseEvent(chatChunk(delta, fr)) }
	for _, first := range []string{"length", "content_filter"} {
		t.Run(first, func(t *testing.T) {
			env := newEnv(t, testConfig) // route "chat": finish_reasons ["stop"]
			stream := c(`{"role":"assistant","content":"The answer is"}`, "") +
				c(`{}`, first) + // the model says it was cut here
				c(`{"content":" forty-two"}`, "") +
				c(`{}`, "stop") +
				sseEvent("[DONE]")
			req := env.request("chat", alice, streamReq("finish "+first))
			st := env.cache.AdmitAndStore(req, 200, sseCT, []byte(stream), OriginUpstream, 10)
			if st.Reason == ReasonNone {
				t.Fatalf("a stream whose choice 0 reported finish_reason %q (not in the route's [\"stop\"]) before a later \"stop\" was stored", first)
			}
		})
	}
}
