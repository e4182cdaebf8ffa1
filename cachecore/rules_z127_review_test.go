package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Review Z127. README, "Hostile bytes": a model's answer is parsed with work
// linear in its size, and oneOfHolds says so ("Work is linear in v, not in
// v times one_of's values", review Z12). That holds for scalars, looked up
// in a set; an object (or array) is compared with every object of one_of
// in turn, jsonEqual building a map of the answer's members at each
// comparison. A classifier route whose allowlist is of objects ({"label",
// "group"} pairs, or {"label"} as here, at "#.prediction") judges each element of a 128 KiB
// answer against all 1,000 of them: about 1,000 times the same rule with
// one allowed value — seconds of a worker's CPU natively per answer, more
// in V8. The scalar allowlist of TestRuleOneOfWorkIsLinearInTheAnswer,
// wrapped in an object, is back to the cost that test refused.
func TestReviewZ127RuleOneOfObjectsWorkIsLinearInTheAnswer(t *testing.T) {
	admit := func(n int) time.Duration {
		var labels []string
		for i := 0; i < n; i++ {
			labels = append(labels, fmt.Sprintf(`{"label":"n%04d"}`, i))
		}
		cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[
			{"path":"#.prediction","one_of":[` + strings.Join(labels, ",") + `]}]}]}`
		env := newEnv(t, cfg)
		body := z127PredictionAnswer(DefaultMaxEntryBytes, fmt.Sprintf(`{"label":"n%04d"}`, n-1)) // the last allowed one
		req := env.request("cls", nil, `{"model":"m","input":"x"}`)
		start := time.Now()
		a := env.cache.AdmitBody(req, jsonCT, body)
		took := time.Since(start)
		if a.Reason != ReasonNone {
			t.Fatalf("one_of of %d: %s, want stored (every element is allowed)", n, verdict(a.Reason))
		}
		return took
	}
	one := admit(1)
	many := admit(1000)
	t.Logf("one_of of 1 object: %v; of 1,000 objects: %v", one, many)
	if many > 250*time.Millisecond && many > 20*one {
		t.Fatalf("judging a %d-byte answer against a one_of of 1,000 objects took %v (%.0f× the same rule with one object, %v): work grows with one_of × elements, not with the answer's size",
			DefaultMaxEntryBytes, many, float64(many)/float64(one), one)
	}
}

// z127PredictionAnswer is a classifier answer of at most size bytes: an
// array of {"prediction": prediction} objects.
func z127PredictionAnswer(size int, prediction string) []byte {
	var b strings.Builder
	b.WriteString("[")
	elem := `{"prediction":` + prediction + `}`
	for b.Len()+len(elem)+2 < size {
		if b.Len() > 1 {
			b.WriteString(",")
		}
		b.WriteString(elem)
	}
	b.WriteString("]")
	return []byte(b.String())
}
