package modelsim

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Paths of the model endpoints; Server.Calls takes these.
const (
	PathChat        = "/v1/chat/completions"
	PathCompletions = "/v1/completions"
	PathEmbeddings  = "/v1/embeddings"
	PathClassify    = "/v1/classify"
	PathRerank      = "/v1/rerank"
)

// ModelPaths lists the model endpoints in a stable order.
var ModelPaths = []string{PathChat, PathCompletions, PathEmbeddings, PathClassify, PathRerank}

const (
	// DefaultModelVersion is the version a Server answers as unless told
	// otherwise.
	DefaultModelVersion = "v1"
	// DefaultEmbeddingDims is the vector length when neither the request
	// (dimensions) nor Options.EmbeddingDims choose one; small, so that test
	// failures print readable vectors.
	DefaultEmbeddingDims = 16

	// MinScore is the lowest classifier score that can be forced; lower
	// ones would need hundreds of labels to stay the top label.
	MinScore = 0.01

	maxEmbeddingDims = 8192
	maxChoices       = 16

	// createdEpoch anchors the deterministic created timestamps
	// (2023-11-14T22:13:20Z); digests spread them over a year after it so
	// they look like real timestamps yet never depend on the clock.
	createdEpoch = 1700000000
	createdSpan  = 365 * 24 * 3600
)

// RequestError is a request the simulated model rejects with 400, as a real
// one would; Param names the offending field in OpenAI's style.
type RequestError struct {
	Param   string
	Message string
}

func (e *RequestError) Error() string {
	if e.Param == "" {
		return e.Message
	}
	return e.Param + ": " + e.Message
}

func badRequest(param, format string, args ...any) *RequestError {
	return &RequestError{Param: param, Message: fmt.Sprintf(format, args...)}
}

// Usage is the token accounting of chat and completion answers. Tokens are
// counted as whitespace-separated words: cheap, deterministic and close
// enough for cost metrics.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// answerOpts are the knobs that change what the model says, as opposed to
// how (or whether) it is delivered. The zero value is the plain model that
// the exported reference functions describe.
type answerOpts struct {
	finishReason string
	empty        bool
	score        float64
	dims         int
	// nonce, when non-zero, makes the answer nondeterministic: it is the
	// call number, stamped into id and content; created is then the clock.
	nonce   uint64
	created int64
}

// digest hashes length-prefixed parts, so ("ab","c") and ("a","bc") differ.
func digest(parts ...string) [32]byte {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, p := range parts {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		h.Write([]byte(p))
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func createdFrom(d [32]byte) int64 {
	return createdEpoch + int64(binary.BigEndian.Uint32(d[12:16])%createdSpan)
}

func fingerprint(version string) string { return "modelsim-" + version }

// ignoredFields do not change what a model says, only how it is delivered
// or billed, so they stay out of the answer digest.
var ignoredFields = []string{"stream", "stream_options", "user"}

// decodeObject decodes a JSON object body into v and returns its canonical
// form for digests: re-encoded with sorted keys and normalised numbers, minus
// ignoredFields.
func decodeObject(body []byte, v any) (string, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return "", badRequest("", "request body must be a JSON object")
	}
	var m map[string]any
	if err := json.Unmarshal(trimmed, &m); err != nil {
		return "", badRequest("", "invalid JSON body: %v", err)
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return "", badRequest(te.Field, "wrong type: want %v, got JSON %s", te.Type, te.Value)
		}
		return "", badRequest("", "invalid JSON body: %v", err)
	}
	for _, f := range ignoredFields {
		delete(m, f)
	}
	canon, err := json.Marshal(m)
	if err != nil {
		return "", badRequest("", "cannot canonicalise body: %v", err)
	}
	return string(canon), nil
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

func words(s string) int { return len(strings.Fields(s)) }

// limitWords cuts s to at most limit words (no limit when limit <= 0) and
// reports whether it cut, which a real model reports as finish_reason length.
func limitWords(s string, limit int) (string, bool) {
	w := strings.Fields(s)
	if limit <= 0 || len(w) <= limit {
		return s, false
	}
	return strings.Join(w[:limit], " "), true
}

func tokenLimit(param string, ps ...*int) (int, error) {
	for _, p := range ps {
		if p != nil {
			if *p < 1 {
				return 0, badRequest(param, "must be >= 1, got %d", *p)
			}
			return *p, nil
		}
	}
	return 0, nil
}

// parseItems reads an OpenAI "input"/"prompt": a string, an array of
// strings, an array of integers (one token array) or an array of token
// arrays. Token arrays become their canonical JSON text ("[1,2,3]"), which is
// the item string that EmbeddingVector and the embeddings log use. tokens
// counts words of strings and elements of token arrays.
func parseItems(raw json.RawMessage, param string) (items []string, tokens int, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, 0, badRequest(param, "is required")
	}
	// Decode into fresh variables: a failed json.Unmarshal may leave a
	// target half-filled.
	var ss []string
	var tss [][]int64
	if s, ok := decodeAs[string](raw); ok {
		ss = []string{s}
	} else if v, ok := decodeAs[[]string](raw); ok {
		ss = v
	} else if v, ok := decodeAs[[]int64](raw); ok {
		tss = [][]int64{v}
	} else if v, ok := decodeAs[[][]int64](raw); ok {
		tss = v
	} else {
		return nil, 0, badRequest(param, "must be a string, an array of strings, an array of integers or an array of integer arrays")
	}
	for i, s := range ss {
		if s == "" {
			return nil, 0, badRequest(fmt.Sprintf("%s[%d]", param, i), "must not be empty")
		}
		items = append(items, s)
		tokens += words(s)
	}
	for i, t := range tss {
		if len(t) == 0 {
			return nil, 0, badRequest(fmt.Sprintf("%s[%d]", param, i), "token array must not be empty")
		}
		items = append(items, tokenItem(t))
		tokens += len(t)
	}
	if len(items) == 0 {
		return nil, 0, badRequest(param, "must not be empty")
	}
	return items, tokens, nil
}

