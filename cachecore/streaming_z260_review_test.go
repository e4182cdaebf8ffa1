package cachecore

import "testing"

// Review Z260. README (Streaming): a stream is never stored if it "reports
// an error anywhere, even after a complete message or after [DONE]". The
// scanner reads only `event: error` and a data event's error object as
// such a report. llama.cpp's server (tools/server/server.cpp, the
// chunked content provider of handle_completions_impl) reports a
// streaming error in a line of its own field name, server_sent_event(sink,
// "error", error_data): "error: {json}\n\n", and then, on its
// OpenAI-compatible endpoints, still writes "data: [DONE]\n\n". A field
// the scanner does not know is ignored (WHATWG), so the error report is
// invisible to the admission and the stream is stored and replayed as a
// complete answer, while the server said it failed.
func TestStreamWithLlamaCppErrorFieldIsNotStored(t *testing.T) {
	c := func(delta, fr string) string { return sseEvent(chatChunk(delta, fr)) }
	llamaErr := "error: {\"code\":500,\"message\":\"Failed to parse input at pos 12\",\"type\":\"server_error\"}\n\n"
	for name, stream := range map[string]string{
		"after the finishing chunk": c(`{"role":"assistant","content":"Hel"}`, "") + c(`{"content":"lo"}`, "") + c(`{}`, "stop") +
			llamaErr + sseEvent("[DONE]"),
		"mid-stream": c(`{"role":"assistant","content":"Hel"}`, "") + llamaErr + c(`{"content":"lo"}`, "") + c(`{}`, "stop") +
			sseEvent("[DONE]"),
	} {
		t.Run(name, func(t *testing.T) {
			if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, stream); r == ReasonNone {
				t.Errorf("a stream carrying llama.cpp's error report (%q) was stored; want it refused (error_payload)", llamaErr)
			}
		})
	}
	// Control: the same stream without the error line is stored.
	if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, goodStream("")); r != ReasonNone {
		t.Fatalf("control: the stream without the error line: %q, want stored", r)
	}
}
