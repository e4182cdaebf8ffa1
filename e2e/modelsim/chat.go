package modelsim

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// ChatCompletion is the body of a non-streamed chat answer.
type ChatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint"`
	Choices           []ChatChoice `json:"choices"`
	Usage             Usage        `json:"usage"`
}

// ChatChoice is one choice of a chat answer.
type ChatChoice struct {
	Index        int         `json:"index"`
	Message      ChatMessage `json:"message"`
	FinishReason string      `json:"finish_reason"`
}

// ChatMessage is the assistant's message. Content is nil (JSON null) when the
// answer is a tool call.
type ChatMessage struct {
	Role      string     `json:"role"`
	Content   *string    `json:"content"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
}

// ToolCall is a function call requested by the model. Index is set only in
// stream deltas, where OpenAI uses it to stitch fragments together.
type ToolCall struct {
	Index    *int         `json:"index,omitempty"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function FunctionCall `json:"function"`
}

// FunctionCall names the function and carries its JSON-encoded arguments.
type FunctionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

type chatRequest struct {
	Model               string           `json:"model"`
	Messages            []requestMessage `json:"messages"`
	Tools               []requestTool    `json:"tools"`
	Stream              bool             `json:"stream"`
	StreamOptions       *streamOptions   `json:"stream_options"`
	N                   *int             `json:"n"`
	MaxTokens           *int             `json:"max_tokens"`
	MaxCompletionTokens *int             `json:"max_completion_tokens"`
}

type requestMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type requestTool struct {
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

// messageText flattens a message content: a string, null, or an array of
// parts whose text parts are joined with spaces.
func messageText(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) != nil {
		return "", false
	}
	var texts []string
	for _, p := range parts {
		if p.Type == "text" {
			texts = append(texts, p.Text)
		}
	}
	return strings.Join(texts, " "), true
}

// ChatAnswer is the answer the simulator gives, as model version version and
// with no knobs set, to the chat request body. Tests use it as the uncached
// reference. A *RequestError means the simulator answers 400.
func ChatAnswer(version string, body []byte) (*ChatCompletion, error) {
	c, _, err := chatAnswer(version, body, answerOpts{})
	return c, err
}

func chatAnswer(version string, body []byte, o answerOpts) (*ChatCompletion, *chatRequest, error) {
	var req chatRequest
	canon, err := decodeObject(body, &req)
	if err != nil {
		return nil, nil, err
	}
	if req.Model == "" {
		return nil, nil, badRequest("model", "you must provide a model parameter")
	}
	if len(req.Messages) == 0 {
		return nil, nil, badRequest("messages", "must contain at least one message")
	}
	texts := make([]string, len(req.Messages))
	prompt := 0
	for i, m := range req.Messages {
		if m.Role == "" {
			return nil, nil, badRequest(fmt.Sprintf("messages[%d].role", i), "is required")
		}
		t, ok := messageText(m.Content)
		if !ok {
			return nil, nil, badRequest(fmt.Sprintf("messages[%d].content", i), "must be a string, null or an array of content parts")
		}
		texts[i] = t
		prompt += words(t)
	}
	n := 1
	if req.N != nil {
		n = *req.N
		if n < 1 || n > maxChoices {
			return nil, nil, badRequest("n", "must be in 1..%d, got %d", maxChoices, n)
		}
	}
	limit, err := tokenLimit("max_tokens", req.MaxCompletionTokens, req.MaxTokens)
	if err != nil {
		return nil, nil, err
	}

	d := digest(version, PathChat, canon)
	c := &ChatCompletion{
		ID:                "chatcmpl-" + hex.EncodeToString(d[:12]),
		Object:            "chat.completion",
		Created:           createdFrom(d),
		Model:             req.Model,
		SystemFingerprint: fingerprint(version),
		Choices:           make([]ChatChoice, n),
	}
	if o.nonce != 0 {
		c.ID += "-" + strconv.FormatUint(o.nonce, 10)
		c.Created = o.created
	}
	tool := weatherTool(&req, texts)
	completion := 0
	for i := range c.Choices {
		cd := digest(string(d[:]), strconv.Itoa(i))
		ch := ChatChoice{Index: i, FinishReason: "stop", Message: ChatMessage{Role: "assistant"}}
		switch {
		case o.empty:
			empty := ""
			ch.Message.Content = &empty
		case tool != "":
			args := toolArguments(texts[len(texts)-1])
			ch.Message.ToolCalls = []ToolCall{{
				ID:       "call_" + hex.EncodeToString(cd[:12]),
				Type:     "function",
				Function: FunctionCall{Name: tool, Arguments: args},
			}}
			ch.FinishReason = "tool_calls"
			completion += 1 + len(args)/4
		default:
			text := fmt.Sprintf("This is a simulated answer from %s (%s), digest %s, for your %d-word prompt.",
				req.Model, version, hex.EncodeToString(cd[:4]), prompt)
			if o.nonce != 0 {
				text += fmt.Sprintf(" (call %d)", o.nonce)
			}
			text, cut := limitWords(text, limit)
			if cut {
				ch.FinishReason = "length"
			}
			ch.Message.Content = &text
			completion += words(text)
		}
		if o.finishReason != "" {
			ch.FinishReason = o.finishReason
		}
		c.Choices[i] = ch
	}
	c.Usage = Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}
	return c, &req, nil
}

// weatherTool returns the tool to call, or "" to answer in text. The rule
// is the classic demo: tools are offered and the user's latest message asks
// about the weather. After a tool result (last role "tool") the model
// answers in text, so agent loops terminate.
func weatherTool(req *chatRequest, texts []string) string {
	last := len(req.Messages) - 1
	if len(req.Tools) == 0 || req.Messages[last].Role != "user" ||
		!strings.Contains(strings.ToLower(texts[last]), "weather") {
		return ""
	}
	first := ""
	for _, t := range req.Tools {
		name := t.Function.Name
		if strings.Contains(strings.ToLower(name), "weather") {
			return name
		}
		if first == "" {
			first = name
		}
	}
	return first
}

// toolArguments takes the word after "in" as the location, so different
// questions yield different arguments.
func toolArguments(text string) string {
	loc := "unknown"
	w := strings.Fields(text)
	for i := 0; i+1 < len(w); i++ {
		if strings.EqualFold(w[i], "in") {
			if l := strings.Trim(w[i+1], ".,;:!?\"'()"); l != "" {
				loc = l
				break
			}
		}
	}
	b, _ := json.Marshal(struct {
		Location string `json:"location"`
	}{loc})
	return string(b)
}
