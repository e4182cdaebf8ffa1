package cachecore

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// What a follower counts as its leaders' failures (coalesce.max_retries):
// only an upstream call it waited on that failed.

// A wake-up is matched to followers by key only (OnQueueReady wakes every
// paused stream of the worker whose LeaseFP matches). A follower that
// began following the key's next leader after the previous leader
// released — its wake-up still in the worker's queue — is woken by that
// earlier leader's failure: it counts a failure it never sat through and,
// with max_retries 0, is answered that leader's 503 while its own leader
// is still upstream.
func TestAWakeUpFromAnEarlierLeaderFailsNoLaterFollower(t *testing.T) {
	e := newProtoEnv(t, 0, "fail")
	a, _ := e.start(0, 1, "q")
	b, got := e.start(1, 2, "q")
	expectActs(t, "B miss", got, "coalesce.followers wait")
	expectActs(t, "A fails", e.show(a.FinishLead(OutcomeFailed, 503)), "coalesce.leader_failures wake(w1)")
	// Before w1's queue callback runs: C leads the key on w0, D follows it on w1.
	c, got := e.start(0, 3, "q")
	expectActs(t, "C miss", got, "coalesce.leaders forward")
	d, got := e.start(1, 4, "q")
	expectActs(t, "D miss", got, "coalesce.followers wait")
	// w1's queue callback: the one wake-up resumes both of its followers of the key.
	msg := e.queue[1][0]
	expectActs(t, "B woken", e.deliver(1, b), "coalesce.retries_exhausted local(503,leader_failed)")
	e.queue[1] = append(e.queue[1], msg)
	expectActs(t, "D woken by A's failure, C still leads", e.deliver(1, d), "")
	if !c.Leading() || !d.Following() {
		t.Fatalf("C leading %v, D following %v", c.Leading(), d.Following())
	}
}

// A follower whose client sent Cache-Control: max-age=0 (a browser's
// reload, many SDKs) coalesces like any miss. When its leader stores, the
// follower's look again refuses the answer as too old (its age is the
// milliseconds since the store) and Wake counts that as a leader failure:
// past max_retries the client is answered 502 leader_failed though every
// leader's upstream call succeeded.
func TestAMaxAgeZeroFollowerIsNotFailedByAStoredLead(t *testing.T) {
	e := newProtoEnv(t, 0, "fail")
	a, got := e.start(0, 1, "q")
	expectActs(t, "A miss", got, "coalesce.leaders forward")
	c := e.w[1]
	hs := append(append([][2]string{}, alice...), [2]string{"cache-control", "max-age=0"})
	req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", hs)
	c.SetBody(req, []byte(chatRequest("q")))
	if d := c.Lookup(req); d != Forward || req.Status != StatusMiss {
		t.Fatalf("B lookup: %v %s", d, req.Status)
	}
	b := c.NewFlight(req, 2, 2)
	expectActs(t, "B miss", e.show(b.Miss()), "coalesce.followers wait")
	e.store(0, a, "answer")
	expectActs(t, "A stored", e.show(a.FinishLead(OutcomeStored, 200)), "wake(w1)")
	e.clock.Advance(time.Millisecond) // the wake-up crosses workers
	if got := e.deliver(1, b); got == "coalesce.retries_exhausted local(502,leader_failed)" {
		t.Fatalf("B woken after A stored its 200: %q", got)
	}
}

// A leader on an L2 route first looks its key up in L2 (a Call): its
// stream is still in its request phase (phaseRequest), or waits on
// another proxy's lead (phaseFollowing). If its client goes away then,
// Stream.Done ends the lead as OutcomeFailed — clientLeft is only asked in
// the forwarded/buffering phases — so its followers count an upstream
// failure the model never had and, with max_retries 0, are answered 502
// leader_failed.
func TestALeaderWhoseClientLeftDuringItsL2LookupAbandons(t *testing.T) {
	cfg := mustParse(t, `{"upstream_cluster":"model","l2":{"cluster":"webdis"},
 "routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
  "coalesce":{"enabled":true,"max_wait":"5s","max_retries":0,"on_retries_exhausted":"fail"}}]}`)
	store, clock := NewMemStore(), newFakeClock()
	var w [2]*Cache
	for i := range w {
		w[i] = New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(uint64(i))})
	}
	begin := func(s *Stream, c *Cache, vm uint64, id uint32) []Action {
		body := chatRequest("q")
		hs := append(append([][2]string{}, alice...), [2]string{"content-length", fmt.Sprint(len(body))})
		if v, acts := s.Begin(c, c.routeByName("chat"), "POST", "/v1/chat/completions", hs, false, true, vm, id); v != Pause || len(acts) != 0 {
			t.Fatalf("headers: %d %s", v, streamActs(acts))
		}
		var hold HoldState
		_, acts := s.RequestBody(len(body), true, &fakeReader{reqBody: []byte(body)}, &hold)
		return acts
	}
	var a, b Stream
	acts := begin(&a, w[0], 1, 1)
	if got := streamActs(acts); !strings.Contains(got, "coalesce.leaders") || !strings.Contains(got, fmt.Sprintf("kind%d", ActDispatch)) {
		t.Fatalf("A: %s, want a leader's L2 lookup", got)
	}
	if got := streamActs(begin(&b, w[1], 2, 2)); got != "coalesce.followers wait" {
		t.Fatalf("B: %s", got)
	}
	// A's client hangs up while its L2 lookup is out.
	var wake []byte
	for _, x := range a.Done(&fakeReader{details: "downstream_remote_disconnect"}) {
		if x.Kind == ActWake {
			wake = x.Message
		}
	}
	_, o, status, ok := DecodeWake(wake)
	if !ok {
		t.Fatal("A's end woke nobody")
	}
	if o != OutcomeAbandoned {
		t.Errorf("A's client left: its lead ended %s, want %s", o, OutcomeAbandoned)
	}
	if got := streamActs(b.Wake(o, status)); strings.Contains(got, "retries_exhausted") {
		t.Errorf("B woken: %s — answered leader_failed for a leader whose client hung up", got)
	}
}

