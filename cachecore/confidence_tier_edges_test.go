package cachecore

import (
	"strings"
	"testing"
)

// Review Z16 (stop 72). README `confidence`: "below the lowest tier (or no score) not
// stored"; the mend (Tier.atLeast) compares a score whose float64 is a
// tier's min by its digits. A score whose exponent decimalOf cannot read
// (beyond 2^40) is taken as at least the min whatever its sign: a negative
// score that rounds to -0 is stored under a tier whose min is 0.
func TestConfidenceNegativeScoreBelowAZeroTier(t *testing.T) {
	env := newEnv(t, `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,`+
		`"confidence":{"path":"score","tiers":[{"min":0.5,"ttl":"1h"},{"min":0,"ttl":"10m"}]}}]}`)
	for _, score := range []string{"-1e-1099511627777", "-1e-1099511627776", "-1e-400"} {
		req := &Request{Route: env.route("cls")}
		a := env.cache.AdmitBody(req, jsonCT, []byte(`{"label":"cat","score":`+score+`}`))
		if a.Reason != ReasonLowConfidence {
			t.Errorf("score %s (below 0, the lowest tier's min): %s ttl %v, want low_confidence", score, verdict(a.Reason), a.TTL)
		}
	}
}

// The same mend compares with the min's shortest float64 decimal, not
// with the min the configuration wrote: a min of 0.60000000000000001
// (float64 0.6) admitted a score of 0.6, which is below it. Such a min is
// now a config error, so the two are one.
func TestConfidenceTierMinWithMoreDigitsThanAFloatIsAConfigError(t *testing.T) {
	cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,` +
		`"confidence":{"path":"score","tiers":[{"min":0.60000000000000001,"ttl":"1h"}]}}]}`
	_, err := ParseConfig([]byte(cfg))
	if err == nil || !strings.Contains(err.Error(), "tiers[0].min: has more digits than a float64 holds") {
		t.Fatalf("a tier min of 0.60000000000000001: %v", err)
	}
	for _, ok := range []string{"0.6", "6e-1", "0.60", "1", "0", "0.95"} {
		if _, err := ParseConfig([]byte(strings.Replace(cfg, "0.60000000000000001", ok, 1))); err != nil {
			t.Fatalf("a tier min of %s: %v", ok, err)
		}
	}
}
