package cachecore

import "testing"

// Review R4 (diff 475f159..HEAD): unsatisfiable rules, confidence paths.

// README: "A rule no answer can pass is a config error naming it: ... an
// equals (or every one_of value) that fails the rule's other predicates."
// one_of is one of the rule's other predicates, but Rule.passes drops it
// when judging equals: an equals outside its one_of loads, and the route
// then refuses every answer (refused.validation) without a word at start.
func TestRuleEqualsOutsideItsOneOfIsAConfigError(t *testing.T) {
	cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[
		{"path":"label","equals":"yes","one_of":["no","maybe"]}]}]}`
	if _, err := ParseConfig([]byte(cfg)); err == nil {
		r := storeVerdict(t, cfg, "cls", nil, `{"model":"m","input":"x"}`, jsonCT, `{"label":"yes"}`)
		t.Fatalf("equals \"yes\" with one_of [\"no\",\"maybe\"] loads; answer {\"label\":\"yes\"}: %s", verdict(r))
	}
}

// The same claim: non_empty refuses an empty array, max_items 0 refuses
// every other value (non-arrays and longer arrays): no answer passes, the
// rule loads.
func TestRuleNonEmptyWithMaxItemsZeroIsAConfigError(t *testing.T) {
	cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[
		{"path":"labels","non_empty":true,"max_items":0}]}]}`
	if _, err := ParseConfig([]byte(cfg)); err == nil {
		var got []string
		for _, ans := range []string{`{"labels":[]}`, `{"labels":["a"]}`, `{"labels":"a"}`} {
			got = append(got, ans+": "+verdict(storeVerdict(t, cfg, "cls", nil, `{"model":"m","input":"x"}`, jsonCT, ans)))
		}
		t.Fatalf("non_empty with max_items 0 loads, though no answer passes it: %v", got)
	}
}

// README: "confidence.path may not cross every element or match (it would
// read a list, never one score)". eachAt needs more path after the
// query's closing '#': a confidence path ending in every match
// (scores.#(>0.5)#) loads, reads gjson's list, and every answer is refused
// (no score) though its score passes the tier.
func TestConfidenceEndingInEveryMatchIsAConfigError(t *testing.T) {
	cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,
		"confidence":{"path":"scores.#(>0.5)#","tiers":[{"min":0.5,"ttl":"1h"}]}}]}`
	if _, err := ParseConfig([]byte(cfg)); err == nil {
		r := storeVerdict(t, cfg, "cls", nil, `{"model":"m","input":"x"}`, jsonCT, `{"scores":[0.97]}`)
		t.Fatalf("a confidence path ending in every match loads; an answer scored 0.97: %s", verdict(r))
	}
}
