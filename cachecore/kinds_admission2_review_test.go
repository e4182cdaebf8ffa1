package cachecore

import "testing"

// Review Z211: what classify, json and rerank routes store, and the rules
// and confidence tiers that decide it.

// README (Validation rules): "These rules, which no answer can pass, are
// config errors naming them: … a type other than number on a path ending
// in # (a length) …", and equals -1 or 1.5 on a length are refused
// (isLength, reviews Z171/Z178): a length is a whole number, not negative.
// Bounds that no whole non-negative number meets load all the same:
// {"path":"labels.#","max":-1} or {"min":0.2,"max":0.8} hold on no answer,
// and the route silently stores nothing (refused.validation on every
// answer). Expected: a config error, as equals -1 on the same path is.
func TestKindsAdmission2LengthBoundsNoLengthMeetsAreAConfigError(t *testing.T) {
	for name, rule := range map[string]string{
		"max below zero":         `{"path":"labels.#","max":-1}`,
		"no whole number within": `{"path":"labels.#","min":0.2,"max":0.8}`,
	} {
		t.Run(name, func(t *testing.T) {
			cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[` + rule + `]}]}`
			if _, err := ParseConfig([]byte(cfg)); err == nil {
				r := storeVerdict(t, cfg, "cls", nil, `{"model":"m","inputs":"x"}`, jsonCT, `{"labels":["cat"]}`)
				t.Fatalf("rule %s on a length loads; no length meets it ({\"labels\":[\"cat\"]}: %s)", rule, verdict(r))
			}
		})
	}
}

// README (Validation rules): "confidence.path may not cross or end at
// every element or match (it would read a list, never one score)". A path
// that ends at a multipath ({score}, [score]) reads an object or an array
// whatever the answer says, never one score, yet loads: every answer is
// refused.no_confidence and the route stores nothing. A rule on such a
// path asking a scalar type or numeric bounds likewise holds on no answer.
// Expected: config errors, as a path crossing every element is.
func TestKindsAdmission2PathEndingAtAMultipathReadsNoScalarIsAConfigError(t *testing.T) {
	for name, tc := range map[string]struct{ policy string }{
		"confidence object":   {`"confidence":{"path":"{score}","tiers":[{"min":0.5,"ttl":"1m"}]}`},
		"confidence array":    {`"confidence":{"path":"[score]","tiers":[{"min":0.5,"ttl":"1m"}]}`},
		"rule type string":    {`"validate":[{"path":"{label}","type":"string","non_empty":true}]`},
		"rule min on a score": {`"validate":[{"path":"[score]","min":0.5}]`},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,` + tc.policy + `}]}`
			if _, err := ParseConfig([]byte(cfg)); err == nil {
				r := storeVerdict(t, cfg, "cls", nil, `{"model":"m","inputs":"x"}`, jsonCT, `{"label":"cat","score":0.97}`)
				t.Fatalf("%s loads; a path ending at a multipath reads an object or array, never a scalar ({\"label\":\"cat\",\"score\":0.97}: %s)", tc.policy, verdict(r))
			}
		})
	}
}

// README (finish_reasons): "on a route of another kind (json, classify), an
// answer with a choices array is held to it too, each choice's
// finish_reason"; README (Hostile bytes): two names equal but for case are
// one member to Go's encoding/json, and a rerank result's members "in
// another case" are read as those members (review Z97). A json route's
// check reads "choices" by its exact name only: an answer whose one
// choices array is spelled "Choices" (a Go server's struct without a json
// tag marshals it so; every Go client reads it as choices) passes with a
// truncated finish_reason "length" and is stored and served to everyone.
// The chat kind refuses the same answer (foreign_shape). Expected: held to
// finish_reasons (refused.finish_reason), or not stored.
func TestKindsAdmission2JSONRouteFinishReasonsSkipsChoicesInAnotherCase(t *testing.T) {
	cfg := `{"routes":[{"name":"j","kind":"json","path_prefix":"/v1","shared":true,"key_fields":["model","messages"],"finish_reasons":["stop"]}]}`
	req := `{"model":"m","messages":[{"role":"user","content":"write a haiku"}]}`
	exact := `{"choices":[{"index":0,"message":{"role":"assistant","content":"Autumn moonlight—"},"finish_reason":"length"}]}`
	if r := storeVerdict(t, cfg, "j", nil, req, jsonCT, exact); r != ReasonFinishReason {
		t.Fatalf("control: a truncated choice under \"choices\": %s, want refused.finish_reason", verdict(r))
	}
	cased := `{"Choices":[{"index":0,"message":{"role":"assistant","content":"Autumn moonlight—"},"finish_reason":"length"}]}`
	if r := storeVerdict(t, cfg, "j", nil, req, jsonCT, cased); r == ReasonNone {
		t.Fatalf("a truncated choice (finish_reason length) under \"Choices\" was stored on a route whose finish_reasons is [stop]; want refused.finish_reason")
	}
}
