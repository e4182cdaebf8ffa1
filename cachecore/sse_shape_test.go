package cachecore

import (
	"strconv"
	"strings"
	"testing"
)

// A stream chunk that is JSON but not a chunk object (or whose choices
// are not objects) is invalid output: every replay would hand it to the
// SDKs again.
func TestStreamChunkOfTheWrongShapeIsNotStored(t *testing.T) {
	for _, bad := range []string{`null`, `42`, `"oops"`, `[]`,
		`{"id":"c1","object":"chat.completion.chunk","choices":null}`,
		`{"id":"c1","object":"chat.completion.chunk","choices":[null]}`} {
		if r := storeVerdict(t, testConfig, "chat", alice, streamChatRequest, sseCT, goodStream(sseEvent(bad))); r == ReasonNone {
			t.Errorf("stream with event `data: %s` stored", bad)
		}
	}
}

// Assembling a stream is bounded: a small event naming 129 choices of
// 129 tool calls each must not assemble to a body larger than the
// route's max_entry_bytes.
func TestStreamAssemblyIsBounded(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(`{"choices":[`)
	for i := 0; i <= 128; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"index":` + strconv.Itoa(i) + `,"delta":{"tool_calls":[{"index":128}]},"finish_reason":"tool_calls"}`)
	}
	in := sseEvent(sb.String()+`]}`) + sseEvent("[DONE]")
	r := storeVerdict(t, testConfig, "tools", alice, streamChatRequest, sseCT, in)
	if n := len(AssembleStream(KindChat, []byte(in)).Assembled); n > 65536 {
		t.Fatalf("%d-byte stream assembled to %d bytes (max_entry_bytes 65536); stored: %v", len(in), n, r == ReasonNone)
	}
}
