package cachecore

import "testing"

// README "Keys": integer and float spellings are different keys "because
// typed model servers answer them differently", and key_fields "must keep
// the model field". A nested model_path passes that check without its
// object in key_fields, and the model is keyed by gjson's String of it:
// "model": 1 and "model": "1" (and null, "" and no model at all) are one
// key, so a typed server's 200 for one is served for the other, which it
// refuses.
func TestNestedModelPathKeyedByItsType(t *testing.T) {
	cfg := `{"routes":[{"name":"j","kind":"json","path_prefix":"/v1","shared":true,` +
		`"model_path":"params.model","key_fields":["input"]}]}`
	env := newEnv(t, cfg)
	first := env.request("j", nil, `{"input":"x","params":{"model":"1"}}`)
	if first.Bypassed() {
		t.Fatalf("bypassed: %s", first.Reason)
	}
	for _, other := range []string{
		`{"input":"x","params":{"model":1}}`,
		`{"input":"x","params":{"model":1.0}}`,
	} {
		req := env.request("j", nil, other)
		if req.Bypassed() {
			continue
		}
		if string(req.Key) == string(first.Key) {
			t.Errorf("%s keys as {\"model\":\"1\"}", other)
		}
	}
	a := env.request("j", nil, `{"input":"x","params":{"model":null}}`)
	b := env.request("j", nil, `{"input":"x","params":{"model":""}}`)
	if !a.Bypassed() && !b.Bypassed() && string(a.Key) == string(b.Key) {
		t.Errorf(`"model": null keys as "model": ""`)
	}
}
