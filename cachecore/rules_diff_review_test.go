package cachecore

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// Review R3 (this session's diff): rules through every element, config
// errors for unsatisfiable rules, jsonEqual at every depth.

// jsonEqual now compares nested numbers as float64: two different integers
// past 2^53 (64-bit ids a "json" route's answers carry) read as one. The
// "json" kind's shadow compares whole answers "exact": a fresh answer whose
// id changed agrees with the cached one, so the diverged entry is never
// replaced. Before the diff, nested numbers were compared by their
// canonical digits (Canonicalize keeps an integer's digits).
func TestShadowExactTellsNestedLargeIntegersApart(t *testing.T) {
	sh := &Shadow{Compare: "exact"}
	cached := gjson.Parse(`{"id":9007199254740993,"ok":true}`)
	fresh := gjson.Parse(`{"id":9007199254740992,"ok":true}`)
	if compareValues(sh, cached, fresh) {
		t.Errorf("shadow exact: %s and %s agree (ids differ by one past 2^53)", cached.Raw, fresh.Raw)
	}
	a, b := gjson.Parse(`[12345678901234567890]`), gjson.Parse(`[12345678901234567891]`)
	if compareValues(sh, a, b) {
		t.Errorf("shadow exact: %s and %s agree", a.Raw, b.Raw)
	}
	// Two numbers past float64's range are not one value either.
	x, y := gjson.Parse(`{"v":1e400}`), gjson.Parse(`{"v":2e400}`)
	if compareValues(sh, x, y) {
		t.Errorf("shadow exact: %s and %s agree", x.Raw, y.Raw)
	}
}

// The same through a rule's equals: a json route pinning a nested id
// stores an answer carrying another id.
func TestRuleEqualsTellsNestedLargeIntegersApart(t *testing.T) {
	cfg := `{"routes":[{"name":"j","kind":"json","path_prefix":"/v1","shared":true,"validate":[
		{"path":"meta","equals":{"tenant_id":9007199254740993}}]}]}`
	ans := `{"meta":{"tenant_id":9007199254740992},"result":"x"}`
	if r := storeVerdict(t, cfg, "j", nil, `{"q":"x"}`, jsonCT, ans); r != ReasonValidation {
		t.Fatalf("meta.tenant_id 9007199254740992 against equals 9007199254740993: %s, want refused.validation", verdict(r))
	}
}

// README: "A path through every element of an array holds when the rule
// holds on each element": the diff judges choices.#.x per element because
// gjson's list ([""]) is not empty. A query over every matching element
// (#(...)#) still reads gjson's list: non_empty holds on [""], and an
// answer whose matching prediction has an empty label is stored.
func TestRuleThroughEveryMatchHoldsOnEach(t *testing.T) {
	cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[
		{"path":"predictions.#(score>0.5)#.label","non_empty":true}]}]}`
	ans := `{"predictions":[{"label":"","score":0.97}]}`
	if r := storeVerdict(t, cfg, "cls", nil, `{"model":"m","input":"x"}`, jsonCT, ans); r != ReasonValidation {
		t.Fatalf("%s: %s, want refused.validation (non_empty held on an empty label)", ans, verdict(r))
	}
}

// A satisfiable rule the diff now refuses at start: "non_empty": false
// asks nothing, and {"exists": false, "non_empty": false} held on a missing
// value before (Rule.holds: !r.NonEmpty). The config error says "no other
// predicate can hold", which is false.
func TestRuleExistsFalseBesideNonEmptyFalseLoads(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1","validate":[
		{"path":"choices.0.message.refusal","exists":false,"non_empty":false}]}]}`
	if _, err := ParseConfig([]byte(cfg)); err != nil {
		t.Fatalf("a rule that holds on every answer without a refusal is refused: %v", err)
	}
}

// README: "A rule no answer can pass is a config error naming it". type
// null with non_empty (null is empty) or an equals "" with non_empty can
// pass no answer, and load.
func TestUnsatisfiableRulesAreConfigErrors(t *testing.T) {
	for _, rule := range []string{
		`{"path":"choices.0.message.content","type":"null","non_empty":true}`,
		`{"path":"choices.0.message.content","equals":"","non_empty":true}`,
		`{"path":"usage.total_tokens","equals":3,"min":5}`,
	} {
		cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1","validate":[` + rule + `]}]}`
		_, err := ParseConfig([]byte(cfg))
		if err == nil {
			t.Errorf("%s: loads, though no answer can pass it", rule)
		} else if !strings.Contains(err.Error(), "validate") {
			t.Logf("%s: %v", rule, err)
		}
	}
}

// README: "confidence.path may not cross every element (it would read a
// list, never one score)". A query over every matching element (#(...)#)
// reads a list as well: it loads, and every answer is refused
// (no-confidence).
func TestConfidenceThroughEveryMatchIsAConfigError(t *testing.T) {
	cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,
		"confidence":{"path":"predictions.#(label==\"yes\")#.score","tiers":[{"min":0.5,"ttl":"1h"}]}}]}`
	if _, err := ParseConfig([]byte(cfg)); err == nil {
		r := storeVerdict(t, cfg, "cls", nil, `{"model":"m","input":"x"}`, jsonCT, `{"label":"yes","predictions":[{"label":"yes","score":0.97}]}`)
		t.Fatalf("a confidence path through every matching element loads; an answer scored 0.97: %s", verdict(r))
	}
}
