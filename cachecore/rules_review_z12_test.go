package cachecore

import (
	"fmt"
	"github.com/tidwall/gjson"
	"math/big"
	"strings"
	"testing"
	"time"
)

// Review Z12 (stop 72): classify/json routes, confidence tiers, the rules
// engine. Each test failed before its mend.

// z12LabelAnswer is a classifier answer of at most size bytes: an array of
// {"label": label} objects.
func z12LabelAnswer(size int, label string) []byte {
	var b strings.Builder
	b.WriteString("[")
	elem := `{"label":"` + label + `"}`
	for b.Len()+len(elem)+2 < size {
		if b.Len() > 1 {
			b.WriteString(",")
		}
		b.WriteString(elem)
	}
	b.WriteString("]")
	return []byte(b.String())
}

// README, "Hostile bytes": a model's answer is parsed with work linear in
// its size. A classifier route with an allowlist of its labels (one_of of
// ImageNet's 1,000 classes, say) judges each element of "#.label" against
// every value of one_of, canonicalising both sides at each comparison: a
// 128 KiB answer (the default max_entry_bytes) of labels that are all
// allowed costs about 1,000 times the same rule with one allowed value —
// seconds of a worker's CPU natively, more in V8, per answer.
func TestRuleOneOfWorkIsLinearInTheAnswer(t *testing.T) {
	admit := func(n int) time.Duration {
		var labels []string
		for i := 0; i < n; i++ {
			labels = append(labels, fmt.Sprintf(`"n%04d"`, i))
		}
		cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[
			{"path":"#.label","one_of":[` + strings.Join(labels, ",") + `]}]}]}`
		env := newEnv(t, cfg)
		body := z12LabelAnswer(DefaultMaxEntryBytes, fmt.Sprintf("n%04d", n-1)) // the last allowed label
		req := env.request("cls", nil, `{"model":"m","input":"x"}`)
		start := time.Now()
		a := env.cache.AdmitBody(req, jsonCT, body)
		took := time.Since(start)
		if a.Reason != ReasonNone {
			t.Fatalf("one_of of %d: %s, want stored (every label is allowed)", n, verdict(a.Reason))
		}
		return took
	}
	one := admit(1)
	many := admit(1000)
	t.Logf("one_of of 1 value: %v; of 1,000 values: %v", one, many)
	if many > 250*time.Millisecond && many > 20*one {
		t.Fatalf("judging a %d-byte answer against a one_of of 1,000 labels took %v (%.0f× the same rule with one label, %v): work grows with one_of × elements, not with the answer's size",
			DefaultMaxEntryBytes, many, float64(many)/float64(one), one)
	}
}

// README, "Validation rules": a rule is a gjson path, and the parser
// refuses only a multipath "left open" — a closed one ([…], {…}) is a
// usable path. A '#' inside one is taken by eachAt for a path through
// every element: the rule is judged on "{kinds:data" (a path matching
// nothing), so a rule that holds on the answer gjson reads refuses every
// answer, silently (RATIONALE, "A configuration is refused for what no
// request could match").
func TestRuleMultipathWithEveryElementInside(t *testing.T) {
	cfg := `{"routes":[{"name":"j","kind":"json","path_prefix":"/v1","shared":true,"validate":[
		{"path":"{kinds:data.#.object}","equals":{"kinds":["embedding","embedding"]}}]}]}`
	ans := `{"object":"list","data":[{"object":"embedding"},{"object":"embedding"}]}`
	if r := storeVerdict(t, cfg, "j", nil, `{"model":"m","input":"x"}`, jsonCT, ans); r != ReasonNone {
		t.Fatalf("an answer whose {kinds:data.#.object} is {\"kinds\":[\"embedding\",\"embedding\"]}: %s, want stored (the rule is judged on the multipath's prefix, which names nothing)", verdict(r))
	}
}

// README, "Validation rules": "a path ending in # is the array's length"
// (a number), and rules no answer can pass are config errors — among them
// min_items/max_items on a type other than array. On a path ending in
// '#' the value is never an array, so min_items refuses every answer the
// route gets; the parser takes it.
func TestRuleItemBoundsOnALengthPathIsAConfigError(t *testing.T) {
	cfg := `{"routes":[{"name":"j","kind":"json","path_prefix":"/v1","shared":true,"validate":[
		{"path":"predictions.#","min_items":1}]}]}`
	if _, err := ParseConfig([]byte(cfg)); err == nil {
		ans := `{"predictions":[{"label":"cat","score":0.9}]}`
		r := storeVerdict(t, cfg, "j", nil, `{"model":"m","input":"x"}`, jsonCT, ans)
		t.Fatalf("min_items on predictions.# (a length, never an array) loads; an answer with one prediction: %s — the route can never store", verdict(r))
	}
}

// README, "Policy": confidence "below the lowest tier (or no score) not
// stored"; a tier's TTL is for scores ≥ its min. A score written with
// more digits than a float64 holds is compared after rounding: one below
// the lowest min is stored, and one below a tier's min gets that tier's
// longer TTL. equals/one_of compare numbers by exact value
// ("9007199254740993 is not 9007199254740992"); min does not.
func TestConfidenceBelowATierByItsLastDigits(t *testing.T) {
	env := newEnv(t, testConfig) // classify: 0.9 → 1h, 0.6 → 10m
	for _, tc := range []struct {
		score   string
		want    Reason
		wantTTL time.Duration
	}{
		{"0.59999999999999999999", ReasonLowConfidence, 0},
		{"0.89999999999999999999", ReasonNone, 10 * time.Minute},
	} {
		req := &Request{Route: env.route("classify")}
		a := env.cache.AdmitBody(req, jsonCT, []byte(`{"label":"cat","score":`+tc.score+`}`))
		if a.Reason != tc.want || a.TTL != tc.wantTTL {
			t.Errorf("score %s: %s ttl %v, want %s ttl %v (the score is below the tier's min)", tc.score, verdict(a.Reason), a.TTL, verdict(tc.want), tc.wantTTL)
		}
	}
}

// one_of's set (scalarKey) finds two scalars equal exactly when jsonEqual
// does: numbers by value, strings by their canonical form.
func TestScalarKeyAgreesWithJSONEqual(t *testing.T) {
	vals := []string{`1`, `1.0`, `1e0`, `10e-1`, `-0`, `0`, `0.0`, `9007199254740993`, `9007199254740992`,
		`1e400`, `2e400`, `1e99999999999999`, `"é"`, `"\u00e9"`, `"e\u0301"`, `"a"`, `"\/"`, `"/"`, `true`, `false`, `null`,
		`"1"`, `"true"`, `"null"`, `""`, `"\ud800"`}
	for _, a := range vals {
		for _, b := range vals {
			ra, rb := gjson.Parse(a), gjson.Parse(b)
			ka, oka := scalarKey(ra)
			kb, okb := scalarKey(rb)
			if same := oka && okb && ka == kb; same != jsonEqual(ra, rb) {
				t.Errorf("%s and %s: scalarKey equal %v, jsonEqual %v", a, b, same, jsonEqual(ra, rb))
			}
		}
	}
}

// compareDecimal orders numbers as exact rationals do.
func TestCompareDecimalOrdersAsRationals(t *testing.T) {
	nums := []string{"0", "-0", "0.0", "1", "1.0", "10", "9.99", "0.6", "0.59999999999999999999", "0.60000000000000000001",
		"-0.6", "-0.59999999999999999999", "6e-1", "60e-2", "1e3", "999", "1000.5", "-1e3", "-999", "123456789012345678901234567890",
		"123456789012345678901234567891", "1e-7", "0.0000001", "-1e-7", "5", "-5"}
	for _, a := range nums {
		for _, b := range nums {
			da, _ := decimalOf(a)
			db, _ := decimalOf(b)
			ra, _ := new(big.Rat).SetString(a)
			rb, _ := new(big.Rat).SetString(b)
			if got, want := compareDecimal(da, db), ra.Cmp(rb); got != want {
				t.Errorf("compareDecimal(%s, %s) = %d, want %d", a, b, got, want)
			}
		}
	}
}