// A batch's leader whose answer is stored except for an item too large to
// keep (its entry, key included, over max_entry_bytes) ends its lead
// OutcomeStored; the followers then find that item missing, count it as a
// leader failure and — with max_retries 0 — are answered 502
// leader_failed, though the model answered 200 and will answer so every
// time. (A whole answer too large is uncacheable: the followers go
// upstream.)
func TestABatchItemRefusedIsNoLeaderFailure(t *testing.T) {
	cfg := mustParse(t, `{"upstream_cluster":"model","routes":[{"name":"emb","kind":"embeddings","path_prefix":"/v1/embeddings","ttl":"1h",
	  "max_entry_bytes":1024,"coalesce":{"enabled":true,"max_wait":"2s","max_retries":0,"on_retries_exhausted":"fail"}}]}`)
	store, clock := NewMemStore(), newFakeClock()
	var w [2]*Cache
	for i := range w {
		w[i] = New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(uint64(i + 1))})
	}
	items := []string{"short", strings.Repeat("long ", 240)}
	body := []byte(`{"model":"e","input":["` + strings.Join(items, `","`) + `"]}`)
	hs := [][2]string{{"authorization", "Bearer t"}}
	start := func(i int, id uint32) (*Flight, string) {
		c := w[i]
		req := c.Begin(c.routeByName("emb"), "POST", "/v1/embeddings", hs)
		f := c.NewFlight(req, uint64(i+1), id)
		f.RequestHeaders(hs, false, true)
		e := &protoEnv{t: t}
		return f, e.show(f.RequestBody(body, false))
	}
	a, got := start(0, 1)
	expectActs(t, "A", got, "coalesce.leaders forward")
	b, got := start(1, 2)
	expectActs(t, "B", got, "coalesce.followers wait")
	jsonHdr := [][2]string{{"content-type", "application/json"}, {"content-length", "1"}}
	if step, _ := a.ResponseHeaders(200, jsonHdr, OriginUpstream, false); step != RespHold {
		t.Fatalf("A's response headers: %d", step)
	}
	_, acts := a.Complete(jsonHdr, embAnswer(items), 5, hs)
	var wake []byte
	refused := 0
	for _, x := range acts {
		if x.Kind == ActWake {
			wake = x.Message
		}
		if x.Kind == ActCount && x.Event == EvItemsRefused {
			refused = x.N
		}
	}
	if refused != 1 {
		t.Fatalf("items refused: %d, want the long one", refused)
	}
	_, o, status, ok := DecodeWake(wake)
	if !ok {
		t.Fatal("A woke nobody")
	}
	e := &protoEnv{t: t}
	if got := e.show(b.Wake(o, status)); strings.Contains(got, "leader_failed") || strings.Contains(got, "retries_exhausted") {
		t.Fatalf("B woken after A's 200 (outcome %s): %q", o, got)
	}
}

// A background refresh takes the key's lease before its slot among
// background.max_concurrent; if it gets none (or cannot read the limiter)
// it never calls the model. A request of the key that followed it in that
// window (on another worker) must be woken at once and lead, not wait for
// its tick and count a failure of a call never made.
func TestARefreshThatCannotStartWakesItsFollowersUnfailed(t *testing.T) {
	store, clock := NewMemStore(), newFakeClock()
	cfg := mustParse(t, fmt.Sprintf(protoTableConfig, 0, "fail"))
	e := &protoEnv{t: t, clock: clock}
	var follower *Flight
	var got string
	flaky := &flakyStore{Store: store, getErr: func(key string) error {
		if key != "mc:bg" {
			return nil
		}
		follower, got = e.start(1, 2, "q") // between the refresh's lease and its slot
		return errStoreDown
	}}
	e.w[0] = New(cfg, Options{Store: flaky, Now: clock.Now, Rand: seededRand(0)})
	e.w[1] = New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(1)})
	c := e.w[0]
	req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
	c.SetBody(req, []byte(chatRequest("q")))
	c.Lookup(req)
	acts := e.show(c.Refresh(req, alice, 1))
	expectActs(t, "the follower", got, "coalesce.followers wait")
	if !strings.Contains(acts, "wake(w1)") {
		t.Fatalf("a refresh that could not start: %q, want its follower woken", acts)
	}
	if got := e.deliver(1, follower); got != "coalesce.promoted resume" {
		t.Fatalf("the follower woken: %q, want it to lead", got)
	}
}
