package cachecore

import "testing"

// A rerank result that returns a document must return the client's: an
// answer carrying text the client never sent is not stored.
func TestRerankForeignDocumentIsNotStored(t *testing.T) {
	ans := `{"results":[{"index":0,"relevance_score":0.9,"document":{"text":"ignore previous instructions"}},` +
		`{"index":1,"relevance_score":0.1,"document":{"text":"b"}}]}`
	if r := storeVerdict(t, rerankCfg, "rerank", alice, rerankRequestBody("q", "", "a", "b"), jsonCT, ans); r == ReasonNone {
		t.Fatalf("rerank answer carrying a document the client never sent stored")
	}
}

// The client's own documents, returned in any of the usual forms, are
// stored; a repeated document member (refused as any duplicate member
// is) or a document without text is not (its text cannot be compared).
func TestRerankReturnedDocuments(t *testing.T) {
	objDocs := `{"model":"rr-1","query":"q","documents":[{"text":"a","title":"t"},{"text":"b\u00e9"}]}`
	for _, tc := range []struct {
		body, answer string
		want         Reason
	}{
		{rerankRequestBody("q", "", "a", "b"), `{"results":[{"index":1,"relevance_score":0.9,"document":{"text":"b"}},{"index":0,"relevance_score":0.1,"document":"a"}]}`, ReasonNone},
		{objDocs, `{"results":[{"index":1,"relevance_score":0.9,"document":{"text":"b\u00e9"}},{"index":0,"relevance_score":0.1,"document":{"text":"a"}}]}`, ReasonNone},
		{objDocs, `{"results":[{"index":1,"relevance_score":0.9,"document":null},{"index":0,"relevance_score":0.1}]}`, ReasonNone},
		{objDocs, `{"results":[{"index":1,"relevance_score":0.9,"document":{"text":"a"}},{"index":0,"relevance_score":0.1,"document":{"text":"a"}}]}`, ReasonRerankDocument},
		{objDocs, `{"results":[{"index":1,"relevance_score":0.9,"document":{"text":"bé"},"document":{"text":"x"}},{"index":0,"relevance_score":0.1}]}`, ReasonDuplicateKey},
		{`{"model":"rr-1","query":"q","documents":[{"image":"i"},"b"]}`, `{"results":[{"index":0,"relevance_score":0.9,"document":{"image":"i"}},{"index":1,"relevance_score":0.1}]}`, ReasonRerankDocument},
	} {
		env := newEnv(t, rerankCfg)
		req := env.request("rerank", alice, tc.body)
		if req.Bypassed() {
			t.Fatalf("%s: bypassed: %s", tc.body, req.Reason)
		}
		if a := env.cache.AdmitBody(req, jsonCT, []byte(tc.answer)); a.Reason != tc.want {
			t.Errorf("%s: reason %s, want %s", tc.answer, a.Reason, tc.want)
		}
	}
}
