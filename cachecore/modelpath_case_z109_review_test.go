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
	modelInAnotherCaseIsPurged(t, cfg,
		`{"metadata":{"GEN_AI.MODEL":"m"},"messages":[{"role":"user","content":"hello"}]}`,
		`{"Metadata":{"Gen_ai.Model":"m"},"messages":[{"role":"user","content":"hello"}]}`,
	)
}
