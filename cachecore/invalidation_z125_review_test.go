package cachecore

import (
	"strings"
	"testing"
	"time"
)

// drainZ125 carries out acts, webdis answering every call.
func drainZ125(wd *fakeWebdis, acts []Action) {
	for len(acts) > 0 {
		a := acts[0]
		acts = acts[1:]
		if a.Kind == ActDispatch {
			acts = append(acts, a.Call.Done(wd.do(a.Call))...)
		}
	}
}

// A shadow comparison that invalidates the model stores its replacement
// a second time once webdis answers its INCR (l2InvalidateModelThen's
// then), under the generation l2Again makes. A purge of that one entry by
// replay in between — answered 200, its own L2 chain done — leaves its
// tombstone on the key under the generation of the first store; the
// second store keys the answer under a third generation, checks the
// tombstone of the key the hit looked up (lookedAs, the first one) and of
// its new key, neither of which the purge named, and puts the answer
// fetched before the purge back: served after the purge to every request.
// (TestL2ShadowSecondStoreRespectsAPurgeMeanwhile covers a purge of the
// model and of everything, which move the generation; an entry purge does
// not.)
func TestZ125ShadowSecondStoreRespectsAnEntryPurgeMeanwhile(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"u","l2":{"cluster":"webdis"},"purge":{"path":"/purge","token":"0123456789abcdef"},`+
		`"routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat","ttl":"1h",`+
		`"shadow":{"sample":1,"min_samples":1,"max_divergence":0,"min_tenants":1}}]}`)
	wd := newFakeWebdis()
	env.fill(env.request("chat", alice, chatRequest("hi")), jsonCT, chatResponse("old"), 10)
	env.clock.Advance(time.Second)
	req, d := env.lookup("chat", alice, chatRequest("hi"))
	if d != Serve {
		t.Fatalf("no hit to shadow: %s", req.Status)
	}
	acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/chat/completions"))
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("shadow: %s", actionKinds(acts))
	}
	env.clock.Advance(time.Second)
	acts = acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("pre-purge answer"))})
	if _, d := env.lookup("chat", alice, chatRequest("hi")); d != Serve {
		t.Fatalf("the replacement is not stored")
	}
	// The operator purges the entry by replay while the shadow's INCR is
	// still out; the purge's whole chain (INCR and DEL in L2, done again
	// in L1, logged) completes first.
	env.clock.Advance(time.Second)
	res, err := env.cache.Purge([]byte(`{"method":"POST","path":"/v1/chat","headers":{"authorization":"Bearer sk-alice"},"body":`+
		chatRequest("hi")+`}`), "")
	if err != nil || res.Scope != "entry" || res.L2 == nil {
		t.Fatalf("purge: %+v %v", res, err)
	}
	drainZ125(wd, res.L2.Done(wd.do(res.L2)))
	if r, d := env.lookup("chat", alice, chatRequest("hi")); d == Serve {
		t.Fatalf("the purge left the replacement: %s", r.Entry.Body)
	}
	env.clock.Advance(time.Second)
	drainZ125(wd, acts) // webdis answers the shadow's INCR
	if r, d := env.lookup("chat", alice, chatRequest("hi")); d == Serve {
		t.Errorf("an answer fetched before an entry purge is served after the purge answered: the shadow's second store put it back under a new generation: %q",
			strings.TrimSpace(string(r.Entry.Body)))
	}
}
