package cachecore

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// Review Z182 (lint parity 2): the start-time refusals of review Z171 —
// gjson literals (!…) in rule and confidence paths, % patterns with a star
// inside their text — are what `modelcache lint` reports too (it runs
// ParseConfig). Each test below names a form of the same path gjson reads
// that gjsonPathOK lets through, so both the filter and the linter accept
// what README says is refused.

// z182Confidence is a classifier route whose confidence path is p.
func z182Confidence(p string) string {
	return `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[{"path":"label","type":"string"}],` +
		`"confidence":{"path":"` + p + `","tiers":[{"min":0.9,"ttl":"1h"}]}}]}`
}

func z182Rule(rule string) string {
	return `{"routes":[{"name":"cls","kind":"classify","path_prefix":"/v1","shared":true,"validate":[{"path":"label","type":"string"},` + rule + `]}]}`
}

// z182Store stores ans on the cls route of cfg and returns what happened.
func z182Store(t *testing.T, cfg, ans string) Stored {
	t.Helper()
	env := newEnv(t, cfg)
	req := env.request("cls", nil, `{"model":"m","input":"x"}`)
	if req.Bypassed() {
		t.Fatalf("bypassed: %s", req.Reason)
	}
	return env.cache.AdmitAndStore(req, 200, jsonCT, []byte(ans), OriginUpstream, 10)
}

// README (model_path: "every gjson path of the configuration: … no `!`
// literal"), review Z171: "a confidence read every answer as its score".
// gjsonPathOK refuses a path led by '!' and a '[' or '{' followed by '!',
// but not a multipath's later member: after ',' it checks '!' only at
// depth 0 — outside any multipath, where ',' is an ordinary key character
// (so a member name "a,!b" is refused instead) — and never after ':' (the
// form gjson's SYNTAX.md shows: {name.first,"employed":!true}), nor after
// the '.' that follows a multipath or '#' (gjson reads the rest against
// the result, a literal there too). A confidence path
// "[score,!0.99].1", "{s:!0.99}.s" or "[score].!0.99" loads, and every
// answer, its own score 0.1, is stored in the top tier (1h). Expected: a
// config error naming routes[0].confidence.path.
func TestLintParity2MultipathLiteralConfidencePathIsRefused(t *testing.T) {
	const ans = `{"label":"cat","score":0.1}`
	for _, p := range []string{`[score,!0.99].1`, `{s:!0.99}.s`, `{\"s\":!0.99}.s`, `[score].!0.99`} {
		t.Run(p, func(t *testing.T) {
			cfg := z182Confidence(p)
			_, err := ParseConfig([]byte(cfg))
			if err == nil {
				st := z182Store(t, cfg, ans)
				t.Fatalf("confidence path %s (a gjson literal, not the answer's score) loads; the answer %s, score 0.1 below every tier: %s, ttl %v",
					p, ans, verdict(st.Reason), st.Admission.TTL)
			}
			if !strings.Contains(err.Error(), "routes[0].confidence.path") {
				t.Fatalf("refused, but not at routes[0].confidence.path: %v", err)
			}
		})
	}
}

// The same for a rule: {"path":"{ok:!true}.ok","equals":true} reads the
// literal, holds on every answer, and stores one that fails the check the
// operator meant. Expected: a config error naming the rule's path.
func TestLintParity2MultipathLiteralRulePathIsRefused(t *testing.T) {
	for _, p := range []string{`{ok:!true}.ok`, `[label,!true].1`, `[label].!true`} {
		t.Run(p, func(t *testing.T) {
			cfg := z182Rule(`{"path":"` + p + `","equals":true}`)
			_, err := ParseConfig([]byte(cfg))
			if err == nil {
				st := z182Store(t, cfg, `{"label":"cat"}`)
				t.Fatalf("rule path %s (a gjson literal) loads and holds on every answer: {\"label\":\"cat\"}: %s", p, verdict(st.Reason))
			}
			if !strings.Contains(err.Error(), "routes[0].validate[1].path") {
				t.Fatalf("refused, but not at routes[0].validate[1].path: %v", err)
			}
		})
	}
}

// gjson still reads a query written in its pre-1.3 brackets, #[…]
// (SYNTAX.md: "#[...] will continue to work"), exactly as #(…). The
// config's checks know only #(…): gjsonPathOK counts no depth at "#[", so
// the quadratic-pattern check (review Z171) never runs on its % pattern.
// choices.#[message.content%"*sorry*cannot*"]# loads — the very rule
// TestValidateRulesQueryPatternWorkIsBoundedOnARepetitiveAnswer refuses in
// #(…) form — and gjson matches it (the premise below). Expected: refused
// as its #(…) spelling is.
func TestLintParity2BracketQueryPatternIsRefused(t *testing.T) {
	const p = `items.#[t%\"*sorry*cannot*\"]#`
	if got := gjson.Get(`{"items":[{"t":"so sorry, I cannot"},{"t":"ok"}]}`, strings.ReplaceAll(p, `\"`, `"`)+".t").Raw; got != `["so sorry, I cannot"]` {
		t.Fatalf("premise: gjson reads #[…] as a query with the %% pattern: got %s", got)
	}
	if _, err := ParseConfig([]byte(z182Rule(`{"path":"items.#(t%\"*sorry*cannot*\")#","max_items":0}`))); err == nil {
		t.Fatal("premise: the #(…) spelling is refused")
	}
	if _, err := ParseConfig([]byte(z182Rule(`{"path":"` + p + `","max_items":0}`))); err == nil {
		t.Fatalf("%s (a %% pattern with stars inside its text, quadratic in the answer) loads", p)
	}
}

