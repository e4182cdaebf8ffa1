package modelsim

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
)

// TextCompletion is the body of a legacy /v1/completions answer.
type TextCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint"`
	Choices           []TextChoice `json:"choices"`
	Usage             Usage        `json:"usage"`
}

// TextChoice is one choice of a legacy completion; there is one per prompt.
type TextChoice struct {
	Text         string    `json:"text"`
	Index        int       `json:"index"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason string    `json:"finish_reason"`
}

type completionRequest struct {
	Model         string          `json:"model"`
	Prompt        json.RawMessage `json:"prompt"`
	Stream        bool            `json:"stream"`
	StreamOptions *streamOptions  `json:"stream_options"`
	MaxTokens     *int            `json:"max_tokens"`
}

// CompletionAnswer is the reference answer to a legacy /v1/completions
// request body: one choice per prompt item.
func CompletionAnswer(version string, body []byte) (*TextCompletion, error) {
	c, _, err := completionAnswer(version, body, answerOpts{})
	return c, err
}

func completionAnswer(version string, body []byte, o answerOpts) (*TextCompletion, *completionRequest, error) {
	var req completionRequest
	canon, err := decodeObject(body, &req)
	if err != nil {
		return nil, nil, err
	}
	if req.Model == "" {
		return nil, nil, badRequest("model", "you must provide a model parameter")
	}
	items, prompt, err := parseItems(req.Prompt, "prompt")
	if err != nil {
		return nil, nil, err
	}
	if len(items) > maxChoices {
		return nil, nil, badRequest("prompt", "at most %d prompts per request", maxChoices)
	}
	limit, err := tokenLimit("max_tokens", req.MaxTokens)
	if err != nil {
		return nil, nil, err
	}
	d := digest(version, PathCompletions, canon)
	c := &TextCompletion{
		ID:                "cmpl-" + hex.EncodeToString(d[:12]),
		Object:            "text_completion",
		Created:           createdFrom(d),
		Model:             req.Model,
		SystemFingerprint: fingerprint(version),
		Choices:           make([]TextChoice, len(items)),
	}
	if o.nonce != 0 {
		c.ID += "-" + strconv.FormatUint(o.nonce, 10)
		c.Created = o.created
	}
	completion := 0
	for i := range items {
		cd := digest(string(d[:]), strconv.Itoa(i))
		ch := TextChoice{Index: i, FinishReason: "stop"}
		if !o.empty {
			text := fmt.Sprintf("This is a simulated completion from %s (%s), digest %s.",
				req.Model, version, hex.EncodeToString(cd[:4]))
			if o.nonce != 0 {
				text += fmt.Sprintf(" (call %d)", o.nonce)
			}
			text, cut := limitWords(text, limit)
			if cut {
				ch.FinishReason = "length"
			}
			// Legacy models continue the prompt, hence the leading space.
			ch.Text = " " + text
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
