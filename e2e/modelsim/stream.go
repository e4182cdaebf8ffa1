package modelsim

import (
	"encoding/json"
	"unicode/utf8"
)

// doneEvent ends every complete stream; its absence is how clients (and the
// cache) recognise a truncated one.
var doneEvent = []byte("data: [DONE]\n\n")

type chatChunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint"`
	Choices           []chunkChoice `json:"choices"`
	Usage             *Usage        `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int        `json:"index"`
	Delta        chunkDelta `json:"delta"`
	FinishReason *string    `json:"finish_reason"`
}

type chunkDelta struct {
	Role      string     `json:"role,omitempty"`
	Content   *string    `json:"content,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
}

func event(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own plain structs are marshalled here.
		panic("modelsim: marshal stream chunk: " + err.Error())
	}
	out := make([]byte, 0, len(b)+8)
	out = append(out, "data: "...)
	out = append(out, b...)
	return append(out, "\n\n"...)
}

// chatEvents renders a chat answer as OpenAI streams it: per choice, a
// role chunk, one content delta per word (or tool-call argument fragments),
// a chunk carrying finish_reason; then, if asked, a usage chunk with no
// choices; then [DONE]. Concatenating the deltas gives exactly the
// non-streamed message, which is what a cache that converts between the two
// must preserve.
func chatEvents(c *ChatCompletion, includeUsage bool) [][]byte {
	chunk := func(choices []chunkChoice) chatChunk {
		return chatChunk{
			ID:                c.ID,
			Object:            "chat.completion.chunk",
			Created:           c.Created,
			Model:             c.Model,
			SystemFingerprint: c.SystemFingerprint,
			Choices:           choices,
		}
	}
	one := func(index int, d chunkDelta, finish *string) []byte {
		return event(chunk([]chunkChoice{{Index: index, Delta: d, FinishReason: finish}}))
	}
	var evs [][]byte
	for _, ch := range c.Choices {
		if len(ch.Message.ToolCalls) > 0 {
			first := chunkDelta{Role: "assistant"}
			for i, tc := range ch.Message.ToolCalls {
				first.ToolCalls = append(first.ToolCalls, ToolCall{
					Index: intPtr(i), ID: tc.ID, Type: tc.Type,
					Function: FunctionCall{Name: tc.Function.Name},
				})
			}
			evs = append(evs, one(ch.Index, first, nil))
			for i, tc := range ch.Message.ToolCalls {
				for _, piece := range splitRunes(tc.Function.Arguments, 8) {
					evs = append(evs, one(ch.Index, chunkDelta{ToolCalls: []ToolCall{{
						Index: intPtr(i), Function: FunctionCall{Arguments: piece},
					}}}, nil))
				}
			}
		} else {
			evs = append(evs, one(ch.Index, chunkDelta{Role: "assistant", Content: strPtr("")}, nil))
			if ch.Message.Content != nil {
				for _, piece := range splitWords(*ch.Message.Content) {
					evs = append(evs, one(ch.Index, chunkDelta{Content: strPtr(piece)}, nil))
				}
			}
		}
		evs = append(evs, one(ch.Index, chunkDelta{}, strPtr(ch.FinishReason)))
	}
	if includeUsage {
		u := chunk([]chunkChoice{})
		u.Usage = &c.Usage
		evs = append(evs, event(u))
	}
	return append(evs, doneEvent)
}

type textChunk struct {
	ID                string            `json:"id"`
	Object            string            `json:"object"`
	Created           int64             `json:"created"`
	Model             string            `json:"model"`
	SystemFingerprint string            `json:"system_fingerprint"`
	Choices           []textChunkChoice `json:"choices"`
	Usage             *Usage            `json:"usage,omitempty"`
}

type textChunkChoice struct {
	Text         string    `json:"text"`
	Index        int       `json:"index"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

// completionEvents streams a legacy completion the same way: word deltas
// per choice, a finishing chunk, an optional usage chunk, [DONE].
func completionEvents(c *TextCompletion, includeUsage bool) [][]byte {
	chunk := func(choices []textChunkChoice) textChunk {
		return textChunk{
			ID:                c.ID,
			Object:            "text_completion",
			Created:           c.Created,
			Model:             c.Model,
			SystemFingerprint: c.SystemFingerprint,
			Choices:           choices,
		}
	}
	var evs [][]byte
	for _, ch := range c.Choices {
		for _, piece := range splitWords(ch.Text) {
			evs = append(evs, event(chunk([]textChunkChoice{{Text: piece, Index: ch.Index}})))
		}
		evs = append(evs, event(chunk([]textChunkChoice{{Index: ch.Index, FinishReason: strPtr(ch.FinishReason)}})))
	}
	if includeUsage {
		u := chunk([]textChunkChoice{})
		u.Usage = &c.Usage
		evs = append(evs, event(u))
	}
	return append(evs, doneEvent)
}

func strPtr(s string) *string { return &s }
func intPtr(i int) *int       { return &i }

// splitWords cuts s before each space that follows a non-space, so the
// pieces concatenate back to s exactly, like a tokenizer's deltas.
func splitWords(s string) []string {
	var out []string
	start := 0
	for i := 1; i < len(s); i++ {
		if s[i] == ' ' && s[i-1] != ' ' {
			out = append(out, s[start:i])
			start = i
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// splitRunes cuts s into pieces of at most n runes, never inside a rune.
func splitRunes(s string, n int) []string {
	var out []string
	for len(s) > 0 {
		i, count := 0, 0
		for i < len(s) && count < n {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
			count++
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}