// README: "confidence.path may not cross or end at every element or
// match (it would read a list, never one score)". endsInEveryMatch and
// eachAt look for "#(" only: preds.#[s>0.5]#.s loads, reads a list, and
// the route stores nothing (refused.no_confidence for an answer scoring
// 0.95). Its #(…) spelling is refused. Expected: refused too.
func TestLintParity2BracketQueryConfidenceOverEveryMatchIsRefused(t *testing.T) {
	conf := func(p string) string {
		return z182Confidence(p)
	}
	if _, err := ParseConfig([]byte(conf(`preds.#(s>0.5)#.s`))); err == nil {
		t.Fatal("premise: the #(…) spelling is refused")
	}
	cfg := conf(`preds.#[s>0.5]#.s`)
	if _, err := ParseConfig([]byte(cfg)); err == nil {
		st := z182Store(t, cfg, `{"label":"cat","preds":[{"s":0.95}]}`)
		t.Fatalf("confidence path preds.#[s>0.5]#.s (every match: a list) loads; an answer scoring 0.95: %s", verdict(st.Reason))
	}
}

// README (Validation rules): "a path through … every match of a query
// (predictions.#(score>0.5)#.label) holds when the rule holds on each
// element". Written #[…]#, which gjson reads the same, the rule loads and
// is judged on the whole list: {"path":"items.#[b==\"x\"]#.t","type":
// "string"} refuses (refused.validation) the answer its #(…)# spelling
// stores, so the route stores nothing. Expected: judged per match, or the
// form refused at start.
func TestLintParity2BracketQueryRuleIsJudgedPerMatch(t *testing.T) {
	const ans = `{"label":"cat","items":[{"b":"x","t":"abc"},{"b":"y","t":1}]}`
	if st := z182Store(t, z182Rule(`{"path":"items.#(b==\"x\")#.t","type":"string"}`), ans); st.Reason != ReasonNone {
		t.Fatalf("premise: the #(…)# spelling stores %s: %s", ans, verdict(st.Reason))
	}
	cfg := z182Rule(`{"path":"items.#[b==\"x\"]#.t","type":"string"}`)
	if _, err := ParseConfig([]byte(cfg)); err != nil {
		return // refused at start: fine
	}
	if st := z182Store(t, cfg, ans); st.Reason != ReasonNone {
		t.Fatalf("items.#[b==\"x\"]#.t loads and is judged on the whole list: %s %s (its #(…)# spelling stores it)", verdict(st.Reason), ans)
	}
}

// patternLinear reads an unquoted % pattern up to the first ')' or ']',
// and a quoted one up to its closing quote; gjson reads the value up to
// the query's balanced ')', whole. A pattern with a bracket in its text
// (*sorry(x)*cannot*), or a quoted part followed by more ("x"*sorry*
// cannot*: gjson strips quotes only from a value that ends with one),
// keeps stars inside its text — quadratic, as review Z171 measured — and
// loads. The premise shows gjson matching the whole pattern. Expected:
// refused, as "*sorry*cannot*" is.
func TestLintParity2PatternStarsHiddenFromTheCheckAreRefused(t *testing.T) {
	js := `{"items":[{"t":"I am sorry(x), I cannot"},{"t":"\"x\" sorry, cannot"},{"t":"fine"}]}`
	for _, c := range []struct{ path, match string }{
		{`items.#(t%*sorry(x)*cannot*)#`, `["I am sorry(x), I cannot"]`},
		{`items.#(t%"x"*sorry*cannot*)#`, `["\"x\" sorry, cannot"]`},
	} {
		t.Run(c.path, func(t *testing.T) {
			if got := gjson.Get(js, c.path+".t").Raw; got != c.match {
				t.Fatalf("premise: gjson matches the whole pattern: got %s want %s", got, c.match)
			}
			path, _ := json.Marshal(c.path)
			rule := `{"path":` + string(path) + `,"max_items":0}`
			if _, err := ParseConfig([]byte(z182Rule(rule))); err == nil {
				t.Fatalf("%s (stars inside the pattern's text as gjson reads it) loads", c.path)
			}
		})
	}
}

// One problem, one finding with the right message: a confidence path that
// is given but unusable ("!0.99", "a..b") is reported twice, the second
// time as "routes[0].confidence.path: is required: the gjson path of the
// score in the response" — a field the operator did write. `modelcache
// lint` prints both lines and counts two problems. Expected: one error,
// "is not a usable gjson path".
func TestLintParity2UnusableConfidencePathIsOneProblem(t *testing.T) {
	for _, p := range []string{`!0.99`, `a..b`} {
		_, err := ParseConfig([]byte(z182Confidence(p)))
		if err == nil {
			t.Fatalf("%s loads", p)
		}
		if strings.Contains(err.Error(), "is required") {
			t.Errorf("confidence path %q, given, is also reported as required:\n%v", p, err)
		}
	}
}
