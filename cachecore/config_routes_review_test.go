package cachecore

import (
	"strings"
	"testing"
)

// README, Policy: key_fields "must keep the model field and the kind's
// question — messages (chat), prompt (completions), query and documents
// (rerank) — or the route is refused" (without it "every request to a
// model shares one key"). ignore_fields is the same selection written the
// other way round, and one naming the question takes it out of the key
// just as well: accepted today, so every question to a model is answered
// with the first answer stored.
func TestIgnoreFieldsKeepsTheQuestion(t *testing.T) {
	for _, tc := range []struct{ name, cfg, want string }{
		{"chat, on the route", `{"routes":[{"name":"r","kind":"chat","path_prefix":"/v1/chat","ignore_fields":["user","messages"]}]}`,
			"routes[0].ignore_fields"},
		{"completions, inherited from defaults", `{"defaults":{"ignore_fields":["user","prompt"]},"routes":[{"name":"r","kind":"completions","path_prefix":"/v1/completions"}]}`,
			"defaults.ignore_fields"},
		{"rerank, the documents", `{"routes":[{"name":"r","kind":"rerank","path_prefix":"/v1/rerank","ignore_fields":["documents"]}]}`,
			"routes[0].ignore_fields"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.cfg))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %s (it takes the question out of the key)", err, tc.want)
			}
		})
	}
}

// README, Validation rules: "These rules, which no answer can pass, are
// config errors naming them". A rule's equals (or one_of value) holding a
// duplicate member name can never equal an answer: jsonEqual refuses an
// object naming a member twice, and an answer that does is refused whole
// (duplicate_key). The configuration's own objects refuse a duplicate
// member ("duplicate field"), but this one is accepted, and the route
// silently stores nothing (refused.validation on every answer).
func TestRuleEqualsWithADuplicateMemberIsAConfigError(t *testing.T) {
	for _, tc := range []struct{ name, rule string }{
		{"equals", `{"path":"result","equals":{"ok":true,"ok":true}}`},
		{"one_of", `{"path":"result","one_of":[{"ok":true,"ok":true}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := `{"routes":[{"name":"j","kind":"json","path_prefix":"/v1/j","shared":true,"validate":[` + tc.rule + `]}]}`
			_, err := ParseConfig([]byte(cfg))
			if err != nil {
				return
			}
			// Accepted: show that no answer passes it.
			e := newEnv(t, cfg)
			req := e.request("j", nil, `{"model":"m","q":1}`)
			adm := e.cache.AdmitBody(req, jsonCT, []byte(`{"result":{"ok":true}}`))
			t.Fatalf("accepted a rule no answer can pass (an answer {\"result\":{\"ok\":true}} is refused: %s, rule %q)", adm.Reason, adm.Rule)
		})
	}
}

// The same for a rule with min/max (a number's bounds) and
// min_items/max_items (an array's) and no type: README refuses "min/max on
// a type other than number, min_items/max_items on one other than array",
// and a value is never both; without a type the contradiction is
// accepted, and every answer is refused.
func TestRuleNumberAndArrayBoundsTogetherAreAConfigError(t *testing.T) {
	cfg := `{"routes":[{"name":"j","kind":"json","path_prefix":"/v1/j","shared":true,"validate":[{"path":"score","min":0,"max_items":3}]}]}`
	_, err := ParseConfig([]byte(cfg))
	if err != nil {
		return
	}
	e := newEnv(t, cfg)
	for _, body := range []string{`{"score":1}`, `{"score":[1]}`} {
		req := e.request("j", nil, `{"model":"m","q":1}`)
		if adm := e.cache.AdmitBody(req, jsonCT, []byte(body)); adm.Reason == ReasonNone {
			t.Skipf("answer %s passes: not a contradiction", body)
		}
	}
	t.Fatalf("accepted a rule no answer can pass (min on a number and max_items on an array, on one value)")
}
