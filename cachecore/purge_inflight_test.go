package cachecore

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Purges reach what they must: answers in flight, other proxies' L1
// (review 8).

func TestPurgeRefusesInFlightAnswerOfUnrecordedModel(t *testing.T) {
	for _, purge := range []string{`{"route":"chat","model":"gpt-4o-mini"}`, `{"all":true}`} {
		env := newEnv(t, testConfig) // no earlier answer: the model has no record yet
		req, d := env.lookup("chat", alice, chatRequest("q"))
		if d != Forward {
			t.Fatal(d)
		}
		if _, err := env.cache.Purge([]byte(purge), ""); err != nil { // while the call is upstream
			t.Fatal(err)
		}
		env.cache.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("answered before the purge")), OriginUpstream, 10)
		if _, d := env.lookup("chat", alice, chatRequest("q")); d == Serve {
			t.Errorf("purge %s: an answer in flight across it was stored and is served", purge)
		}
	}
}

func TestEmbeddingsEntryPurgeReachesOtherProxiesL1(t *testing.T) {
	m := &l2Mesh{t: t, clock: newFakeClock(), wd: newFakeWebdis()}
	cfg := mustParse(t, `{"upstream_cluster":"model","l2":{"cluster":"webdis"},"purge":{"path":"/purge","token":"0123456789abcdef"},
	 "routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h"},
	           {"name":"embed","kind":"embeddings","path_exact":"/v1/embeddings","shared":true,"ttl":"1h"}]}`)
	for i := range m.p {
		m.p[i] = New(cfg, Options{Store: NewMemStore(), Now: m.clock.Now, Rand: seededRand(uint64(i))})
		m.step(m.p[i].L2Tick())
	}
	for _, x := range []struct{ route, path, body, answer string }{
		{"chat", "/v1/chat/completions", chatRequest("hello"), chatResponse("world")},
		{"embed", "/v1/embeddings", `{"model":"e","input":"x"}`, `{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}]}`},
	} {
		req := func(p int) *Request {
			r := m.p[p].Begin(m.p[p].routeByName(x.route), "POST", x.path, alice)
			m.p[p].SetBody(r, []byte(x.body))
			return r
		}
		for p := range m.p { // each proxy holds the answer in its own L1
			r := req(p)
			m.p[p].Lookup(r)
			if st := m.p[p].AdmitAndStore(r, 200, jsonCT, []byte(x.answer), OriginUpstream, 10); st.Reason != ReasonNone {
				t.Fatal(st.Reason)
			}
		}
		res, err := m.p[0].Purge([]byte(`{"path":"`+x.path+`","headers":{"authorization":"Bearer sk-alice"},"body":`+x.body+`}`), "")
		if err != nil || res.Freed != 1 {
			t.Fatalf("%s: purge on A: %+v %v", x.route, res, err)
		}
		if res.L2 != nil {
			m.step(res.L2.Done(m.wd.do(res.L2)))
		}
		for range 3 {
			m.clock.Advance(DefaultL2SyncInterval + 100*time.Millisecond)
			m.step(m.p[1].L2Tick())
		}
		if m.p[1].Lookup(req(1)) == Serve {
			t.Errorf("route %s: proxy B still serves the purged entry from its L1 (res.L2 nil: %v)", x.route, res.L2 == nil)
		}
	}
}

func TestPurgeReachesOtherProxiesL1AfterClockStepsBack(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[1].L2Tick())
	m.step(m.p[0].L2Tick())
	m.copyToBsL1()
	m.clock.Set(m.clock.Now().Add(-time.Hour)) // NTP steps the wall clock back
	res, _ := m.p[0].Purge([]byte(`{"route":"chat","model":"gpt-4o-mini"}`), "")
	m.step(res.L2.Done(m.wd.do(res.L2)))
	for range 10 {
		m.clock.Advance(DefaultL2SyncInterval)
		m.step(m.p[1].L2Tick())
	}
	if cs, _ := m.ask(1, "hello", "fresh"); !strings.Contains(cs, "fwd=miss") {
		t.Fatalf("B still serves the purged answer from its L1 10 sync intervals later: %q", cs)
	}
}

