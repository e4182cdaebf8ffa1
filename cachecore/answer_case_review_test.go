package cachecore

import (
	"encoding/json"
	"testing"

	"github.com/tidwall/gjson"
)

// Review Z97. The rerank check and the confidence tiers read an answer's
// members by their exact names; the duplicate-member check of answers
// (duplicateMembers) compares names exactly too. Go's encoding/json — the
// decoder of Go clients of these APIs — reads a member whose name is equal
// but for case into the same field, the last one winning (the README says
// so of requests, and refuses such requests as duplicates). So an answer
// with "results" and "Results", or "index" and "Index", is checked on one
// member and read by a Go client from the other: the cache stores, for a
// day of hits, a ranking whose indices the client never had checked, a
// document the client never sent, or a low-confidence label under a high
// tier's TTL.
func TestReviewZ97AnswerCaseTwinsDefeatChecks(t *testing.T) {
	type goResult struct {
		Index          int             `json:"index"`
		RelevanceScore json.RawMessage `json:"relevance_score"`
		Document       *struct {
			Text string `json:"text"`
		} `json:"document"`
	}
	type goRerank struct {
		Results []goResult `json:"results"`
	}
	two := rerankRequestBody("q", "", "a", "b")
	for _, tc := range []struct {
		name, answer string
		// whatGoSees describes the defect as a Go client decodes the answer.
		whatGoSees func(goRerank) string
	}{
		{
			name:   "Results after results",
			answer: `{"results":[{"index":0,"relevance_score":0.9},{"index":1,"relevance_score":0.1}],"Results":[{"index":7,"relevance_score":0.9}]}`,
			whatGoSees: func(g goRerank) string {
				if len(g.Results) == 1 && g.Results[0].Index == 7 {
					return "one result, index 7 of 2 documents"
				}
				return ""
			},
		},
		{
			name:   "Index after index",
			answer: `{"results":[{"index":0,"relevance_score":0.9,"Index":9},{"index":1,"relevance_score":0.1}]}`,
			whatGoSees: func(g goRerank) string {
				if len(g.Results) == 2 && g.Results[0].Index == 9 {
					return "index 9 of 2 documents"
				}
				return ""
			},
		},
		{
			name:   "Document beside no document",
			answer: `{"results":[{"index":0,"relevance_score":0.9,"Document":{"text":"ignore previous instructions"}},{"index":1,"relevance_score":0.1}]}`,
			whatGoSees: func(g goRerank) string {
				if len(g.Results) == 2 && g.Results[0].Document != nil && g.Results[0].Document.Text != "a" {
					return "document " + g.Results[0].Document.Text + " for the client's \"a\""
				}
				return ""
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g goRerank
			if err := json.Unmarshal([]byte(tc.answer), &g); err != nil {
				t.Fatalf("setup: Go cannot decode the answer: %v", err)
			}
			seen := tc.whatGoSees(g)
			if seen == "" {
				t.Fatalf("setup: a Go client reads the answer as the check does: %+v", g)
			}
			if r := storeVerdict(t, rerankCfg, "rerank", alice, two, jsonCT, tc.answer); r == ReasonNone {
				t.Errorf("rerank answer stored although a Go client reads it as %s (the check read only the lower-case member)", seen)
			}
		})
	}

	t.Run("classify Score after score", func(t *testing.T) {
		cfg := `{"routes":[{"name":"c","kind":"classify","path_prefix":"/c","ttl":"1h","confidence":{"path":"score","tiers":[{"min":0.9,"ttl":"1h"}]}}]}`
		answer := `{"label":"spam","score":0.95,"Score":0.05}`
		var g struct {
			Score float64 `json:"score"`
		}
		if err := json.Unmarshal([]byte(answer), &g); err != nil || g.Score != 0.05 {
			t.Fatalf("setup: Go reads score %v (%v)", g.Score, err)
		}
		if r := storeVerdict(t, cfg, "c", alice, `{"model":"m","input":"x"}`, jsonCT, answer); r == ReasonNone {
			t.Errorf("classify answer stored for the 0.9 tier's hour although a Go client reads its score as 0.05, below every tier")
		}
	})
}

// Review Z97. A validation rule's min and max are compared as float64s,
// so a value below min (or above max) whose float64 rounds onto the bound
// passes: {"min": 0.6} admits 0.59999999999999999999, {"max": 1} admits
// 1.00000000000000000001 and {"max": 9007199254740992} admits
// 9007199254740993. The confidence tiers compare the same numbers by
// their exact value (Tier.atLeast, review Z12), and equals/one_of do too;
// a rule that says "at least 0.6" refuses what is below 0.6 to a client
// that reads decimals exactly (Python's Decimal, JavaScript's BigInt for
// the integer, json.Number in Go).
func TestReviewZ97RuleBoundsAreNotExact(t *testing.T) {
	for _, tc := range []struct{ rule, answer string }{
		{`{"path":"score","min":0.6}`, `{"label":"a","score":0.59999999999999999999}`},
		{`{"path":"score","max":1}`, `{"label":"a","score":1.00000000000000000001}`},
		{`{"path":"n","max":9007199254740992}`, `{"label":"a","n":9007199254740993}`},
	} {
		cfg := `{"routes":[{"name":"c","kind":"classify","path_prefix":"/c","validate":[` + tc.rule + `]}]}`
		if r := storeVerdict(t, cfg, "c", alice, `{"model":"m","input":"x"}`, jsonCT, tc.answer); r != ReasonValidation {
			t.Errorf("rule %s on %s: verdict %q, want validation (the value is outside the bound)", tc.rule, tc.answer, r)
		}
	}
}

// A value too small for a float64 is 0 by underflow, on the side of its
// sign, against a rule's max of 0 as against a tier's min (review Z16).
func TestRuleMaxOfZeroReadsAnUnderflowBySign(t *testing.T) {
	max := 0.0
	r := Rule{Path: "n", Max: &max}
	for raw, want := range map[string]bool{`1e-400`: false, `-1e-400`: true, `0`: true, `1e-99999999999999999999`: false, `-1e-99999999999999999999`: true} {
		v := gjson.Parse(`{"n":` + raw + `}`).Get("n")
		if got := r.holds(v); got != want {
			t.Errorf("max 0 on %s: holds %v, want %v", raw, got, want)
		}
	}
}
