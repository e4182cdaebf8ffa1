package cachecore

import (
	"testing"
)

// Review Z187 (follow-up of Z184's agreeUnstamped). A json route's
// whole-answer shadow (no paths, the kind's default) is now compared member
// by member, each member with the route's comparator. With compare
// "cosine" (or any comparator that needs numbers), a member holding no
// number — KServe v2's "model_name", "model_version" — is "no vector", and
// cosine of two empty lists is false: two byte-identical answers of a
// deterministic model are counted as a divergence on every sample, and the
// model's entries invalidated for nothing. Before the mend the whole
// answer's numbers were compared, and identical answers agreed. Expected:
// identical answers (and answers differing only in id/created) agree.
func TestFollowup187ShadowJSONCosineWholeAnswerIdenticalDiverges(t *testing.T) {
	const cfg = `{"upstream_cluster":"u","routes":[{"name":"j","kind":"json","path_exact":"/v2/models/doubler/infer","shared":true,` +
		`"shadow":{"sample":1,"min_samples":1,"min_tenants":1,"compare":"cosine"}}]}`
	if _, err := ParseConfig([]byte(cfg)); err != nil {
		t.Fatalf("setup: %v", err)
	}
	const reqBody = `{"model":"doubler","inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1.5,2.5]}]}`
	const answer = `{"model_name":"doubler","model_version":"1",` +
		`"outputs":[{"name":"y","shape":[2],"datatype":"FP32","data":[3.0,5.0]}]}`
	env := newEnv(t, cfg)
	req, _ := env.lookup("j", nil, reqBody)
	env.fill(req, jsonCT, answer, 10)
	hit, d := env.lookup("j", nil, reqBody)
	if d != Serve {
		t.Fatalf("setup: not a hit: %v", d)
	}
	fresh := []byte(answer)
	if r := env.cache.AdmitBody(hit, jsonCT, fresh).Reason; r != ReasonNone {
		t.Fatalf("setup: fresh answer refused: %s", r)
	}
	if agree, ok := env.cache.compareFresh(hit, jsonCT, fresh); ok && !agree {
		t.Fatal("a json route's whole-answer shadow with compare cosine finds a byte-identical answer divergent " +
			"(agreeUnstamped compares each member by cosine, and a string member such as model_name is no vector): " +
			"every sample diverges and the model's entries are invalidated for nothing")
	}
}
