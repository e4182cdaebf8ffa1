package cachecore

import "testing"

// README "Rerank": "a result that returns its document returns the
// client's text at that index". gjson decodes a lone surrogate escape to
// U+FFFD, so a client document "\ud800" and an answer's "\udbff" or
// "\ufffd" (other text to every JSON parser that keeps lone surrogates,
// Python's and JavaScript's) are compared as one text.
func TestRerankDocumentLoneSurrogateIsNotTheClientsText(t *testing.T) {
	req := `{"model":"rr-1","query":"q","documents":["x\ud800y","b"]}`
	for _, doc := range []string{`"x\udbffy"`, `"x\ufffdy"`, `{"text":"x\udc00y"}`} {
		ans := `{"results":[{"index":0,"relevance_score":0.9,"document":` + doc + `},{"index":1,"relevance_score":0.1}]}`
		if r := storeVerdict(t, rerankCfg, "rerank", alice, req, jsonCT, ans); r == ReasonNone {
			t.Errorf("answer returning document %s for the client's \"x\\ud800y\": stored", doc)
		}
	}
}

// The same text spelled with other escapes is the client's text.
func TestRerankDocumentSameTextOtherEscapesIsTheClientsText(t *testing.T) {
	req := `{"model":"rr-1","query":"q","documents":["x\ud800y","ab"]}`
	for _, docs := range [][2]string{{`"x\uD800y"`, `"a\u0062"`}, {`{"text":"x\ud800y"}`, `"ab"`}} {
		ans := `{"results":[{"index":0,"relevance_score":0.9,"document":` + docs[0] + `},{"index":1,"relevance_score":0.1,"document":` + docs[1] + `}]}`
		if r := storeVerdict(t, rerankCfg, "rerank", alice, req, jsonCT, ans); r != ReasonNone {
			t.Errorf("answer returning documents %s, %s: %s, want stored", docs[0], docs[1], verdict(r))
		}
	}
}
