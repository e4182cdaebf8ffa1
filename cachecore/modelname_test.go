package cachecore

import (
	"bytes"
	"testing"
)

// modelName's "same as the last one" shortcut must not compare the captured
// model's still-escaped JSON text with the last *decoded* name.
func TestModelNameShortcutIgnoresEscapedNames(t *testing.T) {
	first := `{"model":"a\\\"b","messages":[{"role":"user","content":"one"}]}` // model a\"b
	second := `{"model":"a\"b","messages":[{"role":"user","content":"two"}]}`  // model a"b
	env := newEnv(t, testConfig)
	r1 := env.request("chat", alice, first)
	r2 := env.request("chat", alice, second)
	fresh := newEnv(t, testConfig).request("chat", alice, second)
	t.Logf("first model %q, second model %q, fresh second model %q", r1.Model, r2.Model, fresh.Model)
	// Keys compared without the model state (a generation drawn at random
	// for every model a cache keys).
	if r2.Model != fresh.Model || !bytes.Equal(r2.Key[:r2.stableLen], fresh.Key[:fresh.stableLen]) {
		t.Fatalf("second request keyed as model %q, a fresh cache says %q (keys equal: %v)", r2.Model, fresh.Model, bytes.Equal(r2.Key[:r2.stableLen], fresh.Key[:fresh.stableLen]))
	}
}

// With the model among ignore_fields (accepted by the config), the key
// tells models apart only by req.Model: the shortcut serves one model's
// answer to another model's request.
func TestModelNameShortcutNeverCrossesModels(t *testing.T) {
	const cfg = `{"routes":[{"name":"chat","kind":"chat","path_exact":"/v1/chat/completions","ignore_fields":["model"]}]}`
	env := newEnv(t, cfg)
	first := `{"model":"a\\\"b","messages":[{"role":"user","content":"same"}]}` // model a\"b
	second := `{"model":"a\"b","messages":[{"role":"user","content":"same"}]}`  // model a"b
	req, d := env.lookup("chat", alice, first)
	if d != Forward {
		t.Fatalf("first: %v", d)
	}
	env.fill(req, hdr("content-type", "application/json"), chatResponse("answer of model a\\\"b"), 10)
	req2, d2 := env.lookup("chat", alice, second)
	fresh := newEnv(t, cfg).request("chat", alice, second)
	if d2 == Serve || req2.Model != fresh.Model {
		t.Fatalf("model %q request: decision %v (Serve=%v), keyed as model %q", fresh.Model, d2, Serve, req2.Model)
	}
}
