package cachecore

// Flight is one request's part in the single-flight protocol on one
// worker, sans IO: the events of its life go in (Miss, Wake, Tick,
// FinishLead, Done) and the Actions the host performs come out. Every
// rule of leading and following is here: who leads, what a woken follower
// does, how many leader failures it sits through (coalesce.max_retries),
// when it stops waiting (coalesce.max_wait), and what a tick finds when a
// wake-up was lost.
//
// A Flight is used from one worker's callbacks only; the workers share
// nothing but the Store (leases, entries, model records).
type Flight struct {
	c   *Cache
	req *Request
	vm  uint64 // the worker, as named in leases
	id  uint32 // the request on that worker

	state    flightState
	leader   bool // holds the key's lease: must FinishLead
	failures int  // leader failures sat through as a follower
	// followed: the leader this request last joined as a follower.
	followed LeaseHolder
	// passed: the leader followed before, when a tick found another
	// leading (Tick): it ended, and its wake-up may still be on its way.
	passed    LeaseHolder
	waitSince int64 // ms, when it started following
	// leaseEnd: ms, the deadline a leader's lease was last given (KeepLease).
	leaseEnd int64
	// awaited: a tick found the key unled and waited one tick for the
	// leader's wake-up (Tick).
	awaited bool
	// held: the request is paused across a call of its own (a semantic
	// lookup's embedding): whatever sends it upstream next must resume it.
	held bool
	// waited: the request's model state was read before a call of its own
	// (a semantic lookup's embedding): a purge or a version switch may
	// have come in between, so nothing is looked up under it again.
	waited bool

	respStatus int // the upstream's response status (0: none yet)
	// fwdStatus is respStatus when the model sent it, 0 for a reply Envoy
	// made (a reset, a timeout): Cache-Status's fwd-status is the next
	// hop's status (RFC 9211; review Z225).
	fwdStatus int
	// retryAfter: the seconds of a refused 429 or 5xx answer's Retry-After
	// (0: none), passed to followers its failure answers (retryAfterOf).
	retryAfter uint16
	// refetchFor: the answer to a rewritten batch (its missing items
	// only) was refused before its end — by its headers or its size —
	// for this reason; it is held to its end and replaced by the whole
	// batch (Complete, Flight.Refetch), never passed as it came.
	refetchFor Reason
	// refetching: the whole batch's call is out; the held answer waits for
	// it (Stream.Paused).
	refetching bool
	// respVersion: the model version a versioned route's answer reported
	// in its header (ResponseHeaders), for a refusal after the headers
	// (too large) to switch the version as any refused answer does.
	respVersion string
	cs          CacheStatus // the request's Cache-Status (protocol_status.go)

	out [8]Action // the actions of the current event (no allocation)
	n   int
}

type flightState uint8

const (
	flightIdle      flightState = iota // not (yet) coalescing
	flightFollowing                    // paused behind a leader
	flightDone                         // served, forwarded or gone
	flightL2                           // waiting for an L2 lookup or lease (protocol_l2.go)
	flightL2Wait                       // waiting for another proxy's answer in L2
)

// NewFlight starts the protocol for req on worker vm, as request id.
func (c *Cache) NewFlight(req *Request, vm uint64, id uint32) *Flight {
	f := &Flight{}
	f.Init(c, req, vm, id)
	return f
}

// Init (re)starts f for req, for a host that embeds the Flight.
func (f *Flight) Init(c *Cache, req *Request, vm uint64, id uint32) {
	*f = Flight{}
	f.start(c, req, vm, id)
}

// start starts a zero f for req: a Stream's Flight, zero until its
// request starts (Stream.Reset), is not zeroed a second time.
func (f *Flight) start(c *Cache, req *Request, vm uint64, id uint32) {
	f.c, f.req, f.vm, f.id = c, req, vm, id
}

// Request is the flight's request.
func (f *Flight) Request() *Request { return f.req }

// Following reports whether the request is paused behind a leader.
func (f *Flight) Following() bool { return f.state == flightFollowing }

// Leading reports whether the request holds its key's lease.
func (f *Flight) Leading() bool { return f.leader }

func (f *Flight) reset() { f.n = 0 }

// emit keeps a's place among the step's actions. Past eight it is dropped:
// no path emits more (a rewritten coalesced batch none of whose items is
// kept emits exactly eight, the followers' wake-up last, held by
// TestRewrittenBatchNoneKeptWakesFollowersAtOnce). Keeping a ninth costs
// the code of a spill in every function emit inlines into: 39 lines of a
// miss under V8 (BENCHMARKS item 59).
func (f *Flight) emit(a Action) {
	if f.n < len(f.out) {
		f.out[f.n] = a
		f.n++
	}
}

