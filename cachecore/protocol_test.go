package cachecore

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Table tests of the single-flight protocol, one event sequence each, over
// two workers (two Caches on one MemStore).

const protoTableConfig = `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions",
  "ttl":"1h","coalesce":{"enabled":true,"max_wait":"2s","max_retries":%d,"on_retries_exhausted":%q}}]}`

type protoEnv struct {
	t     *testing.T
	clock *fakeClock
	w     [2]*Cache
	queue [2][][]byte // wake-ups posted to each worker
}

func newProtoEnv(t *testing.T, retries int, exhausted string) *protoEnv {
	store, clock := NewMemStore(), newFakeClock()
	cfg := mustParse(t, fmt.Sprintf(protoTableConfig, retries, exhausted))
	e := &protoEnv{t: t, clock: clock}
	for i := range e.w {
		e.w[i] = New(cfg, Options{Store: store, Now: clock.Now, Rand: seededRand(uint64(i))})
	}
	return e
}

// start begins a request for prompt on worker w and runs it to its first
// actions (a hit, or the protocol's Miss).
func (e *protoEnv) start(w int, id uint32, prompt string) (*Flight, string) {
	c := e.w[w]
	req := c.Begin(c.routeByName("chat"), "POST", "/v1/chat/completions", alice)
	c.SetBody(req, []byte(chatRequest(prompt)))
	if c.Lookup(req) == Serve {
		return nil, "hit"
	}
	f := c.NewFlight(req, uint64(w+1), id)
	return f, e.show(f.Miss())
}

// store answers f's request as its upstream would and stores it.
func (e *protoEnv) store(w int, f *Flight, content string) {
	st := e.w[w].AdmitAndStore(f.Request(), 200, jsonCT, []byte(chatResponse(content)), OriginUpstream, 10)
	if st.Reason != ReasonNone {
		e.t.Fatalf("store: %s", st.Reason)
	}
}

// show renders actions as text and posts wake-ups to the queues.
func (e *protoEnv) show(acts []Action) string {
	var out []string
	for _, a := range acts {
		switch a.Kind {
		case ActWait:
			out = append(out, "wait")
		case ActServeEntry:
			out = append(out, "serve")
		case ActServeLocal:
			out = append(out, fmt.Sprintf("local(%d,%s)", a.Status, a.CacheStatus))
		case ActForward:
			if a.Resume {
				out = append(out, "resume")
			} else {
				out = append(out, "forward")
			}
		case ActCount:
			out = append(out, EventNames[a.Event])
		case ActWake:
			for _, vm := range a.VMs {
				e.queue[vm-1] = append(e.queue[vm-1], a.Message)
				out = append(out, fmt.Sprintf("wake(w%d)", vm-1))
			}
		default:
			out = append(out, fmt.Sprintf("kind%d", a.Kind))
		}
	}
	return strings.Join(out, " ")
}

// deliver hands worker w's oldest wake-up to f.
func (e *protoEnv) deliver(w int, f *Flight) string {
	if len(e.queue[w]) == 0 {
		e.t.Fatalf("no wake-up for w%d", w)
	}
	msg := e.queue[w][0]
	e.queue[w] = e.queue[w][1:]
	fp, o, status, ok := DecodeWake(msg)
	if !ok || fp != f.Request().LeaseFP() {
		e.t.Fatalf("wake-up %x: ok %v", msg, ok)
	}
	return e.show(f.WakeFrom(WakeLeader(msg), o, status))
}

func expectActs(t *testing.T, step, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: actions %q, want %q", step, got, want)
	}
}

