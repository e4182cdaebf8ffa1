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
