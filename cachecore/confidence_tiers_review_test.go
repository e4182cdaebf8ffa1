package cachecore

import (
	"strings"
	"testing"
	"time"
)

// Review Z153 (confidence tiers). README `confidence`: "TTL by score"; the
// feature exists so that "low confidence gets short TTLs or none". A
// configuration whose higher tier has a shorter ttl than a lower one
// (here 0.9 → 1m, 0.6 → 1h) is accepted and inverts that: an answer of
// score 0.61 is served for an hour while one of 0.95 lives a minute. No
// reading of a score makes that useful (below the lowest tier nothing is
// stored, so the scale cannot be an uncertainty either); it is a
// mis-ordered configuration and should be refused, as two tiers sharing a
// min are.
func TestConfidenceTierOfHigherMinWithShorterTTLIsAConfigError(t *testing.T) {
	cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,` +
		`"confidence":{"path":"score","tiers":[{"min":0.9,"ttl":"1m"},{"min":0.6,"ttl":"1h"}]}}]}`
	c, err := ParseConfig([]byte(cfg))
	if err == nil {
		env := newEnv(t, cfg)
		lo := env.cache.AdmitBody(&Request{Route: env.route("cls")}, jsonCT, []byte(`{"label":"cat","score":0.61}`))
		hi := env.cache.AdmitBody(&Request{Route: env.route("cls")}, jsonCT, []byte(`{"label":"cat","score":0.95}`))
		t.Fatalf("inverted tiers accepted (%+v): a score of 0.61 is stored for %v, one of 0.95 for %v; want a config error on confidence.tiers",
			c.Routes[0].Confidence.Tiers, lo.TTL, hi.TTL)
	}
	if !strings.Contains(err.Error(), "confidence.tiers") {
		t.Fatalf("config error does not name confidence.tiers: %v", err)
	}
}

// Review Z153. A shadow comparison counts a fresh answer of low
// confidence as the model's answer (shadow.go: "One of low confidence is
// the model's answer still, and compared"), so a classifier whose label
// flipped (cat at 0.95 cached for the 1h tier, the model now answering
// dog at 0.3) counts a divergence. But the diverged entry is only
// "replaced by the fresh answer at once if it passes admission", and a
// low-confidence answer does not: the entry the model now contradicts is
// served, as a fresh hit, for the rest of its hour. Expected: the diverged
// entry is no longer served (removed when its replacement cannot be
// stored), so the next request asks the model.
func TestShadowDivergenceByLowConfidenceAnswerKeepsServingContradictedEntry(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"u","routes":[{"name":"cls","kind":"classify","path_exact":"/v1/classify","shared":true,`+
		`"confidence":{"path":"score","tiers":[{"min":0.9,"ttl":"1h"},{"min":0.6,"ttl":"1m"}]},`+
		`"shadow":{"sample":1,"min_samples":100,"max_divergence":0.5}}]}`)
	const q = `{"model":"clf","input":"a photo"}`
	req, _ := env.lookup("cls", nil, q)
	env.fill(req, jsonCT, `{"label":"cat","score":0.95}`, 10)

	hit, d := env.lookup("cls", nil, q)
	if d != Serve {
		t.Fatalf("setup: not a hit: %v", d)
	}
	fresh := []byte(`{"label":"dog","score":0.3}`)
	if agree, ok := env.cache.compareFresh(hit, jsonCT, fresh); !ok || agree {
		t.Fatalf("setup: the flipped label is not counted a divergence (agree=%v comparable=%v)", agree, ok)
	}
	acts := env.cache.Shadow(hit, hdr(":method", "POST", ":path", "/v1/classify"))
	if len(acts) == 0 || acts[0].Call == nil {
		t.Fatalf("setup: no shadow call: %+v", acts)
	}
	acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: fresh})

	env.clock.Advance(time.Minute) // a minute on: the 1h tier's entry is still fresh
	again, d := env.lookup("cls", nil, q)
	if d == Serve {
		t.Fatalf("after the shadow saw the model answer dog (low confidence), the cached %s is still served as a hit", again.Entry.Body)
	}
}

// Review Z153 (kinds.go). A classify route's default shadow comparator is
// `label` on the path `label`. Text Embeddings Inference's /predict — the
// common classifier server — answers a top-level array
// ([{"label":…,"score":…},…]), which holds no member `label`: neither
// answer has the path, and compareValues counts that as agreement. Two
// answers with different labels then "agree": shadow.agree grows, no
// divergence is ever seen, and a swapped model is never invalidated.
// Expected: an answer in which no compared path exists, in either answer,
// is not counted as agreement (a divergence or shadow.errors).
func TestShadowClassifyDefaultAgreesOnTopLevelArrayAnswersWithOtherLabels(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"u","routes":[{"name":"cls","kind":"classify","path_exact":"/predict","shared":true,`+
		`"confidence":{"path":"0.score","tiers":[{"min":0.5,"ttl":"1h"}]},`+
		`"shadow":{"sample":1,"min_samples":100,"max_divergence":0.5}}]}`)
	const q = `{"inputs":"I like you."}`
	req, _ := env.lookup("cls", nil, q)
	env.fill(req, jsonCT, `[{"label":"POSITIVE","score":0.99},{"label":"NEGATIVE","score":0.01}]`, 10)
	hit, d := env.lookup("cls", nil, q)
	if d != Serve {
		t.Fatalf("setup: not a hit: %v", d)
	}
	fresh := []byte(`[{"label":"NEGATIVE","score":0.98},{"label":"POSITIVE","score":0.02}]`)
	if env.cache.AdmitBody(hit, jsonCT, fresh).Reason != ReasonNone {
		t.Fatal("setup: the fresh answer is not admissible")
	}
	if agree, ok := env.cache.compareFresh(hit, jsonCT, fresh); agree && ok {
		t.Fatal("POSITIVE cached, NEGATIVE fresh: counted as agreement (no compared path exists in either TEI answer)")
	}
}
