package cachecore

import (
	"strings"
	"testing"
)

func verdict(r Reason) string {
	if r == ReasonNone {
		return "stored"
	}
	return "refused." + r.String()
}

// Review (area K): validation rules and confidence.

// A rule whose path crosses an array with gjson's '#' (README: each rule
// is a gjson path; rebuiltOnStreams names a choice "by its number or
// '#'") is judged on the array gjson builds of the elements' values, not
// on the values: "exists": false refuses every answer (the array, "[]"
// when no element has the member, exists), "exists": true holds on every
// answer whose elements all lack it. RATIONALE, "A configuration is
// refused for what no request could match": a rule that refuses every
// answer or passes every answer silently is a defect.
func TestRuleThroughEveryElementExistsFalse(t *testing.T) {
	cfg := `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1","validate":[
		{"path":"choices.#.message.refusal","exists":false}]}]}`
	// No choice carries a refusal: the rule holds on every choice.
	if r := storeVerdict(t, cfg, "chat", alice, chatRequest("hi"), jsonCT, chatResponse("Hello.")); r != ReasonNone {
		t.Fatalf("an answer without any refusal: %s, want stored (the rule on choices.#.message.refusal refuses every answer)", verdict(r))
	}
}

func TestRuleThroughEveryElementExistsTrue(t *testing.T) {
	cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[
		{"path":"predictions","min_items":1},
		{"path":"predictions.#.label","exists":true}]}]}`
	// No prediction has a label: the path names nothing.
	ans := `{"predictions":[{"score":0.97}]}`
	if r := storeVerdict(t, cfg, "cls", nil, `{"model":"m","input":"x"}`, jsonCT, ans); r != ReasonValidation {
		t.Fatalf("an answer none of whose predictions has a label: %s, want refused.validation (exists:true held on a path that names nothing)", verdict(r))
	}
}

func TestRuleThroughEveryElementNonEmpty(t *testing.T) {
	cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[
		{"path":"predictions.#.label","non_empty":true}]}]}`
	for _, ans := range []string{
		`{"predictions":[{"label":""}]}`,
		`{"predictions":[{"label":null},{"label":" "}]}`,
	} {
		if r := storeVerdict(t, cfg, "cls", nil, `{"model":"m","input":"x"}`, jsonCT, ans); r != ReasonValidation {
			t.Errorf("%s: %s, want refused.validation (non_empty held though every label is empty)", ans, verdict(r))
		}
	}
}

// README: equals / one_of compare "by JSON meaning", and a top-level 1
// equals 1.0 (TestRules, "equals number, other form"); the same numbers
// one level down are not equal, so a rule's verdict depends on where the
// number sits.
func TestRuleEqualsNumberMeaningNested(t *testing.T) {
	for _, tc := range []struct{ rule, body string }{
		{`"equals":1`, `{"v":1.0}`}, // holds today
		{`"equals":[1]`, `{"v":[1.0]}`},
		{`"equals":{"a":1}`, `{"v":{"a":1.0}}`},
		{`"one_of":[[0.5,1]]`, `{"v":[5e-1,1]}`},
	} {
		cfg := mustParse(t, `{"routes":[{"name":"r","kind":"json","path_prefix":"/","shared":true,
			"validate":[{"path":"v",`+tc.rule+`}]}]}`)
		if !cfg.Routes[0].Rules[0].Holds([]byte(tc.body)) {
			t.Errorf("{%s} on %s does not hold", tc.rule, tc.body)
		}
	}
}

// A rule that no body can satisfy refuses every answer of its route
// silently (only refused.validation counts it). RATIONALE ("A
// configuration is refused for what no request could match") makes such
// values config errors naming their field.
func TestRuleUnsatisfiableIsAConfigError(t *testing.T) {
	for _, rule := range []string{
		// Holds: a missing value satisfies only a bare exists:false, a
		// present one never satisfies exists:false.
		`{"path":"error","exists":false,"type":"null"}`,
		`{"path":"error","exists":false,"non_empty":true}`,
		// min/max need a number; min_items/max_items an array.
		`{"path":"label","type":"string","min":0}`,
		`{"path":"labels","type":"object","min_items":1}`,
	} {
		_, err := ParseConfig([]byte(`{"routes":[{"name":"r","kind":"json","path_prefix":"/","shared":true,"validate":[` + rule + `]}]}`))
		if err == nil || !strings.Contains(err.Error(), "validate[0]") {
			t.Errorf("%s: err = %v, want an error naming validate[0]", rule, err)
		}
	}
}

// confidence.path is checked for its syntax only (RATIONALE: it "was not
// checked at all" once, and a path that matches nothing refused every
// answer). A path through '#' and on (predictions.#.score) always reads an
// array, never a number: the route accepts it and then refuses every
// answer as refused.no_confidence, however confident.
func TestConfidencePathThroughEveryElementIsAConfigError(t *testing.T) {
	cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,
		"confidence":{"path":"predictions.#.score","tiers":[{"min":0.5,"ttl":"1m"}]}}]}`
	if _, err := ParseConfig([]byte(cfg)); err != nil {
		return // refused at start: what the test asks for
	}
	ans := `{"predictions":[{"label":"cat","score":0.99}]}`
	r := storeVerdict(t, cfg, "cls", nil, `{"model":"m","input":"x"}`, jsonCT, ans)
	t.Fatalf("config accepted; a single prediction scored 0.99: %s (every answer of the route is refused)", verdict(r))
}

// Moved from TestRules ("missing fails exists false with type") when such
// a rule became a configuration error: Holds still refuses on it, built by
// hand as no configuration now builds it.
func TestRuleExistsFalseWithTypeFailsOnMissing(t *testing.T) {
	f := false
	r := Rule{Path: "v", Exists: &f, Type: "string"}
	if r.Holds([]byte(`{}`)) {
		t.Fatal(`Holds({}) = true, want false`)
	}
}