func TestProtocolSequences(t *testing.T) {
	t.Run("leader stores, follower collapses", func(t *testing.T) {
		e := newProtoEnv(t, 1, "fail")
		a, got := e.start(0, 1, "q")
		expectActs(t, "A miss", got, "coalesce.leaders forward")
		b, got := e.start(1, 2, "q")
		expectActs(t, "B miss", got, "coalesce.followers wait")
		e.store(0, a, "answer")
		expectActs(t, "A stored", e.show(a.FinishLead(OutcomeStored, 200)), "wake(w1)")
		expectActs(t, "B woken", e.deliver(1, b), "serve")
		if b.Request().Status != StatusCollapsed || b.Following() {
			t.Fatalf("B: %s following %v", b.Request().Status, b.Following())
		}
		_, got = e.start(1, 3, "q")
		expectActs(t, "C", got, "hit")
	})
	t.Run("leader fails, follower promoted", func(t *testing.T) {
		e := newProtoEnv(t, 1, "fail")
		a, _ := e.start(0, 1, "q")
		b, _ := e.start(1, 2, "q")
		expectActs(t, "A failed", e.show(a.FinishLead(OutcomeFailed, 503)), "coalesce.leader_failures wake(w1)")
		expectActs(t, "B woken", e.deliver(1, b), "coalesce.promoted resume")
		if !b.Leading() {
			t.Fatal("B does not lead")
		}
	})
	t.Run("retries exhausted: the leader's failure, no upstream call", func(t *testing.T) {
		e := newProtoEnv(t, 0, "fail")
		a, _ := e.start(0, 1, "q")
		b, _ := e.start(1, 2, "q")
		e.show(a.FinishLead(OutcomeFailed, 503))
		expectActs(t, "B woken", e.deliver(1, b), "coalesce.retries_exhausted local(503,leader_failed)")
	})
	t.Run("retries exhausted: forward", func(t *testing.T) {
		e := newProtoEnv(t, 0, "forward")
		a, _ := e.start(0, 1, "q")
		b, _ := e.start(1, 2, "q")
		e.show(a.FinishLead(OutcomeFailed, 429))
		expectActs(t, "B woken", e.deliver(1, b), "coalesce.retries_exhausted resume")
		if b.Leading() {
			t.Fatal("B leads")
		}
	})
	t.Run("uncacheable: followers go upstream, key skips coalescing", func(t *testing.T) {
		e := newProtoEnv(t, 1, "fail")
		a, _ := e.start(0, 1, "q")
		b, _ := e.start(1, 2, "q")
		expectActs(t, "A uncacheable", e.show(a.FinishLead(OutcomeUncacheable, 400)), "coalesce.leader_failures wake(w1)")
		expectActs(t, "B woken", e.deliver(1, b), "resume")
		_, got := e.start(0, 3, "q")
		expectActs(t, "C", got, "coalesce.hit_for_miss forward")
	})
	t.Run("leader aborts, wake-up lost: the tick promotes", func(t *testing.T) {
		e := newProtoEnv(t, 1, "fail")
		a, _ := e.start(0, 1, "q")
		b, _ := e.start(1, 2, "q")
		expectActs(t, "B tick while led", e.show(b.Tick()), "")
		expectActs(t, "A gone", e.show(a.Done()), "coalesce.leader_failures wake(w1)")
		e.queue[1] = nil // lost
		expectActs(t, "B tick", e.show(b.Tick()), "coalesce.tick_wakeups coalesce.promoted resume")
	})
	t.Run("leader stored, wake-up lost: the tick serves", func(t *testing.T) {
		e := newProtoEnv(t, 1, "fail")
		a, _ := e.start(0, 1, "q")
		b, _ := e.start(1, 2, "q")
		e.store(0, a, "answer")
		e.show(a.FinishLead(OutcomeStored, 200))
		e.queue[1] = nil
		expectActs(t, "B tick", e.show(b.Tick()), "coalesce.tick_wakeups serve")
		if b.Request().Status != StatusCollapsed {
			t.Fatal(b.Request().Status)
		}
	})
	t.Run("max_wait: the follower goes upstream itself", func(t *testing.T) {
		e := newProtoEnv(t, 1, "fail")
		e.start(0, 1, "q")
		b, _ := e.start(1, 2, "q")
		e.clock.Advance(1999 * time.Millisecond)
		expectActs(t, "B tick before max_wait", e.show(b.Tick()), "")
		e.clock.Advance(time.Millisecond)
		expectActs(t, "B tick at max_wait", e.show(b.Tick()), "coalesce.timeouts resume")
		expectActs(t, "B woken late", e.show(b.Wake(OutcomeStored, 0)), "")
	})
	t.Run("follower gone: nothing to do, the lead goes on", func(t *testing.T) {
		e := newProtoEnv(t, 1, "fail")
		a, _ := e.start(0, 1, "q")
		b, _ := e.start(1, 2, "q")
		expectActs(t, "B gone", e.show(b.Done()), "")
		expectActs(t, "B woken after", e.show(b.Wake(OutcomeFailed, 0)), "")
		if !a.Leading() {
			t.Fatal("A lost its lead")
		}
	})
	t.Run("a new leader finds the answer stored meanwhile", func(t *testing.T) {
		e := newProtoEnv(t, 1, "fail")
		a, _ := e.start(0, 1, "q")
		b, _ := e.start(1, 2, "q")
		e.store(0, a, "answer")
		// A's lease expired before it finished: B's tick takes the lease,
		// re-looks up and serves, ending its lead at once.
		e.clock.Advance(1500 * time.Millisecond)
		e.w[0].leases.Release(a.Request().LeaseFP(), 1, 1, e.clock.Now().UnixMilli(), 0)
		expectActs(t, "B tick", e.show(b.Tick()), "coalesce.tick_wakeups serve")
	})
}

