package cachecore

import (
	"testing"
)

// Review Z41. README (Shadow comparison): "Only an answer whose status is in
// the route's statuses, and that can be read — JSON within max_entry_bytes
// (a batch: that per item), no error report, a finished stream, one vector
// per item — and that the route would store (its finish_reasons, its
// validation rules, a completion's shape; ...) is compared; any other counts
// as shadow.errors, never as a divergence." Review Z25's fix judges a fresh
// answer as a store would only for non-batch requests: an embeddings batch's
// fresh answer goes to agreeEmbeddings unjudged, so an answer the route
// refuses to store (a validation rule, an error report, a vector that is
// not one) is compared and counts as a divergence towards invalidation.
func TestShadowBatchFreshAnswerTheRouteRefusesIsAnError(t *testing.T) {
	env, batch := shadowEmbeddingsEnv(t, `,"validate":[{"path":"model","equals":"e"}]`,
		[]string{"[1,0,0]", "[0,1,0]"})
	for name, fresh := range map[string]string{
		// Another model answered: the route's rule refuses it.
		"validation rule": `{"object":"list","model":"other","data":[{"object":"embedding","index":0,"embedding":[0,0,1]},` +
			`{"object":"embedding","index":1,"embedding":[0,0,1]}]}`,
		// An error report beside data.
		"error report": `{"object":"list","model":"e","error":{"message":"overloaded","type":"server_error"},` +
			`"data":[{"object":"embedding","index":0,"embedding":[0,0,1]},{"object":"embedding","index":1,"embedding":[0,0,1]}]}`,
		// Not a vector: an element that is a string (refused.bad_vector).
		"bad vector": `{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":[1,"x",0]},` +
			`{"object":"embedding","index":1,"embedding":[0,1,0]}]}`,
	} {
		// Setup: the route refuses to store it.
		probe, _ := env.lookup("embed", nil, `{"model":"e","input":["fresh a","fresh b"]}`)
		if adm := env.cache.AdmitBody(probe, jsonCT, []byte(fresh)); adm.Reason == ReasonNone {
			t.Fatalf("%s: setup: admission stores it", name)
		} else {
			t.Logf("%s: admission refuses it: %s", name, adm.Reason)
		}
		req, d := env.lookup("embed", nil, batch)
		if d != Serve {
			t.Fatalf("%s: setup: batch of cached items not a hit: %v", name, d)
		}
		if agree, ok := env.cache.compareFresh(req, jsonCT, []byte(fresh)); ok {
			t.Errorf("%s: a fresh batch answer the route refuses to store was compared (agree=%v): counted shadow.%s, not shadow.errors",
				name, agree, map[bool]string{true: "agree", false: "diverge"}[agree])
		}
	}
}

// The same, end to end: three shadow calls answered by another model (which
// the route's rule refuses to store) invalidate the model's namespace, and
// another client's cached vector is gone.
func TestShadowBatchRefusedFreshAnswersDoNotInvalidate(t *testing.T) {
	env, batch := shadowEmbeddingsEnv(t, `,"validate":[{"path":"model","equals":"e"}]`,
		[]string{"[1,0,0]", "[0,1,0]"})
	other := `{"model":"e","input":"someone else's"}`
	req, _ := env.lookup("embed", nil, other)
	env.fill(req, jsonCT, `{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":[1,2,3]}]}`, 10)
	fresh := []byte(`{"object":"list","model":"other","data":[{"object":"embedding","index":0,"embedding":[0,0,1]},` +
		`{"object":"embedding","index":1,"embedding":[0,0,1]}]}`)
	var events []string
	for s := 0; s < 3; s++ {
		req, d := env.lookup("embed", nil, batch)
		if d != Serve {
			t.Fatalf("sample %d: batch of cached items not a hit", s)
		}
		acts := env.cache.Shadow(req, hdr(":method", "POST", ":path", "/v1/embeddings"))
		for _, a := range acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: fresh}) {
			if a.Kind == ActCount {
				events = append(events, EventNames[a.Event])
			}
		}
	}
	if _, d := env.lookup("embed", nil, other); d != Serve {
		t.Fatalf("three fresh answers the route refuses to store (rule model == \"e\") invalidated the model: "+
			"another client's vector is gone; counted %v", events)
	}
}
