package cachecore

import "testing"

// Review Z50: 354df29 reads a stream as openai-python's SSEDecoder does.
// openai-python (openai/_streaming.py, SSEDecoder.decode) dispatches on a
// blank line only when `self._event or self._data or self._last_event_id
// or self._retry is not None`; "id:" sets _last_event_id to the value as is
// (an empty value makes it falsy again), and "retry:" sets _retry only when
// int(value) succeeds.

func sseEventWithID(id, data string) string { return "id: " + id + "\n" + sseEvent(data) }

// An "id:" with an empty value resets openai-python's last_event_id to ""
// (falsy): later blank lines no longer dispatch. The scanner's hadID is
// sticky, so a keep-alive after the reset refuses a stream every client reads.
func TestStreamEmptyIDResetsBlankLineDispatch(t *testing.T) {
	stream := sseEventWithID("1", chatChunk(`{"role":"assistant","content":""}`, "")) +
		"id:\n" + sseEvent(chatChunk(`{"content":"Hello"}`, "")) +
		": ping\n\n" +
		sseEvent(chatChunk(`{}`, "stop")) + sseEvent("[DONE]")
	if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, stream); r != ReasonNone {
		t.Errorf("stream refused (%v): after \"id:\" (empty) openai-python's last_event_id is \"\" and the \": ping\" blank line dispatches nothing", r)
	}
}

// A "retry:" whose value is not an integer is ignored by openai-python
// (int() fails, _retry stays None), by WHATWG and by openai-node: a block
// holding only it dispatches nothing.
func TestStreamNonIntegerRetryBlockIsStored(t *testing.T) {
	for _, blk := range []string{"retry:\n\n", "retry: soon\n\n"} {
		stream := goodStream(blk)
		if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, stream); r != ReasonNone {
			t.Errorf("%q: stream refused (%v): no client dispatches a block whose only field is a retry that is not an integer", blk, r)
		}
	}
}

// An "id:" with an empty value alone (no id seen before): openai-python's
// last_event_id is "" (falsy), nothing else is set: no dispatch. So also an
// empty "event:" alone (ServerSentEvent's event is `event or None`, and the
// decoder tests `not self._event`).
func TestStreamEmptyIDOrEventOnlyBlockIsStored(t *testing.T) {
	for _, blk := range []string{"id:\n\n", "id\n\n", "event:\n\n"} {
		stream := goodStream(blk)
		if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, stream); r != ReasonNone {
			t.Errorf("%q: stream refused (%v): openai-python, openai-node and WHATWG dispatch nothing for it", blk, r)
		}
	}
}

// openai-python decodes each line with bytes.decode("utf-8"), which keeps a
// leading BOM as U+FEFF: the first line's field is "\ufeffdata", ignored.
// When that first block carries an id, the blank line dispatches it with
// empty data and the SDK's json.loads("") fails on every replay. The
// scanner strips the BOM (as TextDecoder does) and stores the stream.
func TestStreamBOMFirstBlockWithIDIsRefused(t *testing.T) {
	stream := "\xef\xbb\xbf" + "data: " + chatChunk(`{"role":"assistant","content":"Hel"}`, "") + "\nid: 1\n\n" +
		sseEventWithID("2", chatChunk(`{"content":"lo"}`, "")) +
		sseEventWithID("3", chatChunk(`{}`, "stop")) + sseEvent("[DONE]")
	if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, stream); r == ReasonNone {
		t.Errorf("a BOM-led stream whose first block carries an id was stored: openai-python reads that block as id-only with empty data and fails on json.loads(\"\")")
	}
}

// After [DONE] openai-python breaks out and drains the rest without parsing
// ("Ensure the entire stream is consumed"); openai-node skips every event
// once done. A keep-alive after [DONE] in an id'd stream is read fine.
func TestStreamIDsKeepAliveAfterDoneIsStored(t *testing.T) {
	stream := sseEventWithID("1", chatChunk(`{"role":"assistant","content":"Hel"}`, "")) +
		sseEventWithID("2", chatChunk(`{"content":"lo"}`, "")) +
		sseEventWithID("3", chatChunk(`{}`, "stop")) + sseEvent("[DONE]") + ": ping\n\n"
	if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, stream); r != ReasonNone {
		t.Errorf("stream refused (%v): a blank line after [DONE] is drained unparsed by openai-python and skipped by openai-node", r)
	}
	// Control: without ids.
	if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, goodStream("")+": ping\n\n"); r != ReasonNone {
		t.Fatalf("control refused: %v", r)
	}
}
