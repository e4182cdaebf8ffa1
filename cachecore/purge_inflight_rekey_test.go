package cachecore

import (
	"testing"
	"time"
)

// Review Z14 (stop 72). README "Purge API": a purge by replay refuses "an answer in flight
// when it came, asked for before it". The tombstone is keyed by the full
// key, version and generation included: an answer that reports a new model
// version is filed under another key, past the tombstone.
func TestEntryPurgeRefusesAnInFlightAnswerThatReportsANewVersion(t *testing.T) {
	const cfg = `{"upstream_cluster":"u","purge":{"path":"/purge","token":"0123456789abcdef"},"routes":[{"name":"chat","kind":"chat",` +
		`"path_prefix":"/v1/chat/completions","ttl":"1h","model_version":{"header":"x-model-version"}}]}`
	v := func(s string) [][2]string { return hdr("content-type", "application/json", "x-model-version", s) }
	purge := `{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("q") + `}`
	for _, tc := range []struct{ name, known, reported string }{
		{"same version (control: refused, passes)", "v1", "v1"},
		{"first version", "", "v1"},
		{"version switch", "v1", "v2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, cfg)
			if tc.known != "" {
				warm, _ := env.lookup("chat", bob, chatRequest("warm"))
				env.fill(warm, v(tc.known), chatResponse("warm"), 10)
			}
			// The leader of "q" goes upstream.
			req, d := env.lookup("chat", alice, chatRequest("q"))
			if d != Forward {
				t.Fatal(d)
			}
			// The operator purges that entry while the answer is upstream.
			env.clock.Advance(time.Millisecond)
			if _, err := env.cache.Purge([]byte(purge), ""); err != nil {
				t.Fatal(err)
			}
			env.clock.Advance(time.Millisecond)
			// The answer, asked for before the purge, lands after it and
			// reports a model version.
			st := env.cache.AdmitAndStore(req, 200, v(tc.reported), []byte(chatResponse("answered before the purge")), OriginUpstream, 10)
			if req2, d := env.lookup("chat", alice, chatRequest("q")); d == Serve {
				_, _, body := env.cache.HitResponse(req2)
				t.Fatalf("an answer in flight across an entry purge, asked before it, was stored (store reason %q, version changed %v) and is served after the purge returned: %s",
					st.Reason, st.Result.VersionChanged, body)
			}
		})
	}
}

// Review Z14 (stop 72): the same for a shadow comparison in flight across an entry purge
// whose divergence invalidates the model: its fresh answer, asked for
// before the purge, is stored under the generation the invalidation made,
// past the purge's tombstone.
func TestEntryPurgeRefusesAShadowAnswerThatInvalidatesTheModel(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"u","purge":{"path":"/purge","token":"0123456789abcdef"},"routes":[{"name":"chat","kind":"chat",`+
		`"path_prefix":"/v1/chat","shadow":{"sample":1,"min_samples":1,"max_divergence":0.5,"min_tenants":1}}]}`)
	env.fill(env.request("chat", alice, chatRequest("hi")), jsonCT, chatResponse("the old answer about apples"), 10)
	req, d := env.lookup("chat", alice, chatRequest("hi"))
	if d != Serve {
		t.Fatal(d)
	}
	acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/chat/completions"))
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("shadow: %s", actionKinds(acts))
	}
	env.clock.Advance(time.Millisecond)
	purge := `{"path":"/v1/chat","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hi") + `}`
	if res, err := env.cache.Purge([]byte(purge), ""); err != nil || res.Freed != 1 {
		t.Fatalf("purge: %+v %v", res, err)
	}
	env.clock.Advance(time.Millisecond)
	out := acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("zebra crossing 42 totally different reply"))})
	t.Logf("shadow done: %s", actionKinds(out))
	if req2, d := env.lookup("chat", alice, chatRequest("hi")); d == Serve {
		_, _, body := env.cache.HitResponse(req2)
		t.Fatalf("a shadow answer asked for before an entry purge was stored after it and is served: %s", body)
	}
}