func (f *Flight) actions() []Action { return f.out[:f.n] }

// count is not inlined: a request that counts more than one event (a lead
// and its end) then runs one copy of the action's literal, not one in
// each caller.
//
//go:noinline
func (f *Flight) count(e Event) { f.emit(Action{Kind: ActCount, Event: e, Route: f.req.Route}) }

// internal emits the count of an internal error. Out of line: a bypass or
// a refusal for any other reason (the rule) runs none of its code (an
// action's literal and its copy).
//
//go:noinline
func (f *Flight) internal() { f.emit(Action{Kind: ActInternal}) }

// serve answers from the entry the lookup found, as st (StatusNone: as the lookup
// said: hit or stale).
func (f *Flight) serve(st Status) {
	f.state = flightDone
	if st != 0 {
		f.req.Status = st
	}
	f.emit(Action{Kind: ActServeEntry})
}

func (f *Flight) forward(resume bool) {
	f.state = flightDone
	f.req.Status = missOrPartial(f.req)
	f.emit(Action{Kind: ActForward, Resume: resume})
}

// missOrPartial is the status of a request that goes upstream: partial
// for a batch whose look found items cached and that goes up as the batch
// of the missing ones (their answer is merged with the cached items), miss
// for anything else. A follower whose look again found items cached was
// told miss, its answer holding cached items (reviews Z194, Z195).
func missOrPartial(req *Request) Status {
	if req.Status == StatusPartial && req.rewritten() {
		return StatusPartial
	}
	return StatusMiss
}

// sinceOrNow is now-*at in ms, after moving *at to now if the wall clock
// stepped back past it: a wait or a hold then counts from the step, rather
// than lasting as long as the step is.
func sinceOrNow(at *int64, now int64) int64 {
	if now < *at {
		*at = now
	}
	return now - *at
}

// Miss is the event "the lookup missed and the route coalesces": the
// request leads its key upstream, or follows the request that does.
func (f *Flight) Miss() []Action { return f.miss(true) }

// miss is Miss where coalesce holds; otherwise the request goes upstream,
// after the actions emitted so far. One function for both: a miss after
// its lookup (missed, inlined) runs no frame that only chooses. A request
// that goes upstream with nothing to look up in L2 first and not paused
// (upstream's rule) is forwarded here, by the copy that forwards a
// hit-for-miss or a collision, without entering upstream.
func (f *Flight) miss(coalesce bool) []Action {
	direct := false // forwarded as it is: no L2 lookup, not resumed
	if coalesce {
		f.reset()
		switch f.join() {
		case RoleLeader:
			if f.lead(EvLeader, !f.waited) {
				f.serve(StatusNone)
				return f.actions()
			}
		case RoleFollower:
			f.count(EvFollower)
			f.state = flightFollowing
			f.waitSince = f.c.nowMs()
			f.emit(Action{Kind: ActWait})
			return f.actions()
		case RoleHitForMiss:
			f.count(EvHitForMiss)
			direct = true
		default:
			f.count(EvCollision)
			direct = true
		}
	}
	if !direct && (f.held || f.c.cfg.L2 != nil) {
		f.upstream(false)
		return f.actions()
	}
	f.state = flightDone
	f.emit(Action{Kind: ActForward})
	return f.actions()
}

// join is Cache.Join, noting the leader followed. Written to stay within
// the inliner's budget (cost 80): inlined into Miss, wake and Tick, a miss
// runs no function for it.
func (f *Flight) join() (role Role) {
	if role = f.c.Join(f.req, f.vm, f.id); role == RoleFollower {
		f.followed = f.c.leases.followed
	}
	return
}

// WakeFrom is Wake for a wake-up message from leader (zero: not named).
// One from a leader other than the one this request follows — one that
// finished before this request followed the key, its message still
// queued, or one that took over an expired lease unseen — says nothing of
// this request's leader: it looks again and leads or follows as the key
// stands now, counting no failure. One from the leader it followed before
// a tick found another leading (passed) is its own leader's, late.
func (f *Flight) WakeFrom(leader LeaseHolder, o Outcome, status int) []Action {
	if leader != (LeaseHolder{}) && f.followed != (LeaseHolder{}) && leader != f.followed {
		if leader == f.passed {
			f.passed = LeaseHolder{}
		} else {
			o, status = OutcomeAbandoned, 0
		}
	}
	return f.Wake(o, status)
}

// Wake is the event "the key's leader finished with o" (status: the
// leader's response status on a failure, 0 if unknown): serve from the
// cache, lead next, answer with the failure, or go upstream.
func (f *Flight) Wake(o Outcome, status int) []Action {
	f.reset()
	f.awaited = false // the next failure's tick may wait for its wake-up again
	f.wake(o, status)
	return f.actions()
}

