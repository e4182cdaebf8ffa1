package cachecore

import (
	"bytes"
	"strings"
	"testing"
)

// A model version reported by the upstream in an answer the cache does not
// store (here one whose finish_reason, "length", the route does not cache;
// the same holds for no-store, a validation failure, a low confidence…)
// moves the model's record as a stored one would: the predecessor's
// entries are not served again, on any worker, once the upstream has said
// it is another version.
func TestANewVersionInARefusedAnswerRetiresItsPredecessor(t *testing.T) {
	env := newEnv(t, testConfig)
	v := func(s string) [][2]string { return hdr("content-type", "application/json", "x-model-version", s) }
	req, _ := env.lookup("versioned", bob, chatRequest("A"))
	env.fill(req, v("v1"), chatResponse("v1's answer"), 10)

	// Another worker (same shared data): the upstream now runs v2.
	w2 := New(env.cache.cfg, Options{Store: env.store, Now: env.clock.Now, Rand: seededRand(2)})
	other := w2.Begin(w2.routeByName("versioned"), "POST", "/v1/versioned", alice)
	w2.SetBody(other, []byte(chatRequest("B")))
	if d := w2.Lookup(other); d != Forward {
		t.Fatal(d)
	}
	long := strings.Replace(chatResponse("v2's answer, cut"), `"finish_reason":"stop"`, `"finish_reason":"length"`, 1)
	st := w2.AdmitAndStore(other, 200, v("v2"), []byte(long), OriginUpstream, 10)
	if st.Reason == ReasonNone {
		t.Fatal("setup: the v2 answer was stored")
	}
	for i, c := range []*Cache{env.cache, w2} {
		r := c.Begin(c.routeByName("versioned"), "POST", "/v1/versioned", bob)
		c.SetBody(r, []byte(chatRequest("A")))
		if c.Lookup(r) == Serve {
			_, _, body := c.HitResponse(r)
			if bytes.Contains(body, []byte("v1's answer")) {
				t.Errorf("worker %d: the upstream reported v2 (answer refused: %s), and v1's answer is still served: %s", i, st.Reason, body)
			}
		}
	}
}