func decodeAs[T any](raw json.RawMessage) (T, bool) {
	var v T
	err := json.Unmarshal(raw, &v)
	return v, err == nil
}

func tokenItem(t []int64) string {
	b := []byte{'['}
	for i, v := range t {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, v, 10)
	}
	return string(append(b, ']'))
}

// ExpectedBody is the exact response body the simulator sends, as model
// version version with no knobs set and default embedding dimensions, for a
// request body to path: JSON, or the whole SSE stream for "stream": true.
// It lets tests compare a cached answer with a fresh one byte for byte.
func ExpectedBody(version, path string, body []byte) ([]byte, error) {
	r, err := buildReply(version, path, body, answerOpts{})
	if err != nil {
		return nil, err
	}
	if r.events != nil {
		return bytes.Join(r.events, nil), nil
	}
	return r.body, nil
}

// reply is a model answer ready for delivery: a JSON body, or SSE events
// (each a complete "data: …\n\n", the last one [DONE]).
type reply struct {
	body   []byte
	events [][]byte
	// embedding is set for embeddings calls, for the call log.
	embedding *EmbeddingCall
}

func buildReply(version, path string, body []byte, o answerOpts) (reply, error) {
	var v any
	switch path {
	case PathChat:
		c, req, err := chatAnswer(version, body, o)
		if err != nil {
			return reply{}, err
		}
		if req.Stream {
			return reply{events: chatEvents(c, req.StreamOptions != nil && req.StreamOptions.IncludeUsage)}, nil
		}
		v = c
	case PathCompletions:
		c, req, err := completionAnswer(version, body, o)
		if err != nil {
			return reply{}, err
		}
		if req.Stream {
			return reply{events: completionEvents(c, req.StreamOptions != nil && req.StreamOptions.IncludeUsage)}, nil
		}
		v = c
	case PathEmbeddings:
		e, items, err := embeddingAnswer(version, body, o)
		if err != nil {
			return reply{}, err
		}
		b, err := json.Marshal(e)
		if err != nil {
			return reply{}, err
		}
		return reply{body: b, embedding: &EmbeddingCall{Model: e.Model, Items: items}}, nil
	case PathClassify:
		c, err := classifyAnswer(version, body, o)
		if err != nil {
			return reply{}, err
		}
		v = c
	case PathRerank:
		r, err := rerankAnswer(version, body, o)
		if err != nil {
			return reply{}, err
		}
		v = r
	default:
		return reply{}, fmt.Errorf("modelsim: %q is not a model endpoint", path)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return reply{}, err
	}
	return reply{body: b}, nil
}