func TestWakeEncoding(t *testing.T) {
	msg := EncodeWake(0x0102030405060708, OutcomeUncacheable, 503)
	fp, o, status, ok := DecodeWake(msg)
	if !ok || fp != 0x0102030405060708 || o != OutcomeUncacheable || status != 503 {
		t.Fatalf("round trip: %x %v %d %v", fp, o, status, ok)
	}
	for o := OutcomeStored; o <= OutcomeAbandoned; o++ { // every outcome travels
		if _, got, _, ok := DecodeWake(EncodeWake(1, o, 0)); !ok || got != o {
			t.Errorf("outcome %v: decoded %v %v", o, got, ok)
		}
	}
	for _, bad := range [][]byte{nil, msg[:11], append(bytes.Clone(msg), 0), {'X', 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0},
		{'W', 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0}} {
		if _, _, _, ok := DecodeWake(bad); ok {
			t.Errorf("decoded %x", bad)
		}
	}
}

// The background calls are Calls: dispatched, then continued on their
// result. The shadow comparison admits by the route's statuses and stores
// a replacement with the time the call took.
func TestShadowCall(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"1h",
	  "statuses":[200,203],"shadow":{"sample":1.0,"max_concurrent":1,"min_samples":100,"max_divergence":0.5,"window":"10m"}}]}`)
	c := env.cache
	req := env.request("chat", alice, chatRequest("q"))
	env.fill(req, jsonCT, chatResponse("old"), 10)
	hit := func() *Request {
		req, d := env.lookup("chat", alice, chatRequest("q"))
		if d != Serve {
			t.Fatal("no hit")
		}
		return req
	}
	call := func(req *Request) *Call {
		acts := c.Shadow(req, hdr(":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer sk-alice"))
		if len(acts) != 1 || acts[0].Kind != ActDispatch || acts[0].Call.Started != EvShadowStarted {
			t.Fatalf("actions %+v", acts)
		}
		return acts[0].Call
	}
	events := func(acts []Action) (out []string) {
		for _, a := range acts {
			if a.Kind == ActCount {
				out = append(out, EventNames[a.Event])
			}
		}
		return out
	}
	// A status the route does not cache cannot be compared.
	got := events(call(hit()).Done(CallResult{Status: 500, Headers: jsonCT, Body: []byte(chatResponse("new"))}))
	if fmt.Sprint(got) != "[shadow.errors]" {
		t.Fatalf("500: %v", got)
	}
	// The one shadow slot was released: a 203 diverges and replaces.
	cl := call(hit())
	if a := c.Shadow(hit(), nil); len(a) != 1 || a[0].Kind != ActCount || a[0].Event != EvShadowSaturated { // max_concurrent 1
		t.Fatal("second shadow call while one is in flight")
	}
	env.clock.Advance(2 * time.Second)
	acts := cl.Done(CallResult{Status: 203, Headers: jsonCT, Body: []byte(chatResponse("new"))})
	if fmt.Sprint(events(acts)) != "[shadow.diverge]" || acts[len(acts)-1].Kind != ActNoteStore || acts[len(acts)-1].Stored.Reason != ReasonNone {
		t.Fatalf("203: %+v", acts)
	}
	r := hit()
	if r.Entry.Status != 203 || !strings.Contains(string(r.Entry.Body), "new") || r.Entry.ComputeMs != 2000 {
		t.Fatalf("replacement: status %d compute %d body %s", r.Entry.Status, r.Entry.ComputeMs, r.Entry.Body)
	}
}

func TestRefreshCall(t *testing.T) {
	env := newEnv(t, `{"upstream_cluster":"model","routes":[{"name":"chat","kind":"chat","path_prefix":"/v1/chat/completions","ttl":"10s",
	  "stale_while_revalidate":"1m"}]}`)
	c := env.cache
	env.fill(env.request("chat", alice, chatRequest("q")), jsonCT, chatResponse("old"), 10)
	env.clock.Advance(20 * time.Second)
	req, d := env.lookup("chat", alice, chatRequest("q"))
	if d != Serve || req.Status != StatusStale || !c.WantsRefresh(req) {
		t.Fatalf("%v %s", d, req.Status)
	}
	acts := c.Refresh(req, hdr(":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer sk-alice"), 1)
	if len(acts) != 1 || acts[0].Kind != ActDispatch {
		t.Fatalf("%+v", acts)
	}
	// Single flight: another stale hit joins the refresh in flight.
	req2, _ := env.lookup("chat", alice, chatRequest("q"))
	if again := c.Refresh(req2, nil, 2); len(again) != 1 || again[0].Event != EvRefreshJoined {
		t.Fatalf("%+v", again)
	}
	env.clock.Advance(3 * time.Second)
	done := acts[0].Call.Done(CallResult{Status: 200, Headers: jsonCT, Body: []byte(chatResponse("new"))})
	if done[0].Event != EvRefreshStored || done[1].Kind != ActStored || done[1].Stored.Reason != ReasonNone {
		t.Fatalf("%+v", done)
	}
	r, _ := env.lookup("chat", alice, chatRequest("q"))
	if r.Status != StatusHit || r.Entry.ComputeMs != 3000 {
		t.Fatalf("%s compute %d", r.Status, r.Entry.ComputeMs)
	}
	// A refused answer keeps the old entry and releases the lease.
	env.clock.Advance(20 * time.Second)
	req3, _ := env.lookup("chat", alice, chatRequest("q"))
	acts = c.Refresh(req3, nil, 1)
	done = acts[0].Call.Done(CallResult{Status: 500, Headers: jsonCT, Body: []byte(`{}`)})
	if done[0].Event != EvRefreshRefused || done[1].Stored.Reason != ReasonStatus {
		t.Fatalf("%+v", done)
	}
	if !c.tryLead(req3, 1, 7, time.Second) {
		t.Fatal("lease still held after the refresh ended")
	}
}

// The leader's upstream answers 202 (a status the route does not cache,
// not a failure). Its follower goes upstream itself, not a 502
// "leader-failed".
func TestFollowerOfA202LeaderIsNotFailed(t *testing.T) {
	e := newProtoEnv(t, 0, "fail")
	a, _ := e.start(0, 1, "q")
	b, _ := e.start(1, 2, "q")
	_, acts := a.ResponseHeaders(202, jsonCT, OriginUpstream, false)
	e.show(acts)
	got := e.deliver(1, b)
	if strings.Contains(got, "local(") {
		t.Fatalf("follower of a leader answered 202 got %q", got)
	}
}

// A follower's tick that runs after its leader released the lease and
// before the leader's wake-up reaches the follower's worker may find the
// key led again, by a follower of another worker that was woken first.
// The wake-up that comes next is still from the leader this request
// followed: its failure counts, or the follower would sit through one
// more leader failure than max_retries allows, and a failing upstream
// would see one more call per key than max_retries+1 (the e2e flake of
// TestStampedeFailingUpstreamRetriesExhausted: 4 calls for max_retries 2).
func TestTickBetweenReleaseAndWakeKeepsTheFailure(t *testing.T) {
	e := newProtoEnv(t, 1, "fail")
	a, _ := e.start(0, 1, "q")
	b, got := e.start(1, 2, "q")
	expectActs(t, "B miss", got, "coalesce.followers wait")
	c, got := e.start(0, 3, "q")
	expectActs(t, "C miss", got, "coalesce.followers wait")
	expectActs(t, "A failed", e.show(a.FinishLead(OutcomeFailed, 503)), "coalesce.leader_failures wake(w1) wake(w0)")
	expectActs(t, "C woken first", e.deliver(0, c), "coalesce.promoted resume")
	expectActs(t, "B's tick, A's wake-up not delivered yet", e.show(b.Tick()), "")
	expectActs(t, "B woken by A", e.deliver(1, b), "")
	expectActs(t, "C failed", e.show(c.FinishLead(OutcomeFailed, 503)), "coalesce.leader_failures wake(w1)")
	// Two leaders failed, max_retries 1: B answers with the failure, and
	// does not lead a third call.
	expectActs(t, "B woken by C", e.deliver(1, b), "coalesce.retries_exhausted local(503,leader_failed)")
}

// A wake-up from a VM of the module before the Retry-After was carried
// (24 bytes) still wakes the followers: refused, they waited for their tick
// through a rollout.
func TestWakeOfTheEarlierLengthIsRead(t *testing.T) {
	msg := EncodeWake(0x0102030405060708, OutcomeFailed, 503)[:24]
	fp, o, status, ok := DecodeWake(msg)
	if !ok || fp != 0x0102030405060708 || o != OutcomeFailed || status != 503 {
		t.Fatalf("a 24-byte wake-up: %x %v %d %v", fp, o, status, ok)
	}
}
