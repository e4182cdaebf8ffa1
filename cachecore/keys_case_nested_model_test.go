package cachecore

import "testing"

// A nested model_path ("params.model") is read by gjson, name by name and
// by exact name, while Go's encoding/json (Ollama, LocalAI) reads a member
// whose name is equal but for case: {"params":{"Model":"m"}} and
// {"Params":{"model":"m"}} are requests to model m for such a server. Keyed
// under model "", their answers were out of reach of a purge of m (and of
// its version switches), as review Z89 found for a plain model_path.
func TestNestedModelPathInAnotherCaseIsNotKeyedUnderNoModel(t *testing.T) {
	const cfg = `{"routes":[{"name":"gen","kind":"chat","path_prefix":"/v1","model_path":"params.model"}]}`
	modelInAnotherCaseIsPurged(t, cfg,
		`{"params":{"Model":"m"},"messages":[{"role":"user","content":"hello"}]}`,
		`{"Params":{"model":"m"},"messages":[{"role":"user","content":"hello"}]}`,
		`{"PARAMS":{"MODEL":"m"},"messages":[{"role":"user","content":"hello"}]}`,
	)
}

// modelInAnotherCaseIsPurged holds each body, which names model m of route
// "gen" (cfg's) but for case, to being refused as duplicate_key or else
// reached by a purge of model m.
func modelInAnotherCaseIsPurged(t *testing.T, cfg string, bodies ...string) {
	t.Helper()
	for _, body := range bodies {
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

// The exact path, and a path whose own names have capitals, still key by
// their model; a nested member that only looks like the path (another
// object, another name) is not refused.
func TestNestedModelPathAsWrittenStillKeys(t *testing.T) {
	env := newEnv(t, `{"routes":[{"name":"gen","kind":"chat","path_prefix":"/v1","model_path":"Params.Model"}]}`)
	for body, want := range map[string]string{
		`{"Params":{"Model":"a"},"messages":[{"role":"user","content":"hi"}]}`:                       "a",
		`{"Params":{"Model":"b","other":{"model":"x"}},"messages":[{"role":"user","content":"hi"}]}`: "b",
		`{"Params":{"modelx":"c"},"messages":[{"role":"user","content":"hi"}]}`:                      "",
	} {
		req := env.request("gen", alice, body)
		if req.Bypassed() {
			t.Errorf("%s: bypassed (%s)", body, req.Reason)
			continue
		}
		if req.Model != want {
			t.Errorf("%s: model %q, want %q", body, req.Model, want)
		}
	}
}
