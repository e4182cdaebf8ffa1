package cachecore

import "testing"

// A new leader of a single key looks the key up once more before going
// upstream (coalesce.go), under the model's state at that moment: the key
// it built for its first look is only reused while that state is the same.

// chatLeadEnv is two workers over one store with a chat route.
type chatLeadEnv struct{ w [2]*Cache }

func newChatLeadEnv(t *testing.T) *chatLeadEnv {
	cfg := mustParse(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h"}]}`)
	store, clock := NewMemStore(), newFakeClock()
	e := &chatLeadEnv{}
	for i := range e.w {
		e.w[i] = New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(uint64(i + 1))})
	}
	return e
}

// miss begins body on worker w and requires its lookup to miss.
func (e *chatLeadEnv) miss(t *testing.T, w int, body string) *Request {
	t.Helper()
	c := e.w[w]
	req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", [][2]string{{"authorization", "Bearer t"}})
	c.SetBody(req, []byte(body))
	if d := c.Lookup(req); d != Forward || req.Status != StatusMiss {
		t.Fatalf("lookup: %v %s", d, req.Status)
	}
	return req
}

// store stores an answer for req from worker w.
func (e *chatLeadEnv) store(t *testing.T, w int, req *Request) {
	t.Helper()
	body := []byte(chatResponse("an answer"))
	adm := e.w[w].AdmitBody(req, jsonCT, body)
	if res := e.w[w].Store(req, 200, jsonCT, body, adm, 1); res.Reason != ReasonNone {
		t.Fatalf("store: %+v", res)
	}
}

func TestLeaderLooksAgainUnderTheModelsNewState(t *testing.T) {
	e := newChatLeadEnv(t)
	e.store(t, 0, e.miss(t, 0, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"the model becomes known"}]}`))
	req := e.miss(t, 0, sampleChatRequest)
	// The model's generation moves on, and a writer outside single flight
	// stores the answer under it: only a key built under the new state
	// finds it.
	if err := e.w[1].PurgeModel("chat", "gpt-4o-mini"); err != nil {
		t.Fatal(err)
	}
	e.store(t, 1, e.miss(t, 1, sampleChatRequest))
	f := e.w[0].NewFlight(req, 1, 10)
	if k := outcome(f.Miss()); k != ActServeEntry || req.Status != StatusHit {
		t.Fatalf("a lead whose model moved on must look again under the new state, got %v (%s)", k, req.Status)
	}
}

func TestLeaderLooksAgainUnderAnUnchangedState(t *testing.T) {
	e := newChatLeadEnv(t)
	e.store(t, 0, e.miss(t, 0, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"the model becomes known"}]}`))
	req := e.miss(t, 0, sampleChatRequest)
	key, fp := string(req.Key), req.FP
	// Stored meanwhile by a writer outside single flight, model unchanged:
	// the lead looks again with the key it built (rekey keeps it).
	e.store(t, 1, e.miss(t, 1, sampleChatRequest))
	f := e.w[0].NewFlight(req, 1, 10)
	if k := outcome(f.Miss()); k != ActServeEntry || req.Status != StatusHit {
		t.Fatalf("a lead must find an answer stored since its first look, got %v (%s)", k, req.Status)
	}
	if string(req.Key) != key || req.FP != fp {
		t.Fatal("the lead's key changed while the model's state did not")
	}
}
