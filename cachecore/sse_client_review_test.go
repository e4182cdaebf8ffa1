package cachecore

import "testing"

// Review Z47: streams stored that a mainstream client reads as an error.
//
// The project's rule (sse_test.go, TestStreamEventWithoutDataRefusesTheStream,
// commit be61ac8): "a stream some mainstream client reads as an error is not
// stored" — openai-python's SSEDecoder dispatches an event block that has no
// data line, with empty data, and the SDK's Stream then fails on
// json.loads(""). sseScanner marks a block as begun (pending) for "data",
// "event" and "id" only. openai-python's decoder dispatches on a blank line
// whenever any of event, data, last_event_id or retry is set:
//
//   - a block with only a valid "retry:" field ("retry: 3000", as servers that
//     set a reconnection time send) is dispatched with empty data;
//   - last_event_id is never reset (as the SSE spec says), so once any event
//     carried an "id:", every later blank line dispatches an event with
//     empty data — e.g. after a comment-only keep-alive block (": ping\n\n",
//     which sse-starlette and many gateways send while the model thinks).
//
// Both reach the SDK as an event with data "" (JSONDecodeError for every
// replay), and the cache stores both.
func TestStreamRetryOnlyBlockIsRefused(t *testing.T) {
	// Control: the same stream with an "id: 3" block is refused today.
	if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, goodStream("id: 3\n\n")); r == ReasonNone {
		t.Fatalf("control: a data-less id block stored")
	}
	stream := sseEvent(chatChunk(`{"role":"assistant","content":""}`, "")) + "retry: 3000\n\n" +
		sseEvent(chatChunk(`{"content":"Hello"}`, "")) + sseEvent(chatChunk(`{}`, "stop")) + sseEvent("[DONE]")
	if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, stream); r == ReasonNone {
		t.Errorf("a stream with a data-less \"retry: 3000\" block was stored: openai-python dispatches it with empty data and fails on every replay")
	}
}

func TestStreamWithIDsAndAKeepAliveCommentIsRefused(t *testing.T) {
	// Each event carries an id (as some OpenAI-compatible gateways send);
	// a comment-only keep-alive block comes while the model thinks.
	withID := func(id, data string) string { return "id: " + id + "\n" + sseEvent(data) }
	stream := withID("1", chatChunk(`{"role":"assistant","content":""}`, "")) +
		": ping\n\n" +
		withID("2", chatChunk(`{"content":"Hello"}`, "")) +
		withID("3", chatChunk(`{}`, "stop")) + sseEvent("[DONE]")
	// Control: without the keep-alive the stream is (rightly) stored.
	control := withID("1", chatChunk(`{"role":"assistant","content":""}`, "")) +
		withID("2", chatChunk(`{"content":"Hello"}`, "")) +
		withID("3", chatChunk(`{}`, "stop")) + sseEvent("[DONE]")
	if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, control); r != ReasonNone {
		t.Fatalf("control: an id'd stream refused: %v", r)
	}
	if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, stream); r == ReasonNone {
		t.Errorf("a stream whose events carry ids, with a \": ping\" keep-alive block, was stored: openai-python keeps last_event_id, dispatches the keep-alive's blank line as an event with empty data and fails on every replay")
	}
}
