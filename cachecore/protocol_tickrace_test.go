package cachecore

import (
	"strings"
	"testing"
)

// leaseHookStore runs hook just before the n-th read of a lease slot, to
// interleave another worker between two reads of one callback.
type leaseHookStore struct {
	Store
	reads int
	at    int
	hook  func()
}

func (s *leaseHookStore) Get(key string) ([]byte, uint32, error) {
	if strings.HasPrefix(key, "mc:l:") {
		s.reads++
		if s.reads == s.at && s.hook != nil {
			h := s.hook
			s.hook = nil
			h()
		}
	}
	return s.Store.Get(key)
}

// A follower's tick checks that its key is still led, then joins the
// lease. If the leader stores and releases between the two reads (its
// wake-up not delivered yet), the follower wins the lease on the join:
// whatever it then does — here, serve the freshly stored answer — it must
// not keep the lease, or every later request of the key would follow a
// leader that never finishes, until max_wait.
func TestTickJoinRaceReleasesTheLease(t *testing.T) {
	e := newProtoEnv(t, 1, "fail")
	a, _ := e.start(0, 1, "q")
	b := e.followThroughHook(t, func() {
		e.store(0, a, "answer")
		e.show(a.FinishLead(OutcomeStored, 200))
	})
	e.show(b.Tick())
	if b.Following() {
		t.Fatal("B still follows after the tick")
	}
	fp := b.Request().LeaseFP()
	if led, err := e.w[0].Leases().Leading(fp, e.clock.Now().UnixMilli()); err != nil || led {
		t.Fatalf("after B's tick the key is still led (%v): the lease leaked", err)
	}
	// And B's end hands nothing on twice.
	e.show(b.Done())
}

// followThroughHook makes worker 1 read the shared store through a hook,
// starts B there as a follower of "q" (led on worker 0), and runs between
// B's next tick's two lease reads — its check that the key is still led
// and its join — once.
func (e *protoEnv) followThroughHook(t *testing.T, between func()) *Flight {
	t.Helper()
	hs := &leaseHookStore{Store: e.w[0].store}
	e.w[1] = New(e.w[1].cfg, Options{Store: hs, Now: e.clock.Now, Rand: seededRand(7)})
	b, got := e.start(1, 2, "q")
	expectActs(t, "B miss", got, "coalesce.followers wait")
	hs.reads, hs.at, hs.hook = 0, 2, between // the tick's join: its second lease read
	return b
}

// A leader releases its lease, then posts its wake-up, which carries its
// failure's status. A follower whose tick runs in between finds its key no
// longer led. If it would now answer with the leader's failure, it waits
// one tick for that status instead of answering 502 for the leader's 503.
func TestTickBeforeTheWakeUpAwaitsTheLeadersStatus(t *testing.T) {
	e, b := failedLead(t)
	e.tickBeforeTheWakeUp(t, b, "B")
}

// failedLead starts a leader on worker 0 and its follower on worker 1, on
// a route without retries whose followers answer with the failure, and
// ends the lead with a 503: its wake-up is posted, not delivered.
func failedLead(t *testing.T) (*protoEnv, *Flight) {
	e := newProtoEnv(t, 0, "fail")
	a, _ := e.start(0, 1, "q")
	b, _ := e.start(1, 2, "q")
	e.show(a.FinishLead(OutcomeFailed, 503))
	return e, b
}

// tickBeforeTheWakeUp ticks follower f (on worker 1) before the wake-up
// of its leader's 503 is delivered: the tick waits, and the wake-up
// answers with the 503.
func (e *protoEnv) tickBeforeTheWakeUp(t *testing.T, f *Flight, name string) {
	t.Helper()
	expectActs(t, name+" ticks before its wake-up", e.show(f.Tick()), "")
	expectActs(t, name+" woken", e.deliver(1, f), "coalesce.retries_exhausted local(503,leader_failed)")
}

// A wake-up that never comes costs the follower one more tick.
func TestTickWithoutTheWakeUpAnswersOnTheNextTick(t *testing.T) {
	e, b := failedLead(t)
	e.queue[1] = nil // lost
	expectActs(t, "B's first tick", e.show(b.Tick()), "")
	expectActs(t, "B's second tick", e.show(b.Tick()), "coalesce.tick_wakeups coalesce.retries_exhausted local(502,leader_failed)")
}

// A tick that waited for a lost wake-up, then found the key led again by
// a new leader, waits again when that leader's end races with its tick.
func TestTickWaitsAgainForTheNextLeader(t *testing.T) {
	e, b := failedLead(t)
	e.queue[1] = nil // lost
	expectActs(t, "B's tick, the key unled", e.show(b.Tick()), "")
	c, got := e.start(0, 3, "q")
	expectActs(t, "C", got, "coalesce.leaders forward")
	expectActs(t, "B's tick, C leads", e.show(b.Tick()), "")
	e.show(c.FinishLead(OutcomeFailed, 503))
	e.tickBeforeTheWakeUp(t, b, "B")
}

