package cachecore

import "testing"

// Review Z89 (area 3). Commit 6a04adb says Go's encoding/json (Ollama,
// LocalAI) reads a member into the field whose name is equal but for case:
// {"Model":"gpt-4o-mini",...} is a request to gpt-4o-mini for such a
// server. Without key_fields the cache keeps "Model" in the key but reads
// the model (model_path "model") by exact name: the answer is keyed under
// model "" and a purge of the model that answered it
// ({"route":"chat","model":"gpt-4o-mini"}, README "Invalidation") leaves
// it served.
func TestPurgeByModelReachesARequestNamingItsModelInAnotherCase(t *testing.T) {
	env := newEnv(t, testConfig)
	body := `{"Model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}],"temperature":0}`
	req, d := env.lookup("chat", alice, body)
	if req.Bypassed() {
		return // the case-variant model member is refused (duplicate_key): nothing to purge
	}
	if d == Serve {
		t.Fatal("setup: served before any store")
	}
	env.fill(req, jsonCT, chatResponse("hi"), 10)
	if _, d := env.lookup("chat", alice, body); d != Serve {
		t.Fatalf("setup: not served after store (%v)", d)
	}
	if _, err := env.cache.Purge([]byte(`{"route":"chat","model":"gpt-4o-mini"}`), ""); err != nil {
		t.Fatal(err)
	}
	if _, d := env.lookup("chat", alice, body); d == Serve {
		t.Fatalf("after purging model gpt-4o-mini, the answer gpt-4o-mini gave to %s (keyed under model %q) is still served", body, req.Model)
	}
}

// The check reads names equal but for case, not a name itself: a route
// whose model_path is written with capitals ("Model", a plain name) keys
// its requests, and apart by model.
func TestModelPathWithCapitalsIsNotItsOwnCaseTwin(t *testing.T) {
	env := newEnv(t, `{"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1","model_path":"Model"}]}`)
	a := env.request("chat", alice, `{"Model":"a","messages":[{"role":"user","content":"hi"}]}`)
	b := env.request("chat", alice, `{"Model":"b","messages":[{"role":"user","content":"hi"}]}`)
	if a.Bypassed() || b.Bypassed() {
		t.Fatalf("bypassed: %s, %s", a.Reason, b.Reason)
	}
	if a.Model != "a" || b.Model != "b" {
		t.Fatalf("models %q, %q", a.Model, b.Model)
	}
}