func (f *Flight) wake(o Outcome, status int) {
	if f.state != flightFollowing {
		return
	}
	c, req := f.c, f.req
	whole := status&refusedWhole != 0
	status &^= refusedWhole // what is left: the status, and its Retry-After above retryAfterShift
	if o != OutcomeUncacheable {
		d, read := c.relookup(req)
		if d == Serve {
			// A fresh entry is the leader's answer; a stale one is served
			// as stale, with its refresh, as Tick's look serves it (reviews
			// Z194, Z225).
			if req.Status == StatusHit {
				f.serve(StatusCollapsed)
			} else {
				f.serve(StatusNone)
			}
			return
		}
		// A client abort is no upstream failure, nor is an answer stored
		// that this request cannot be served from (its own max-age or
		// min-fresh refuses it, an item of its batch was too large to
		// keep): it leads or follows the next call without counting one.
		if o != OutcomeAbandoned && o != OutcomeStored {
			f.failures++
			if !whole && c.StaleIfError(req) {
				// (Not for a whole answer the cache refused: the model
				// did not fail, and the next call may pass; review Z177.)
				f.serve(StatusStaleIfError)
				return
			}
			switch step := c.afterLeaderFailure(req, f.failures); {
			case step == stepFail && !whole:
				f.count(EvRetriesExhausted)
				f.state = flightDone
				code, headers, body := c.leaderFailedResponse(req, status)
				req.Status = StatusLeaderFailed
				f.emit(Action{Kind: ActServeLocal, Status: code, Headers: headers, Body: body, CacheStatus: StatusLeaderFailed})
				return
			case step != stepRetry: // stepForward, or a whole answer refused (refusedWhole)
				f.count(EvRetriesExhausted)
				f.forward(true)
				return
			}
		}
		if b := req.batch; b != nil && b.tooLarge {
			// Its answer cannot be built from what the leader stored: it
			// goes upstream now, not behind the next call too (review
			// Z272: identical batches past maxBatchBuild reached the model
			// one after another).
			f.forward(true)
			return
		}
		switch f.join() {
		case RoleFollower:
			return // another follower leads now: keep waiting
		case RoleLeader:
			if f.lead(EvPromoted, read) { // relookup just read the model's state
				f.serve(StatusCollapsed)
				return
			}
			f.upstream(true)
			return
		}
	}
	f.forward(true)
}

// Tick is the periodic re-check of a follower: past coalesce.max_wait it
// goes upstream itself; if its key is no longer led (the leader's message
// was lost, or its lease expired) it acts as if woken; otherwise it makes
// sure its worker is among the lease's waiters (a new leader may have
// taken over a lease it never joined).
func (f *Flight) Tick() []Action {
	f.reset()
	if f.state == flightL2Wait {
		f.l2Tick()
		return f.actions()
	}
	if f.state != flightFollowing {
		return f.actions()
	}
	c, req := f.c, f.req
	if sinceOrNow(&f.waitSince, c.nowMs()) >= req.Route.Coalesce.MaxWait.Milliseconds() {
		// This proxy's cache first: another request (a follower timed
		// out before it) may have stored the answer meanwhile, which a
		// new request finds (review Z193); not for a client's no-cache.
		// A stale entry is served as stale, as a new request's would
		// be, with its refresh (review Z194).
		if req.Status != StatusRevalidate {
			if d, _ := c.relookup(req); d == Serve {
				if req.Status == StatusHit {
					f.serve(StatusCollapsed)
				} else {
					f.serve(StatusNone) // the look's status: stale
				}
				return f.actions()
			}
		}
		// Upstream as a leader goes: through an L2 lookup first, which
		// may find the answer another proxy stored, and which gives its
		// own answer the generations its write to L2 needs. Forwarded
		// as it was, its answer reached L1 only, and the other proxies
		// asked the model again (review Z165). A mesh lease it meets
		// ends at max_wait, counted from this wait (l2Wait).
		f.count(EvTimeout)
		f.upstream(true)
		return f.actions()
	}
	switch led, ended := c.stillLed(req); {
	case !led:
		// The lease says how the lead ended only when a mark or a lapsed
		// lease is left; a failure leaves the lease free, and the wake-up
		// carries its status.
		if ended == OutcomeFailed && f.awaitWake() {
			return f.actions()
		}
		f.count(EvTickWakeup)
		f.wake(ended, 0)
	default:
		f.awaited = false // led again: the next leader's end may be waited for
		followed := f.followed
		switch f.join() {
		case RoleFollower:
			// If another than the leader this request followed leads
			// now, that one ended, and a follower woken first (or a new
			// request) took the lease; its wake-up to this worker may
			// still be on its way. When it comes, its failure counts
			// (WakeFrom), as it does when no tick runs in between.
			if followed != f.followed {
				f.passed = followed
			}
		case RoleLeader:
			// The leader finished between the check and the join (its
			// wake-up not delivered yet): the lease is this request's now.
			// How that leader ended is in the wake-up. If its failure would
			// spend this request's last retry, leading now would be a call
			// more than the route allows: it hands the lease back and
			// waits for the wake-up, as a tick that found the key unled
			// does (awaitWake).
			if f.awaitWake() {
				f.handBack()
				return f.actions()
			}
			// Otherwise it leads, as a woken follower would — a new leader
			// re-checks the cache first, and whatever it does next
			// releases the lease.
			f.count(EvTickWakeup)
			if f.lead(EvPromoted, false) {
				f.serve(StatusCollapsed)
			} else {
				f.upstream(true)
			}
		}
	}
	return f.actions()
}

