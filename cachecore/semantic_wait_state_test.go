package cachecore

// A request's model state read before its semantic step's embedding call
// is not fresh after it: a purge or a version switch may come in between.

import (
	"strings"
	"testing"
)

// askHeld runs a request for prompt up to its embeddings call and returns
// the call's Done without calling it (nil if no call was made), so that
// something can happen while the call is in flight.
func (e *semEnv) askHeld(headers [][2]string, prompt string) (*Flight, func() string) {
	e.id++
	req := e.cache.Begin(e.route("chat"), "POST", "/v1/chat/completions", headers)
	f := e.cache.NewFlight(req, 1, e.id)
	acts := f.RequestBody([]byte(chatRequest(prompt)), false)
	for _, a := range acts {
		if a.Kind == ActDispatch {
			call := a.Call
			return f, func() string {
				return actionKinds(call.Done(semEmbAnswer(e.model, e.vec(prompt))))
			}
		}
	}
	e.t.Fatalf("no embeddings call: %s", actionKinds(acts))
	return nil, nil
}

// A purge of the model while a near ask's embedding is in flight: the
// request's key was made under the generation the purge just retired,
// and the near match is looked up under that key after the call returns.
func TestNearMatchAfterAPurgeDuringItsEmbeddingIsNotServed(t *testing.T) {
	e := newSemEnv(t, "")
	q := "How do I reset my password?"
	f, _ := e.ask(alice, q, nil)
	e.answer(f, "OLD answer: click 'forgot password'.")
	if _, got := e.ask(alice, q, nil); !strings.HasSuffix(got, "serve") { // confirms it
		t.Fatalf("exact hit: %q", got)
	}
	f, done := e.askHeld(alice, "How can I reset my password?")
	if err := e.cache.PurgeModel("chat", "gpt-4o-mini"); err != nil {
		t.Fatal(err)
	}
	// After the purge, the exact question is a miss: the old answer is gone.
	if _, got := e.ask(alice, q, nil); strings.Contains(got, "serve") {
		t.Fatalf("exact ask after purge served: %q", got)
	}
	if got := done(); strings.Contains(got, "serve") {
		_, _, body := e.cache.HitResponse(f.Request())
		t.Fatalf("near ask whose embedding spanned a purge was served the purged answer: %q %s", got, body)
	}
}

// The same with a model version switch observed by another request while
// the near ask's embedding is in flight: the old version's answer is no
// longer served to its exact question, yet the near ask gets it.
func TestNearMatchAfterAVersionSwitchDuringItsEmbeddingIsNotServed(t *testing.T) {
	e := newSemEnv(t, `},"model_version":{"header":"x-model-version"`)
	v1 := append(hdr("x-model-version", "v1"), jsonCT...)
	v2 := append(hdr("x-model-version", "v2"), jsonCT...)
	q := "How do I reset my password?"
	f, _ := e.ask(alice, q, nil)
	f.ResponseHeaders(200, v1, OriginUpstream, false)
	f.Complete(v1, []byte(chatResponse("v1 answer: click 'forgot password'.")), 5, alice)
	if _, got := e.ask(alice, q, nil); !strings.HasSuffix(got, "serve") { // confirms it
		t.Fatalf("exact hit: %q", got)
	}
	f, done := e.askHeld(alice, "How can I reset my password?")
	// Another request's answer reports v2: the switch is recorded.
	g, _ := e.ask(alice, "What is the capital of France?", nil)
	g.ResponseHeaders(200, v2, OriginUpstream, false)
	g.Complete(v2, []byte(chatResponse("Paris")), 5, alice)
	if _, got := e.ask(alice, q, nil); strings.Contains(got, "serve") {
		t.Fatalf("exact ask after the version switch served the v1 answer: %q", got)
	}
	if got := done(); strings.Contains(got, "serve") {
		_, _, body := e.cache.HitResponse(f.Request())
		t.Fatalf("near ask whose embedding spanned a version switch was served the old version's answer: %q %s", got, body)
	}
}

// A request whose exact lookup missed before a purge, and which leads its
// key after it (here once its semantic step's embedding call returns),
// looks again under the model state it was keyed under (lead, "fresh"),
// not the one the purge made. The entries of the purged generation are
// still in the table (a purge of a model moves its generation, it does
// not erase them), so an answer stored before the purge is found and
// served after the purge returned.
func TestLeadAfterAnEmbeddingLooksUnderTheStateAPurgeMade(t *testing.T) {
	for _, purge := range []string{`{"route":"chat","model":"gpt-4o-mini"}`, `{"all":true}`} {
		t.Run(purge, func(t *testing.T) {
			e := &semEnv{testEnv: newEnv(t, `{"upstream_cluster":"model","purge":{"path":"/purge","token":"0123456789abcdef"},
			  "routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
			  "ttl":"1h","semantic":{"embedding":{"cluster":"embeddings","model":"e5"}}}]}`), model: "e5-small",
				vec: func(text string) []float64 {
					v := make([]float64, 16)
					for i := range v {
						v[i] = float64(i%5) + 1
					}
					return v
				}}
			c := e.cache
			// The model has answers stored (its record is not empty).
			warm := e.request("chat", alice, chatRequest("warm"))
			c.Lookup(warm)
			e.fill(warm, jsonCT, chatResponse("warm"), 10)

			// R: its exact lookup misses; its semantic step's embedding call goes out.
			req := c.Begin(e.route("chat"), "POST", "/v1/chat/completions", alice)
			f := c.NewFlight(req, 1, 100)
			acts := f.RequestBody([]byte(chatRequest("q")), false)
			var embed *Call
			for _, a := range acts {
				if a.Kind == ActDispatch {
					embed = a.Call
				}
			}
			if embed == nil {
				t.Fatalf("no embedding call: %s", actionKinds(acts))
			}
			// Meanwhile another worker answers "q" and stores it: the answer to purge.
			w2 := New(c.cfg, Options{Store: e.store, Now: e.clock.Now, Rand: seededRand(2)})
			other := w2.Begin(w2.routeByName("chat"), "POST", "/v1/chat/completions", alice)
			w2.SetBody(other, []byte(chatRequest("q")))
			w2.Lookup(other)
			if st := w2.AdmitAndStore(other, 200, jsonCT, []byte(chatResponse("purged answer")), OriginUpstream, 10); st.Reason != ReasonNone {
				t.Fatal(st.Reason)
			}
			// The operator purges; the purge returns.
			if _, err := w2.Purge([]byte(purge), ""); err != nil {
				t.Fatal(err)
			}
			if r, d := func() (*Request, Decision) {
				r := w2.Begin(w2.routeByName("chat"), "POST", "/v1/chat/completions", alice)
				w2.SetBody(r, []byte(chatRequest("q")))
				return r, w2.Lookup(r)
			}(); d == Serve {
				t.Fatalf("setup: purge did not take: %s", r.Status)
			}
			// Then R's embedding answer arrives: no near match, R leads.
			acts = embed.Done(semEmbAnswer(e.model, e.vec("q")))
			if strings.Contains(actionKinds(acts), "serve") {
				_, _, body := c.HitResponse(req)
				t.Fatalf("after the purge returned, a request is served the answer stored before it: %s (%s) %s", actionKinds(acts), req.Status, body)
			}
		})
	}
}
