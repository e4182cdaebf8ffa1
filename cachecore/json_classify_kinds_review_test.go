package cachecore

import (
	"fmt"
	"testing"
)

// Review Z184. A json route's shadow comparator defaults to exact equality
// of the whole answer (kinds.go: shadowCompare "exact" and no shadowPaths,
// so compareFresh compares the path "", the whole document). README
// refuses exactly that when it is written out ("paths": [] "is a config
// error: the whole answer, ids and times included, would be compared"),
// yet every json route with a shadow gets it by default. JSON model
// servers stamp their answers: vLLM's /score and /pooling answers carry
// "id": "<kind>-<random uuid>" and "created": <now>; KServe v2 / MLServer
// answers an "id" generated when the request sends none. A deterministic
// model answering the very same outputs is then counted as a divergence on
// every sample, and after min_samples the route's model is invalidated
// (every entry of it dropped) for nothing, again and again. Expected: a
// json route's shadow is refused without paths (as an empty list is), or
// answers that differ only in such a stamp are not counted as divergent.
func TestShadowJSONDefaultDivergesOnServerStampedID(t *testing.T) {
	for _, tc := range []struct{ name, path, req, answer, id1, id2 string }{
		{
			name: "vLLM /score",
			path: "/score",
			req:  `{"model":"bge-reranker","text_1":"what is a cache","text_2":["a cache keeps answers"]}`,
			answer: `{"id":"%s","object":"list","created":%s,"model":"bge-reranker",` +
				`"data":[{"index":0,"object":"score","score":0.91}],"usage":{"prompt_tokens":12,"total_tokens":12}}`,
			id1: `score-6f1c2a`, id2: `score-9b7e3d`,
		},
		{
			name: "KServe v2 infer",
			path: "/v2/models/doubler/infer",
			req:  `{"model":"doubler","inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1.5,2.5]}]}`,
			answer: `{"id":"%s","model_name":"doubler","model_version":"1",%.0s` + // no time: the id alone
				`"outputs":[{"name":"y","shape":[2],"datatype":"FP32","data":[3.0,5.0]}]}`,
			id1: `0d6f4c1e-7b1a-4f0e-9b7e-3f2a9c1d2e01`, id2: `5a0e2b7c-1d3f-4e8a-8c6b-9e4d2f1a0b77`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := `{"upstream_cluster":"u","routes":[{"name":"j","kind":"json","path_exact":"` + tc.path + `","shared":true,` +
				`"shadow":{"sample":1,"min_samples":1,"min_tenants":1}}]}`
			if _, err := ParseConfig([]byte(cfg)); err != nil {
				return // refused: the route has to name what it compares (fixed)
			}
			env := newEnv(t, cfg)
			req, _ := env.lookup("j", nil, tc.req)
			env.fill(req, jsonCT, fmt.Sprintf(tc.answer, tc.id1, "1760000000"), 10)
			hit, d := env.lookup("j", nil, tc.req)
			if d != Serve {
				t.Fatalf("setup: not a hit: %v", d)
			}
			fresh := []byte(fmt.Sprintf(tc.answer, tc.id2, "1760000042"))
			if r := env.cache.AdmitBody(hit, jsonCT, fresh).Reason; r != ReasonNone {
				t.Fatalf("setup: fresh answer refused: %s", r)
			}
			if agree, ok := env.cache.compareFresh(hit, jsonCT, fresh); ok && !agree {
				t.Fatal("the same outputs of a deterministic model, stamped with a new server id and time, count as a shadow " +
					"divergence (json's default compares the whole answer, ids and times included): the model's entries are invalidated for nothing")
			}
		})
	}
}

// Review Z184. A classify or json route's key_fields that keep nothing but
// the model field are accepted, and key every input to a model alike: the
// first label stored is served for every other input of the tenant. Review
// Z139 refused exactly this outcome for an allowlist inherited from
// defaults ("or every request to a model may share one key"), and a chat,
// completions or rerank route is refused without its question; a classify
// route that writes ["model"] itself (a TF Serving or KServe route, whose
// requests carry no model member at all, keys every request of the path
// as one) is not. Expected: refused at start (the route must keep a field
// its requests ask in), or the inputs keyed apart.
func TestClassifyOwnKeyFieldsOfTheModelAloneKeyEveryInputAlike(t *testing.T) {
	const cfg = `{"routes":[{"name":"cls","kind":"classify","path_exact":"/predict","key_fields":["model"],` +
		`"validate":[{"path":"label","type":"string","non_empty":true}]}]}`
	if _, err := ParseConfig([]byte(cfg)); err != nil {
		return // refused at start: fixed
	}
	env := newEnv(t, cfg)
	spam := env.request("cls", alice, `{"model":"spam-1","inputs":"WIN A FREE CRUISE NOW"}`)
	if spam.Bypassed() {
		t.Fatalf("bypassed: %s", spam.Reason)
	}
	env.fill(spam, jsonCT, `{"label":"spam","score":0.99}`, 5)
	req, _ := env.lookup("cls", alice, `{"model":"spam-1","inputs":"see you at lunch tomorrow"}`)
	if req.Entry != nil {
		t.Fatalf("key_fields [\"model\"] accepted on a classify route: the label of %q is served for %q: %s",
			"WIN A FREE CRUISE NOW", "see you at lunch tomorrow", entryBody(req))
	}
}