// awaitWake reports whether a tick that found the key no longer led waits
// one more tick for the leader's wake-up. A leader releases its lease and
// then posts the wake-up, which carries its outcome and its failure's
// status, and a tick may run in between, or before the wake-up's
// delivery. A follower whose retries are exhausted may have to answer
// with that failure: it waits for the wake-up once, instead of answering
// 502 for the leader's 503 (if the wake-up says the answer was stored, or
// a stale copy may serve, Wake does that). Any other follower would lead
// or go upstream next, which needs no status, and does so at once. A
// wake-up lost for good costs one more tick; once the key is led again,
// or a wake-up arrived, the next leader's end may be waited for again.
func (f *Flight) awaitWake() bool {
	if f.awaited || f.c.afterLeaderFailure(f.req, f.failures+1) != stepFail {
		return false
	}
	f.awaited = true
	return true
}

// handBack releases the lease a tick's join took for a request that does
// not lead under it (Tick), as an abandoned lead (Cache.finishWake): it
// leaves no hit-for-miss mark, and any request that joined it meanwhile
// is woken to look again, counting no failure. Out of line: it runs in
// that race only.
//
//go:noinline
func (f *Flight) handBack() {
	if wake, ok := f.c.finishWake(f.req, LeaseHolder{f.vm, f.id}, OutcomeAbandoned, 0); ok {
		f.emit(wake)
	}
}

// FinishLead is the event "this request's upstream answer ended with o"
// (status: its response status, 0 if none). A leader releases its lease
// and wakes the followers; anything else does nothing.
func (f *Flight) FinishLead(o Outcome, status int) []Action {
	f.reset()
	f.finishLead(o, status)
	return f.actions()
}

func (f *Flight) finishLead(o Outcome, status int) {
	if !f.leader {
		return
	}
	f.leader = false
	c, req := f.c, f.req
	if o != OutcomeStored && !req.l2.hit { // an L2 hit not copied into L1 is no failure
		f.count(EvLeaderFailed)
	}
	if req.l2.lease && (o != OutcomeStored || req.l2.put == nil) {
		f.emit(Action{Kind: ActDispatch, Call: c.l2Release(req)})
	}
	// Cache.finishWake's work, done here: a lead with no waiters (the
	// rule) then neither builds nor returns a zero Action of 200 bytes.
	// Its release is Cache.Finish's call, made here too: every lead ends
	// here, and a frame of Finish's own would only pass the call on.
	now := c.nowMs()
	if vms, _ := c.leases.Release(req.LeaseFP(), f.vm, f.id, now, hitForMissUntil(req, o, now)); len(vms) > 0 {
		if o == OutcomeFailed && status != 0 {
			status |= int(f.retryAfter) << retryAfterShift
			if f.fwdStatus == 0 {
				status |= envoyReplied // not the model's (Z225)
			}
		}
		f.wakeWaiters(vms, o, status)
	}
}

// wakeWaiters emits the wake-up of the workers vms, waiters of the lead that
// ended with o. Out of line: a lead with no waiters (the rule) runs none
// of its code.
//
//go:noinline
func (f *Flight) wakeWaiters(vms []uint64, o Outcome, status int) {
	f.emit(wakeAction(f.req, vms, LeaseHolder{f.vm, f.id}, o, status))
}

// Done is the event "the request is over" (answered, cut, or its client
// gone): a follower stops waiting; a request still leading hands the lead
// on as failed.
func (f *Flight) Done() []Action {
	f.reset()
	f.state = flightDone
	f.finishLead(OutcomeFailed, 0)
	return f.actions()
}
