package cachecore

import (
	"math"
	"strings"

	"github.com/tidwall/gjson"
)

// Rerank (kind "rerank"): POST /v1/rerank in the shape Cohere, Jina and
// vLLM share. The request names a query and documents (strings, or objects
// with a "text") and optionally top_n; the answer lists results
// [{index, relevance_score, document?}]. Requests are cached whole. An
// answer is stored only if it ranks exactly the documents asked about: one
// result per document (top_n of them when top_n is smaller), every index an
// integer naming one of the request's documents, no index twice, every
// relevance_score a finite number. A ranking that names a document the
// client never sent, or drops one, is worse than no cache.

// rerankRequest is what admission needs to know about a rerank request.
type rerankRequest struct {
	docs int // len(documents)
	want int // results a complete answer has: min(top_n, docs), or docs
	// texts are the documents' texts (a string document, or an object's
	// "text"), canonical (documentText), which a result that returns its
	// document must repeat.
	texts   []string
	hasText []bool
}

// maxRerankDocuments bounds the documents of a request parseRerank keeps
// (each one's text, for the answer's check): a request of more passes
// uncached.
const maxRerankDocuments = 4096

// parseRerank reads documents and top_n from a keyed request body. A
// request whose documents are not an array, or whose top_n is not a
// non-negative integer, is bypassed: no answer to it could be checked.
// top_n 0 asks for every document (vLLM); so does a null or absent one.
// A request of more than maxRerankDocuments documents is bypassed too.
func parseRerank(_ *Cache, req *Request, body []byte) Reason {
	doc := gjson.ParseBytes(body)
	docs, n := soleMember(doc, "documents")
	if n != 1 || !docs.IsArray() {
		return ReasonRerankInput
	}
	rr := &rerankRequest{}
	docs.ForEach(func(_, d gjson.Result) bool {
		if rr.docs++; rr.docs > maxRerankDocuments {
			return false
		}
		t, ok := documentText(d)
		rr.texts = append(rr.texts, t)
		rr.hasText = append(rr.hasText, ok)
		return true
	})
	if rr.docs > maxRerankDocuments {
		return ReasonRerankInput
	}
	rr.want = rr.docs
	if top, n := soleMember(doc, "top_n"); n > 0 && top.Type != gjson.Null {
		if n != 1 || !isInteger(top) || top.Num < 0 {
			return ReasonRerankInput
		}
		if top.Num > 0 && top.Num < float64(rr.docs) {
			rr.want = int(top.Num)
		}
	}
	req.kindView = rr
	return ReasonNone
}

// checkRerank is the rerank kind's admission check.
func checkRerank(req *Request, body []byte) Reason {
	rr, ok := req.kindView.(*rerankRequest)
	if !ok {
		return ReasonRerankInput // parse did not run: nothing to check against
	}
	results, n := soleMember(gjson.ParseBytes(body), "results")
	if n == 0 {
		return ReasonForeignShape // another API's answer: a retry meets it again
	}
	if n != 1 || !results.IsArray() {
		return ReasonRerankResults
	}
	seen := make([]bool, rr.docs)
	count := 0
	reason := ReasonNone
	results.ForEach(func(_, res gjson.Result) bool {
		count++
		if !res.IsObject() || count > rr.want {
			reason = ReasonRerankResults
			return false
		}
		idx, n := soleMember(res, "index")
		if n != 1 || !isInteger(idx) || idx.Num < 0 || idx.Num >= float64(rr.docs) || seen[int(idx.Num)] {
			reason = ReasonRerankIndex
			return false
		}
		seen[int(idx.Num)] = true
		if doc, n := soleMember(res, "document"); n > 1 || n == 1 && doc.Type != gjson.Null && !rr.sameDocument(int(idx.Num), doc) {
			reason = ReasonRerankDocument
			return false
		}
		score, n := soleMember(res, "relevance_score")
		if n != 1 || score.Type != gjson.Number || math.IsNaN(score.Num) || math.IsInf(score.Num, 0) {
			reason = ReasonRerankScore
			return false
		}
		return true
	})
	if reason == ReasonNone && count != rr.want {
		reason = ReasonRerankResults
	}
	return reason
}

// sameDocument reports whether a result's document is the text of the
// request's document i.
func (rr *rerankRequest) sameDocument(i int, doc gjson.Result) bool {
	t, ok := documentText(doc)
	return ok && rr.hasText[i] && t == rr.texts[i]
}

// documentText is a rerank document's text: the string itself, or an
// object's one "text" string. A document without text has none to
// compare, so a result returning one is never taken as the client's. The
// text is the string's canonical JSON, as the key reads it: gjson's
// decoding turns every lone surrogate into U+FFFD, so "x\ud800y" and
// "x\udbffy", different texts to Python's and JavaScript's parsers, would
// compare equal (review Z64).
func documentText(d gjson.Result) (string, bool) {
	if d.IsObject() {
		t, n := soleMember(d, "text")
		if n != 1 {
			return "", false
		}
		d = t
	}
	if d.Type != gjson.String {
		return "", false
	}
	if strings.IndexByte(d.Raw, '\\') < 0 {
		return d.Raw, true // already canonical
	}
	c, err := Canonicalize([]byte(d.Raw), nil)
	return string(c), err == nil
}

// soleMember returns an object's member name and how often it occurs: a
// repeated member is read differently by different parsers, so the checks
// insist on exactly one. A name equal but for case is the member too, as
// Go's encoding/json reads it: a lone "Document" was a document the check
// never read (review Z97).
func soleMember(obj gjson.Result, name string) (gjson.Result, int) {
	var v gjson.Result
	n := 0
	obj.ForEach(func(k, val gjson.Result) bool {
		if k.Str == name || strings.EqualFold(k.Str, name) {
			if n == 0 {
				v = val
			}
			n++
		}
		return true
	})
	return v, n
}