// untilLookup begins "prompt" on proxy p and stops at its L2 lookup
// (MGET): the call is returned unperformed.
func (m *l2Mesh) untilLookup(p int, id uint32, prompt string) (*Flight, *Call) {
	m.t.Helper()
	c := m.p[p]
	req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
	f := c.NewFlight(req, uint64(p+1), id)
	f.RequestHeaders(alice, false, true)
	acts := f.RequestBody([]byte(chatRequest(prompt)), false)
	for _, a := range acts {
		if a.Kind == ActDispatch && strings.HasPrefix(a.Call.Headers[1][1], "/MGET/") {
			return f, a.Call
		}
	}
	m.t.Fatalf("no L2 lookup: %+v", acts)
	return nil, nil
}

// A purge of a model or of everything moves this proxy's L1 generation at
// once, L2's only once its INCR is answered: a lookup in between still
// finds the old value, copied into L1 under the new generation. Once L2
// has the purge, it is done again in L1 (review 14).
func TestPurgeOnThisProxyIsNotUndoneByItsOwnL2Lookup(t *testing.T) {
	for _, purge := range []string{`{"route":"chat","model":"gpt-4o-mini"}`, `{"all":true}`} {
		t.Run(purge, func(t *testing.T) {
			m := newL2Mesh(t, "")
			m.step(m.p[0].L2Tick())
			m.ask(0, "hello", "purged answer") // in A's L1 and in L2
			res, err := m.p[0].Purge([]byte(purge), "")
			if err != nil || res.L2 == nil {
				t.Fatalf("purge: %+v %v", res, err)
			}
			// A request on A while the purge's INCR is on its way.
			cs, body := m.ask(0, "hello", "fresh")
			t.Logf("during the purge: %q %s", cs, body)
			// The purge reaches L2 and the log; the operator gets 200.
			m.step(res.L2.Done(m.wd.do(res.L2)))
			m.clock.Advance(DefaultL2SyncInterval)
			m.step(m.p[0].L2Tick())
			cs, body = m.ask(0, "hello", "fresh")
			if bytes.Contains(body, []byte("purged answer")) {
				t.Fatalf("after the purge completed, A still serves the purged answer: %q", cs)
			}
		})
	}
}

