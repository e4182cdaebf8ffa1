package cachecore

import "testing"

// A nested model_path whose segment holds an escaped dot (a member named
// like an OpenTelemetry attribute, "gen_ai.model") is a valid gjson path,
// and the exact body keys by its model. The same member written but for
// case ({"metadata":{"GEN_AI.MODEL":"m"}}), which Go's encoding/json
// (Ollama, LocalAI) reads as the model, is not refused as duplicate_key as
// {"params":{"Model":…}} under "params.model" is: modelButForCase walks
// only paths of plain names, so the request is keyed under model "" and
// its answer is out of reach of a purge of model m (review Z109).
func TestEscapedNestedModelPathInAnotherCaseIsNotKeyedUnderNoModel(t *testing.T) {
	const cfg = `{"routes":[{"name":"gen","kind":"chat","path_prefix":"/v1","model_path":"metadata.gen_ai\\.model"}]}`
	// Setup: the path as written keys by its model.
	env := newEnv(t, cfg)
	if req := env.request("gen", alice, `{"metadata":{"gen_ai.model":"m"},"messages":[{"role":"user","content":"hello"}]}`); req.Bypassed() || req.Model != "m" {
		t.Fatalf("setup: exact path: bypassed=%v model %q, want model m", req.Bypassed(), req.Model)
	}
	for _, body := range []string{
		`{"metadata":{"GEN_AI.MODEL":"m"},"messages":[{"role":"user","content":"hello"}]}`,
		`{"Metadata":{"Gen_ai.Model":"m"},"messages":[{"role":"user","content":"hello"}]}`,
	} {
		env := newEnv(t, cfg)
		req, d := env.lookup("gen", alice, body)
		if req.Bypassed() {
			if req.Reason != ReasonDuplicateKey {
				t.Errorf("%s: bypassed as %s, want %s", body, req.Reason, ReasonDuplicateKey)
			}
			continue
		}
		if d == Serve {
			t.Fatal("setup: served before any store")
		}
		env.fill(req, jsonCT, chatResponse("hi"), 10)
		if _, err := env.cache.Purge([]byte(`{"route":"gen","model":"m"}`), ""); err != nil {
			t.Fatal(err)
		}
		if _, d := env.lookup("gen", alice, body); d == Serve {
			t.Errorf("after purging model m, the answer to %s (keyed under model %q) is still served", body, req.Model)
		}
	}
}
