package modelsim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
)

// EmbeddingList is the body of an embeddings answer.
type EmbeddingList struct {
	Object string         `json:"object"`
	Data   []Embedding    `json:"data"`
	Model  string         `json:"model"`
	Usage  EmbeddingUsage `json:"usage"`
}

// Embedding is one vector. Embedding holds a []float32 for
// encoding_format "float" and a base64 string (little-endian float32s) for
// "base64".
type Embedding struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

// EmbeddingUsage is the token accounting of embeddings: words for strings,
// elements for token arrays.
type EmbeddingUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// EmbeddingVector is the unit-length vector the simulator returns for item
// (a string input, or a token array's canonical JSON such as "[1,2,3]") at
// the given model version, model and dimension count. Components are
// uniform in [-1,1) before normalisation, drawn from SHA-256 in counter mode,
// so every (version, model, item) gives an unrelated direction.
func EmbeddingVector(version, model, item string, dims int) []float32 {
	if dims <= 0 {
		return nil
	}
	seed := digest(version, PathEmbeddings, model, item)
	v := make([]float64, dims)
	var block [36]byte
	copy(block[:], seed[:])
	var sum float64
	for i := 0; i < dims; {
		binary.BigEndian.PutUint32(block[32:], uint32(i/8))
		h := sha256.Sum256(block[:])
		for j := 0; j < 8 && i < dims; j, i = j+1, i+1 {
			x := float64(binary.BigEndian.Uint32(h[4*j:]))/(1<<31) - 1
			v[i] = x
			sum += x * x
		}
	}
	norm := math.Sqrt(sum)
	if norm == 0 {
		norm = 1
	}
	out := make([]float32, dims)
	for i, x := range v {
		out[i] = float32(x / norm)
	}
	return out
}

// EncodeBase64 encodes a vector as OpenAI's encoding_format "base64" does:
// little-endian float32s, standard base64.
func EncodeBase64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// DecodeBase64 reverses EncodeBase64.
func DecodeBase64(s string) ([]float32, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("modelsim: base64 embedding has %d bytes, not a multiple of 4", len(b))
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	Dimensions     *int            `json:"dimensions"`
	EncodingFormat string          `json:"encoding_format"`
}

// EmbeddingAnswer is the reference answer to an embeddings request body,
// with DefaultEmbeddingDims when the request names no dimensions.
func EmbeddingAnswer(version string, body []byte) (*EmbeddingList, error) {
	e, _, err := embeddingAnswer(version, body, answerOpts{})
	return e, err
}

func embeddingAnswer(version string, body []byte, o answerOpts) (*EmbeddingList, []string, error) {
	var req embeddingRequest
	if _, err := decodeObject(body, &req); err != nil {
		return nil, nil, err
	}
	if req.Model == "" {
		return nil, nil, badRequest("model", "you must provide a model parameter")
	}
	items, tokens, err := parseItems(req.Input, "input")
	if err != nil {
		return nil, nil, err
	}
	dims := o.dims
	if dims <= 0 {
		dims = DefaultEmbeddingDims
	}
	if req.Dimensions != nil {
		dims = *req.Dimensions
		if dims < 1 || dims > maxEmbeddingDims {
			return nil, nil, badRequest("dimensions", "must be in 1..%d, got %d", maxEmbeddingDims, dims)
		}
	}
	b64 := false
	switch req.EncodingFormat {
	case "", "float":
	case "base64":
		b64 = true
	default:
		return nil, nil, badRequest("encoding_format", "must be float or base64, got %q", req.EncodingFormat)
	}
	e := &EmbeddingList{
		Object: "list",
		Data:   []Embedding{},
		Model:  req.Model,
		Usage:  EmbeddingUsage{PromptTokens: tokens, TotalTokens: tokens},
	}
	if !o.empty {
		for i, item := range items {
			v := EmbeddingVector(version, req.Model, item, dims)
			var enc any = v
			if b64 {
				enc = EncodeBase64(v)
			}
			e.Data = append(e.Data, Embedding{Object: "embedding", Index: i, Embedding: enc})
		}
	}
	return e, items, nil
}
