package cachecore

import (
	"strings"
	"testing"
)

// A new leader of a single key looks the key up once more before going
// upstream (coalesce.go, leaderLookup), under the model's state its own
// lookup read: the key it built then is reused, and the model record is
// not read again. A model that moved on in between costs at most one more
// upstream call. A lookup that found no record reads it again.

// chatLeadEnv is two workers over one store with a chat route.
type chatLeadEnv struct {
	reads *readCounter
	w     [2]*Cache
}

func newChatLeadEnv(t *testing.T) *chatLeadEnv {
	cfg := mustParse(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h"}]}`)
	clock := newFakeClock()
	e := &chatLeadEnv{reads: &readCounter{MemStore: NewMemStore(), gets: map[string]int{}}}
	for i := range e.w {
		e.w[i] = New(cfg, Options{Store: e.reads, Now: clock.Now, Rand: seededRand(uint64(i + 1))})
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

func TestLeaderKeepsTheStateItsLookupRead(t *testing.T) {
	e := newChatLeadEnv(t)
	e.store(t, 0, e.miss(t, 0, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"the model becomes known"}]}`))
	req := e.miss(t, 0, sampleChatRequest)
	// The model's generation moves on, and a writer outside single flight
	// stores the answer under it. The lead does not read the model record
	// again: it looks under its lookup's state, misses, and goes upstream.
	if err := e.w[1].PurgeModel("chat", "gpt-4o-mini"); err != nil {
		t.Fatal(err)
	}
	e.store(t, 1, e.miss(t, 1, sampleChatRequest))
	clear(e.reads.gets)
	f := e.w[0].NewFlight(req, 1, 10)
	if k := outcome(f.Miss()); k != ActForward || req.Status != StatusMiss {
		t.Fatalf("the lead: %v (%s)", k, req.Status)
	}
	if n := e.reads.gets["mc:m"]; n != 0 {
		t.Errorf("the lead read the model record %d times", n)
	}
	// Its answer, begun before the purge, is not stored under either
	// generation (prepareStore); the next request is served the writer's.
	body := []byte(chatResponse("the lead's answer"))
	if res := e.w[0].Store(req, 200, jsonCT, body, e.w[0].AdmitBody(req, jsonCT, body), 1); res.Reason != ReasonInvalidated {
		t.Fatalf("the lead's store: %+v", res)
	}
	f.FinishLead(OutcomeStored, 200)
	next := e.w[0].Begin(e.w[0].routeByName("chat"), "POST", "/v1/chat/completions", [][2]string{{"authorization", "Bearer t"}})
	e.w[0].SetBody(next, []byte(sampleChatRequest))
	if d := e.w[0].Lookup(next); d != Serve || !strings.Contains(string(next.Entry.Body), "an answer") {
		t.Fatalf("the next request: %v", d)
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

func TestLeaderOfANewModelReadsItsRecordAgain(t *testing.T) {
	e := newChatLeadEnv(t)
	req := e.miss(t, 0, sampleChatRequest) // no record of the model yet
	// A writer stores the answer meanwhile, making the model's record.
	e.store(t, 1, e.miss(t, 1, sampleChatRequest))
	f := e.w[0].NewFlight(req, 1, 10)
	if k := outcome(f.Miss()); k != ActServeEntry || req.Status != StatusHit {
		t.Fatalf("a lead whose lookup found no model record must read it again, got %v (%s)", k, req.Status)
	}
}

func TestLeaderOfAModelWithNothingStoredGoesUpstream(t *testing.T) {
	e := newChatLeadEnv(t)
	// The model's record is made by a lookup and nothing is ever stored
	// under it (the model's answers are uncacheable).
	e.miss(t, 1, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"the record is made"}]}`)
	req := e.miss(t, 0, sampleChatRequest)
	if !req.state.Found || !req.state.empty {
		t.Fatalf("the lookup's state: %+v", req.state)
	}
	key, fp := string(req.Key), req.FP
	f := e.w[0].NewFlight(req, 1, 10)
	if k := outcome(f.Miss()); k != ActForward || req.Status != StatusMiss || req.Entry != nil {
		t.Fatalf("the lead: %v (%s)", k, req.Status)
	}
	if string(req.Key) != key || req.FP != fp {
		t.Fatal("the lead's key changed while the model's state did not")
	}
	// An answer stored under the record meanwhile is found by the next lead.
	f.FinishLead(OutcomeFailed, 503)
	req = e.miss(t, 0, sampleChatRequest)
	e.store(t, 1, e.miss(t, 1, sampleChatRequest))
	f = e.w[0].NewFlight(req, 1, 11)
	if k := outcome(f.Miss()); k != ActServeEntry || req.Status != StatusHit {
		t.Fatalf("a lead must find an answer stored under the record since its look, got %v (%s)", k, req.Status)
	}
}

// A lead's look again asks the bucket's index first, when it is well
// formed: in a full table the key's preferred way holds another key's
// entry, a whole entry copied to learn nothing, where the index says in
// 80 bytes that the key is not there (RATIONALE: "A lead looks again
// through the index").
func TestLeaderLooksAgainThroughAWellFormedIndex(t *testing.T) {
	e := newChatLeadEnv(t)
	e.store(t, 0, e.miss(t, 0, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"the model becomes known"}]}`))
	req := e.miss(t, 0, sampleChatRequest)
	// The key's bucket is full of other keys: its index lists another
	// fingerprint in every way, and its preferred way holds an entry.
	c := e.w[0]
	tb := c.table
	b := tb.bucketOf(req.FP)
	tb.resetIdx()
	for w := range tb.idx {
		tb.idx[w] = slot{fp: req.FP ^ uint64(w+1)<<20, staleUntil: 1 << 62}
	}
	if err := tb.writeIndex(b, 0, false); err != nil {
		t.Fatal(err)
	}
	if err := e.reads.Set(tb.entryKey(b, tb.preferredWay(req.FP)), []byte("another key's entry"), 0); err != nil {
		t.Fatal(err)
	}
	clear(e.reads.gets)
	f := c.NewFlight(req, 1, 10)
	if k := outcome(f.Miss()); k != ActForward || req.Status != StatusMiss || req.Entry != nil {
		t.Fatalf("the lead: %v (%s)", k, req.Status)
	}
	if ent, idx := e.reads.gets["mc:e"], e.reads.gets["mc:i"]; ent != 0 || idx != 1 {
		t.Errorf("the lead's look again read %d entries and %d indexes; want the index alone", ent, idx)
	}

	// A bucket no store ever wrote has no index: nothing to read behind it.
	req = e.miss(t, 0, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"a bucket of its own"}]}`)
	if _, exists, err := tb.readIndex(tb.bucketOf(req.FP)); exists || err != nil {
		t.Fatalf("the second key's bucket has an index (%v)", err)
	}
	clear(e.reads.gets)
	f = c.NewFlight(req, 1, 11)
	if k := outcome(f.Miss()); k != ActForward || req.Status != StatusMiss || req.Entry != nil {
		t.Fatalf("the second lead: %v (%s)", k, req.Status)
	}
	if ent, idx := e.reads.gets["mc:e"], e.reads.gets["mc:i"]; ent != 0 || idx != 1 {
		t.Errorf("a look again in a bucket without an index read %d entries and %d indexes; want the index alone", ent, idx)
	}
}

// Behind an index it cannot trust (garbled, or written with other ways),
// the look again reads the preferred way as the first look does, and finds
// an answer stored there since.
func TestLeaderLooksAgainPastAGarbledIndex(t *testing.T) {
	e := newChatLeadEnv(t)
	e.store(t, 0, e.miss(t, 0, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"the model becomes known"}]}`))
	req := e.miss(t, 0, sampleChatRequest)
	e.store(t, 1, e.miss(t, 1, sampleChatRequest))
	tb := e.w[0].table
	if err := e.reads.Set(tb.indexKey(tb.bucketOf(req.FP)), []byte("garbled"), 0); err != nil {
		t.Fatal(err)
	}
	f := e.w[0].NewFlight(req, 1, 10)
	if k := outcome(f.Miss()); k != ActServeEntry || req.Status != StatusHit {
		t.Fatalf("a lead must find an answer stored in its preferred way behind a garbled index, got %v (%s)", k, req.Status)
	}
}