// A wake-up that sends a follower back to following (its leader's client
// hung up, and another follower leads now) lets its tick wait again.
func TestTickWaitsAgainAfterAWakeUp(t *testing.T) {
	e := newProtoEnv(t, 0, "fail")
	a, _ := e.start(0, 1, "q")
	b, _ := e.start(1, 2, "q")
	c, _ := e.start(1, 3, "q")
	e.show(a.FinishLead(OutcomeAbandoned, 0)) // not a failure; posted, not delivered yet
	expectActs(t, "C ticks before the wake-up", e.show(c.Tick()), "")
	msg := e.queue[1][0]
	expectActs(t, "B woken", e.deliver(1, b), "coalesce.promoted resume")
	e.queue[1] = append(e.queue[1], msg) // the worker's streams share one wake-up
	expectActs(t, "C woken, follows B", e.deliver(1, c), "")
	e.show(b.FinishLead(OutcomeFailed, 503))
	e.tickBeforeTheWakeUp(t, c, "C")
}

// A follower promoted by its tick waited since its last look, so its lead
// reads the model record again (leaderLookup): if the model moved on and
// the answer was stored under the new state meanwhile, it is served.
func TestTickPromotedLeaderReadsTheModelAgain(t *testing.T) {
	e := newProtoEnv(t, 1, "fail")
	x, _ := e.start(0, 9, "the model becomes known")
	e.store(0, x, "known")
	e.show(x.FinishLead(OutcomeStored, 200))
	a, _ := e.start(0, 1, "q")
	b := e.followThroughHook(t, func() {
		// The model moves on; a writer outside single flight stores the
		// answer under the new state; A fails and releases.
		if err := e.w[0].PurgeModel("chat", "gpt-4o-mini"); err != nil {
			t.Fatal(err)
		}
		w := e.w[0]
		req := w.Begin(w.routeByName("chat"), "POST", "/v1/chat/completions", alice)
		w.SetBody(req, []byte(chatRequest("q")))
		w.Lookup(req)
		if st := w.AdmitAndStore(req, 200, jsonCT, []byte(chatResponse("new")), OriginUpstream, 10); st.Reason != ReasonNone {
			t.Fatalf("the writer's store: %s", st.Reason)
		}
		e.show(a.FinishLead(OutcomeFailed, 503))
	})
	if got := e.show(b.Tick()); !strings.Contains(got, "coalesce.promoted") || !strings.HasSuffix(got, "serve") {
		t.Fatalf("B's tick: %q, want its promoted lead to serve the answer stored under the new state", got)
	}
}

// A leader fails and releases between a follower's tick's check that the
// key is led and its join, so the join wins the lease. The follower has
// not heard how that leader ended: with max_retries 0, its failure
// exhausts the follower's retries, and leading now would be a second
// upstream call where the route allows one. It hands the lease back,
// waits for the wake-up and answers with the leader's 503.
func TestTickJoinRaceKeepsTheFailure(t *testing.T) {
	e, b := leaderFailsInTheTicksJoin(t, 0)
	expectActs(t, "B's tick, A ended between its check and its join", e.show(b.Tick()), "")
	fp := b.Request().LeaseFP()
	if led, err := e.w[0].Leases().Leading(fp, e.clock.Now().UnixMilli()); err != nil || led {
		t.Fatalf("after B's tick the key is led (%v): B kept a lease it does not lead under", err)
	}
	expectActs(t, "B woken by A", e.deliver(1, b), "coalesce.retries_exhausted local(503,leader_failed)")
}

// With a retry left, the same race leads at once, as a woken follower
// would: A's failure is within max_retries.
func TestTickJoinRaceWithARetryLeftLeads(t *testing.T) {
	e, b := leaderFailsInTheTicksJoin(t, 1)
	expectActs(t, "B's tick", e.show(b.Tick()), "coalesce.tick_wakeups coalesce.promoted resume")
	expectActs(t, "A's wake-up, late", e.deliver(1, b), "")
}

// leaderFailsInTheTicksJoin starts a leader A on worker 0 and its follower
// B on worker 1, on a route with retries max_retries whose followers
// answer with the failure; A fails with a 503 between B's next tick's
// check that the key is led and its join.
func leaderFailsInTheTicksJoin(t *testing.T, retries int) (*protoEnv, *Flight) {
	e := newProtoEnv(t, retries, "fail")
	a, _ := e.start(0, 1, "q")
	b := e.followThroughHook(t, func() {
		e.show(a.FinishLead(OutcomeFailed, 503))
	})
	return e, b
}
