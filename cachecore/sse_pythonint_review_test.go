package cachecore

import "testing"

// Review Z51: pythonInt (sse.go) must say whether openai-python's
// SSEDecoder reads a "retry:" value as an integer (int(value) succeeds): a
// block holding only such a retry is dispatched with empty data, and the
// SDK's Stream fails on json.loads("") at every replay.
//
// Python's int() strips Unicode white space on both sides (str.strip), so
// int("1 \u00a0") == 1, int("1\t\u3000") == 1, int("0 \u2028") == 0 (checked
// with /tmp/modelcache-openai-sdk-3.51.0/bin/python). pythonInt trims only
// ASCII " \t\v\f" and returns true at the first byte beyond ASCII — but an
// ASCII space before trailing Unicode white space is met first and read as
// "not a digit": false. The block dispatches nothing here, the stream is
// stored, and openai-python raises JSONDecodeError on every replay.
func TestStreamRetryWithTrailingUnicodeSpaceIsRefused(t *testing.T) {
	for _, v := range []string{"1 \u00a0", "1\t\u3000", "0 \u2028", "-1 \u00a0", "+1 \u3000", "1_0 \u00a0", "3000 \u0085"} {
		stream := goodStream("retry: " + v + "\n\n")
		if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, stream); r == ReasonNone {
			t.Errorf("retry %q: stream stored, pythonInt=%v: Python's int(%q) succeeds, so openai-python dispatches the block with empty data and fails on json.loads(\"\")", v, pythonInt([]byte(v)), v)
		}
	}
	// Control: the same retry without the ASCII space before the Unicode
	// one is read as an integer and refuses the stream.
	if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, goodStream("retry: 1\u00a0\n\n")); r == ReasonNone {
		t.Fatalf("control: a retry-only block %q stored", "1\u00a0")
	}
}
