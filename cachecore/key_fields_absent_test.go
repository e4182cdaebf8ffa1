package cachecore

import "testing"

// A classify (or json) route's key_fields name the members its requests
// ask in. When a request carries none of them but the model — clients
// send "inputs" where the list says "input", say — its key is the model's
// alone, and every such request shares one entry: a request about another
// text is served the first one's label. Such a request is not cached
// (bypass no_input).
func TestKeyFieldsARequestCarriesNoneOfIsNotCached(t *testing.T) {
	env := newEnv(t, `{"routes":[{"name":"c","kind":"classify","path_prefix":"/c","shared":true,"ttl":"1h",
	  "key_fields":["model","input"]}]}`)
	req, d := env.lookup("c", nil, `{"model":"m","inputs":"I love it"}`)
	if req.Bypassed() {
		if req.Reason != ReasonNoInput {
			t.Fatalf("bypassed for %s, want no_input", req.Reason)
		}
		return
	}
	if d != Forward {
		t.Fatalf("setup: %v", d)
	}
	env.fill(req, jsonCT, `{"label":"positive","score":0.99}`, 5)
	got, d := env.lookup("c", nil, `{"model":"m","inputs":"I hate it"}`)
	if d == Serve {
		t.Fatalf("a request about another text is served the first one's answer: %s", got.Entry.Body)
	}
}

// One that carries a member key_fields names is keyed by it, as before.
func TestKeyFieldsARequestCarriesOneOfIsCached(t *testing.T) {
	env := newEnv(t, `{"routes":[{"name":"c","kind":"classify","path_prefix":"/c","shared":true,"ttl":"1h",
	  "key_fields":["model","input"]}]}`)
	req, d := env.lookup("c", nil, `{"model":"m","input":"I love it"}`)
	if req.Bypassed() || d != Forward {
		t.Fatalf("%v %s", d, req.Reason)
	}
	env.fill(req, jsonCT, `{"label":"positive","score":0.99}`, 5)
	if _, d := env.lookup("c", nil, `{"model":"m","input":"I love it"}`); d != Serve {
		t.Fatalf("not served: %v", d)
	}
	if _, d := env.lookup("c", nil, `{"model":"m","input":"I hate it"}`); d == Serve {
		t.Fatal("another text served")
	}
}