// An entry purge moves no model state: a lookup that read the value
// before the entry's generation moved, and is answered after the purge,
// is served it but does not copy it into L1 (the purge mark moved while
// it was out; review 14).
func TestEntryPurgeIsNotUndoneByALookupInFlight(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[1].L2Tick())
	m.ask(0, "hello", "purged answer") // A's answer, in L2
	f, mget := m.untilLookup(1, 7, "hello")
	res := m.wd.do(mget) // Redis answers the MGET (the value is there)...
	// ...and before B handles that answer, the operator purges the entry on B.
	pr, err := m.p[1].Purge([]byte(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":`+chatRequest("hello")+`}`), "")
	if err != nil || pr.L2 == nil {
		t.Fatalf("purge: %+v %v", pr, err)
	}
	m.step(pr.L2.Done(m.wd.do(pr.L2)))
	got, _ := m.step(mget.Done(res)) // the in-flight lookup's answer arrives
	t.Logf("in-flight request: %q", got)
	cs, body := m.ask(1, "hello", "fresh")
	if bytes.Contains(body, []byte("purged answer")) {
		t.Fatalf("after the entry purge completed, B serves the purged answer from L1: %q", cs)
	}
	_ = f
}

// The same on another proxy: its lookup read the value before A's purge
// reached Redis, and is answered after the proxy applied the purge from
// the log.
func TestEntryPurgeFromTheLogIsNotUndoneByALookupInFlight(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[0].L2Tick())
	m.step(m.p[1].L2Tick())
	m.ask(0, "hello", "purged answer")
	_, mget := m.untilLookup(1, 7, "hello")
	res := m.wd.do(mget)
	m.purgeOnA(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":` + chatRequest("hello") + `}`)
	m.clock.Advance(DefaultL2SyncInterval)
	m.step(m.p[1].L2Tick()) // B applies A's purge
	if got, _ := m.step(mget.Done(res)); got != "l2.hit serve" {
		t.Fatalf("in-flight request: %q", got)
	}
	if cs, body := m.ask(1, "hello", "fresh"); bytes.Contains(body, []byte("purged answer")) {
		t.Fatalf("B serves the purged answer from L1: %q", cs)
	}
}

// The mark is the process's, in shared data: a purge on one worker keeps
// out what another worker's lookup brings, whatever the wall clock did
// meanwhile.
func TestEntryPurgeOnOneWorkerIsNotUndoneByAnotherWorkersLookup(t *testing.T) {
	m := newL2Mesh(t, "")
	m.step(m.p[1].L2Tick())
	m.ask(0, "hello", "purged answer")
	worker1 := m.p[1]
	m.p[1] = New(worker1.cfg, Options{Store: worker1.store, Now: m.clock.Now, Rand: seededRand(7)})
	_, mget := m.untilLookup(1, 7, "hello") // on worker 2
	m.p[1] = worker1
	res := m.wd.do(mget)
	m.clock.Set(m.clock.Now().Add(-time.Hour)) // NTP steps the wall clock back
	pr, err := worker1.Purge([]byte(`{"path":"/v1/chat/completions","headers":{"authorization":"Bearer sk-alice"},"body":`+chatRequest("hello")+`}`), "")
	if err != nil || pr.L2 == nil {
		t.Fatalf("purge: %+v %v", pr, err)
	}
	m.step(pr.L2.Done(m.wd.do(pr.L2)))
	m.step(mget.Done(res))
	if cs, body := m.ask(1, "hello", "fresh"); bytes.Contains(body, []byte("purged answer")) {
		t.Fatalf("worker 1 serves the purged answer worker 2 copied into L1: %q", cs)
	}
}

// What follows a purge in L2 runs even when the purge request is gone by
// the time L2 answers (the host calls Gone): the purge is done again in
// L1 and logged.
func TestPurgeIsDoneAgainAndLoggedWhenItsRequestIsGone(t *testing.T) {
	m := newL2Mesh(t, "")
	m.ask(0, "hello", "purged answer")
	res, err := m.p[0].Purge([]byte(`{"route":"chat","model":"gpt-4o-mini"}`), "")
	if err != nil || res.L2 == nil || res.L2.Gone == nil {
		t.Fatalf("purge: %+v %v", res, err)
	}
	m.ask(0, "hello", "fresh") // copies the old value back
	m.step(res.L2.Gone(m.wd.do(res.L2)))
	if n := len(m.wd.lists["mc:purges"]); n != 1 {
		t.Fatalf("purge log: %d records", n)
	}
	if cs, body := m.ask(0, "hello", "fresh"); bytes.Contains(body, []byte("purged answer")) {
		t.Fatalf("A serves the purged answer: %q", cs)
	}
}

// An invalidation tried again is over only when a try is answered: the
// purge is done again in L1, and logged for other proxies, after that,
// not after the first try failed (Redis still held the old generation).
func TestPurgeIsDoneAgainAndLoggedOnceL2HasIt(t *testing.T) {
	m := newL2Mesh(t, "")
	m.ask(0, "hello", "purged answer")
	res, _ := m.p[0].Purge([]byte(`{"route":"chat","model":"gpt-4o-mini"}`), "")
	m.wd.failNext = 1
	acts := res.L2.Done(m.wd.do(res.L2)) // the first try fails: tried again
	if len(acts) != 1 || acts[0].Kind != ActDispatch || !strings.HasPrefix(acts[0].Call.Headers[1][1], "/INCR/") {
		t.Fatalf("after a failed try: %+v", acts)
	}
	if n := len(m.wd.lists["mc:purges"]); n != 0 {
		t.Fatalf("logged before L2 had the purge: %d records", n)
	}
	m.ask(0, "hello", "fresh") // copies the old value back
	m.step(acts)
	if n := len(m.wd.lists["mc:purges"]); n != 1 {
		t.Fatalf("purge log: %d records", n)
	}
	if cs, body := m.ask(0, "hello", "fresh"); bytes.Contains(body, []byte("purged answer")) {
		t.Fatalf("A serves the purged answer: %q", cs)
	}
}
