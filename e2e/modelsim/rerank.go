package modelsim

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// Rerank is the body of a /v1/rerank answer (the shape Cohere, Jina and
// vLLM share): results sorted by descending relevance_score, at most top_n
// of them, each naming its document by index in the request.
type Rerank struct {
	ID      string         `json:"id"`
	Model   string         `json:"model"`
	Results []RerankResult `json:"results"`
	Usage   RerankUsage    `json:"usage"`
}

// RerankResult is one ranked document.
type RerankResult struct {
	Index          int             `json:"index"`
	RelevanceScore float64         `json:"relevance_score"`
	Document       *RerankDocument `json:"document,omitempty"`
}

// RerankDocument is a document echoed back (return_documents).
type RerankDocument struct {
	Text string `json:"text"`
}

// RerankUsage counts the words of the query and the documents.
type RerankUsage struct {
	TotalTokens int `json:"total_tokens"`
}

type rerankRequest struct {
	Model           string            `json:"model"`
	Query           string            `json:"query"`
	Documents       []json.RawMessage `json:"documents"`
	TopN            *int              `json:"top_n"`
	ReturnDocuments bool              `json:"return_documents"`
}

// RerankAnswer is the reference answer to a rerank request body.
func RerankAnswer(version string, body []byte) (*Rerank, error) {
	return rerankAnswer(version, body, answerOpts{})
}

// RelevanceScore is the score the model gives document for query: a
// digest of (version, model, query, document) mapped into [0, 1).
func RelevanceScore(version, model, query, document string) float64 {
	d := digest(version, PathRerank, model, query, document)
	return float64(binary.BigEndian.Uint64(d[:8])>>11) / (1 << 53)
}

// rerankAnswer scores every document, sorts by descending score (ties by
// index) and keeps top_n (absent, null or 0: all). FaultEmpty answers no
// results; the nondeterministic knob stamps the call into id and scores.
func rerankAnswer(version string, body []byte, o answerOpts) (*Rerank, error) {
	var req rerankRequest
	canon, err := decodeObject(body, &req)
	if err != nil {
		return nil, err
	}
	if req.Model == "" {
		return nil, badRequest("model", "you must provide a model parameter")
	}
	if req.Query == "" {
		return nil, badRequest("query", "must be a non-empty string")
	}
	if len(req.Documents) == 0 {
		return nil, badRequest("documents", "must be a non-empty array")
	}
	texts := make([]string, len(req.Documents))
	for i, raw := range req.Documents {
		if s, ok := decodeAs[string](raw); ok {
			texts[i] = s
		} else if d, ok := decodeAs[RerankDocument](raw); ok && len(raw) > 0 && raw[0] == '{' {
			texts[i] = d.Text
		} else {
			return nil, badRequest(fmt.Sprintf("documents[%d]", i), "must be a string or an object with a text")
		}
	}
	n := len(texts)
	if req.TopN != nil {
		if *req.TopN < 0 {
			return nil, badRequest("top_n", "must be >= 0, got %d", *req.TopN)
		}
		if *req.TopN > 0 && *req.TopN < n {
			n = *req.TopN
		}
	}
	d := digest(version, PathRerank, canon)
	r := &Rerank{ID: "rerank-" + hex.EncodeToString(d[:12]), Model: req.Model, Results: []RerankResult{}}
	r.Usage.TotalTokens = words(req.Query)
	for _, t := range texts {
		r.Usage.TotalTokens += words(t)
	}
	if o.nonce != 0 {
		r.ID += "-" + strconv.FormatUint(o.nonce, 10)
	}
	if o.empty {
		return r, nil
	}
	for i, t := range texts {
		score := RelevanceScore(version, req.Model, req.Query, t)
		if o.nonce != 0 {
			score = RelevanceScore(version, req.Model, req.Query+" "+strconv.FormatUint(o.nonce, 10), t)
		}
		res := RerankResult{Index: i, RelevanceScore: score}
		if req.ReturnDocuments {
			res.Document = &RerankDocument{Text: t}
		}
		r.Results = append(r.Results, res)
	}
	sort.SliceStable(r.Results, func(a, b int) bool { return r.Results[a].RelevanceScore > r.Results[b].RelevanceScore })
	r.Results = r.Results[:n]
	return r, nil
}
