package cachecore

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"time"
)

// The L2 tier's steps of the request protocol (the store side is l2.go).
// A request about to go upstream (a leader, or a miss that does not
// coalesce) first looks its key up in L2 — one Call, bounded by
// l2.timeout. A hit is copied into L1 with its remaining life and served
// (Cache-Status detail=l2); the request's local followers then collapse on
// it. A miss or any failure goes upstream as if there were no L2; an
// answer the request stores is then written to L2 behind the response.

type l2State struct {
	tried   bool   // the lookup was made (or skipped) once
	paused  bool   // the request was paused when it was made
	known   bool   // gens read: the answer may be written to L2
	gens    l2Gens // the generations the lookup saw
	hit     bool   // answered from L2
	put     []byte // the value to write (set by Store)
	until   int64  // its stale_until (unix ms)
	id      []byte // the L2 identity
	lease   bool   // holds (or may hold) the cross-proxy lease
	leaseAt int64  // unix ms, when it was last set or renewed (KeepLease)
	creates int    // missing generations created (SET NX) for this request
	mark    uint64 // the purge mark when the last lookup was sent (purgeMark)
	marked  bool   // mark could be read
	// rejected: l2.rejected was counted for this request (once: a wait
	// on another proxy meets the same value at every poll; review Z209)
	rejected bool

	polling  bool  // a poll of L2 is under way (waiting on another proxy)
	lastPoll bool  // the poll at max_wait was sent (l2Tick)
	lastAt   int64 // unix ms, when it was sent
	waited   bool  // it has waited on another proxy: waitSince is set
	nextPoll int64 // unix ms
	backoff  int64 // ms
}

// l2Rejected counts an L2 value the request may not serve, once a request.
func (f *Flight) l2Rejected() {
	if !f.req.l2.rejected {
		f.req.l2.rejected = true
		f.count(EvL2Rejected)
	}
}

// upstream sends a request that must go upstream — through an L2 lookup
// first, when L2 applies and was not tried yet. resume: the request is
// paused and must be resumed. Flight.miss forwards a request itself, not
// through here, when neither can apply (no L2 configured, not held): a
// new reason here not to forward at once must be one miss checks too.
func (f *Flight) upstream(resume bool) {
	c, req := f.c, f.req
	resume = resume || f.held
	if !req.l2.tried && c.l2On(req) {
		req.l2.tried, req.l2.paused = true, resume
		if c.l2Allowed() {
			f.state = flightL2
			f.emit(Action{Kind: ActDispatch, Call: f.l2Lookup()})
			return
		}
		f.count(EvL2BreakerOpen)
	}
	if resume {
		f.forward(true)
		return
	}
	f.state = flightDone
	f.emit(Action{Kind: ActForward})
}

func (f *Flight) l2Lookup() *Call {
	c, req := f.c, f.req
	req.l2.id = req.l2Identity()
	req.l2.mark, req.l2.marked = c.purgeMark()
	k := c.l2Keys(req)
	call := c.webdis("GET", "/MGET/"+k.all+"/"+k.model+"/"+k.entryGen+"/"+k.entry+"/"+k.lease, nil, c.cfg.L2.Timeout)
	call.Stream = f.id
	call.start = c.nowMs()
	call.Done = func(res CallResult) []Action {
		f.reset()
		f.l2Looked(call, res)
		return f.actions()
	}
	return call
}

// l2Looked continues the request with the lookup's (or a poll's) result.
func (f *Flight) l2Looked(call *Call, res CallResult) {
	c, req := f.c, f.req
	polling := f.state == flightL2Wait
	if f.state != flightL2 && !polling {
		return
	}
	req.l2.polling = false
	// A call that never started returns in the callback that made it: the
	// request is paused only if it already was.
	resume := !res.NotStarted || polling || req.l2.paused
	var look l2Look
	ok := !res.Failed && !res.NotStarted && res.Status == 200
	if ok {
		k := c.l2Keys(req)
		look, ok = parseL2Lookup(res.Body, c.l2AnswerCap(), k.all, k.model)
	}
	if !ok && res.Status == 200 && !res.Failed && l2LongValue(res.Body, c.l2AnswerCap()) {
		// L2 answered with a value over this proxy's lookup cap: one another
		// proxy wrote under a larger l2.max_entry_bytes (a rollout of a
		// lower limit). Not a fault of L2, so the breaker is left alone: the
		// request goes upstream as a miss, as for a value it may not serve.
		f.l2Rejected()
		f.l2Upstream(resume)
		return
	}
	if !ok {
		if res.Failed && int64(call.elapsed(c)) >= c.cfg.L2.Timeout.Milliseconds() {
			f.count(EvL2Timeout)
		} else {
			f.count(EvL2Error)
		}
		c.l2Result(false)
		if polling && !res.NotStarted {
			return // poll again on a later tick, unless the breaker opens (l2Tick)
		}
		if polling && req.l2.lastPoll {
			f.count(EvTimeout) // the wait ends at max_wait, as counted (review Z79)
		}
		f.l2Upstream(resume)
		return
	}
	if len(look.missing) > 0 {
		// A generation is gone (evicted, Redis restarted or failed over):
		// reading it as 0 could bring back values purged under 0. Nothing
		// is served or written until it exists again, created at a random
		// start (SET NX: the first proxy's wins), then looked up anew.
		if req.l2.creates < 2 {
			req.l2.creates++
			req.l2.paused = resume
			f.emit(Action{Kind: ActDispatch, Call: f.l2CreateGen(look.missing[0])})
			return
		}
		f.count(EvL2Error)
		c.l2Result(false)
		if polling {
			return
		}
		f.l2Upstream(resume)
		return
	}
	// A success of L2 only with every generation there: a lookup that
	// finds one missing is decided by its creation (l2CreateGen).
	c.l2Result(true)
	req.l2.known, req.l2.gens = true, look.gens
	if look.value != nil {
		e, ver, err := decodeL2Value(look.value, req.l2.id, req.stableLen, look.gens)
		switch {
		case err == errL2Corrupt || err == errL2Foreign:
			f.l2Rejected() // the answer upstream overwrites it
		case err == nil && e.FreshUntil-c.nowMs() > c.cfg.L2.TTLSlack.Milliseconds() && c.freshness(req, e, c.nowMs()) == fresh:
			// (fresh also for the client's max-age and min-fresh)
			f.l2Serve(e, ver)
			return
		}
	}
	if polling && look.leased {
		if !req.l2.lastPoll {
			return // the other proxy still leads: poll again later
		}
		f.count(EvTimeout) // the look at max_wait: no answer yet, so the model is asked
	}
	if !polling {
		f.count(EvL2Miss)
	}
	if f.leader && req.Route.Coalesce.Enabled && !look.leased && c.cfg.L2.Write == "async" {
		f.state = flightL2
		f.emit(Action{Kind: ActDispatch, Call: f.l2Lease()})
		return
	}
	if f.leader && look.leased && !polling {
		f.count(EvL2LeaseLost)
		f.l2Wait()
		return
	}
	f.l2Upstream(resume)
}

// l2Lease takes the cross-proxy lease (SET NX EX): won, the request goes
// upstream and its answer reaches the other proxies through L2; lost,
// it waits for that answer (l2Wait).
func (f *Flight) l2Lease() *Call {
	c, req := f.c, f.req
	k := c.l2Keys(req)
	token := strconv.FormatUint(c.rand(), 36)
	call := c.webdis("GET", "/SET/"+k.lease+"/"+token+"/NX/EX/"+c.l2LeaseSeconds()+".raw", nil, c.cfg.L2.Timeout)
	call.Stream = f.id
	call.start = c.nowMs()
	req.l2.leaseAt = call.start // Redis counts its life from later
	// The request ended (its client went away) during the call: the
	// host calls Gone, not Done.
	call.Gone = func(res CallResult) []Action {
		if leaseMayBeHeld(res, leaseReply(res)) {
			return []Action{{Kind: ActDispatch, Call: c.l2Release(req)}}
		}
		return nil
	}
	call.Done = func(res CallResult) []Action {
		f.reset()
		v := leaseReply(res)
		mayHold := leaseMayBeHeld(res, v)
		if f.state != flightL2 {
			return call.Gone(res)
		}
		if mayHold {
			req.l2.lease = true
		}
		switch v {
		case respSimple:
			c.l2Result(true)
			f.count(EvL2LeaseWon)
			req.l2.lease = true
		case respNil:
			c.l2Result(true)
			f.count(EvL2LeaseLost)
			if req.l2.waited && sinceOrNow(&f.waitSince, c.nowMs()) >= req.Route.Coalesce.MaxWait.Milliseconds() {
				// Lost again past max_wait: the wait is over, not begun
				// anew with another look (review Z81).
				f.count(EvTimeout)
				break
			}
			f.l2Wait()
			return f.actions()
		default:
			c.l2Result(false)
			if res.Failed && int64(call.elapsed(c)) >= c.cfg.L2.Timeout.Milliseconds() {
				f.count(EvL2Timeout)
			} else {
				f.count(EvL2Error)
			}
		}
		f.l2Upstream(true) // paused since the lookup
		return f.actions()
	}
	return call
}

func leaseReply(res CallResult) respKind {
	if !res.Failed && !res.NotStarted && res.Status == 200 {
		return parseRESP(res.Body)
	}
	return respBad
}

// leaseMayBeHeld: the lease may be in Redis after the call — won, or a
// call that started and failed (a timeout after Redis set it). It is
// released once the request no longer needs it.
func leaseMayBeHeld(res CallResult, v respKind) bool {
	return v == respSimple || (!res.NotStarted && v != respNil && v != respError)
}

// l2CreateGen creates a missing generation at a random start (SET NX,
// so that racing proxies agree on the first one), then looks the request
// up again.
//
// A model's generation is created for the model name in the request —
// the client's to choose — before the model is asked, so it is created
// with an expiry (EX l2GenLife): a tenant cycling made-up names, each
// answered 404, used to leave a key in Redis for good per name, which
// volatile-ttl could never evict. The generation lives longer than any
// entry written when it was created, and each entry written under it
// renews it (l2Write), so a model in use keeps its generation; one that
// expires anyway is created again at a new random start, a plain miss for
// what was written under the old one. The mesh-wide "all" generation is
// one key: it keeps no expiry.
func (f *Flight) l2CreateGen(key string) *Call {
	c, req := f.c, f.req
	start := strconv.FormatUint(c.rand()>>2, 10) // room left for INCR (signed 64-bit in Redis)
	path := "/SET/" + key + "/" + start + "/NX"
	if key != c.cfg.L2.Prefix+"g" {
		path += "/EX/" + strconv.FormatInt(c.l2GenLife(), 10)
	}
	call := c.webdis("GET", path+".raw", nil, c.cfg.L2.Timeout)
	call.Stream = f.id
	call.Done = func(res CallResult) []Action {
		f.reset()
		if f.state != flightL2 && f.state != flightL2Wait {
			return nil
		}
		if !res.NotStarted {
			req.l2.paused = true
		}
		if k := parseRESP(res.Body); res.Failed || res.NotStarted || res.Status != 200 || k != respSimple && k != respNil {
			// Not created (a read-only replica after a failover, a Redis
			// out of memory): a failure of L2, as a failed lookup is
			// (l2Result), not a reason to look up again and find the
			// generation missing again.
			f.count(EvL2Error)
			c.l2Result(false)
			if f.state != flightL2Wait { // a poller polls again on a later tick
				f.l2Upstream(req.l2.paused)
			}
			return f.actions()
		}
		f.emit(Action{Kind: ActDispatch, Call: f.l2Lookup()})
		return f.actions()
	}
	return call
}

// l2Wait pauses the request until the leading proxy's answer is in L2 (it
// polls on the ticks, with backoff), the lease is gone (it leads next) or
// coalesce.max_wait passed (it goes upstream).
//
// A request that leads its key on this proxy keeps its followers here
// waiting meanwhile: its local lease, taken for coalesce.max_wait when it
// joined, is moved to twice that from now (this wait, then its own
// upstream call if it comes to that), so that they do not take it for a
// dead leader (Tick) and count a failure no model call had.
func (f *Flight) l2Wait() {
	f.state = flightL2Wait
	now := f.c.nowMs()
	if !f.req.l2.waited {
		// coalesce.max_wait bounds the whole wait on other proxies: a
		// lease race lost again later does not start it over. Nor does
		// this proxy's: a follower promoted at max_wait, when its leader
		// here was gone, waited max_wait again on that leader's mesh
		// lease (review Z165).
		f.req.l2.waited = true
		if f.waitSince == 0 {
			f.waitSince = now
		}
	}
	if f.leader {
		wait := f.req.Route.Coalesce.MaxWait.Milliseconds()
		if ok, _ := f.c.leases.Extend(f.req.LeaseFP(), f.vm, f.id, now, now+2*wait); ok {
			f.leaseEnd = now + 2*wait
		}
	}
	f.req.l2.backoff = 0
	f.req.l2.nextPoll = 0
	f.emit(Action{Kind: ActWait})
}

// l2Tick is Tick for a request waiting on another proxy.
func (f *Flight) l2Tick() {
	c, req := f.c, f.req
	now := c.nowMs()
	waited, maxWait, tick := sinceOrNow(&f.waitSince, now), req.Route.Coalesce.MaxWait.Milliseconds(), c.cfg.TickPeriod.Milliseconds()
	sinceOrNow(&req.l2.lastAt, now) // a clock stepped back bounds the last look by the step's start (review Z80)
	switch {
	case waited >= maxWait && !req.l2.polling && !req.l2.lastPoll && c.l2Allowed():
		// One last look at max_wait, which decides as a poll under way
		// at it does: an answer that reached L2 since the last poll is
		// served, not asked of the model again (reviews Z75, Z77).
		req.l2.polling, req.l2.lastPoll, req.l2.lastAt = true, true, now
		f.emit(Action{Kind: ActDispatch, Call: f.l2Lookup()})
	case waited >= maxWait && (!req.l2.polling || now-max(f.waitSince+maxWait, req.l2.lastAt) >= c.cfg.L2.Timeout.Milliseconds()):
		// A poll under way at the deadline, or the last look, decides
		// first (each bounded by l2.timeout from when the wait could end
		// or the look was sent; review Z79): a hit is served, a held
		// lease ends the wait there (l2Looked), anything else here at the
		// next tick.
		f.count(EvTimeout)
		f.l2Upstream(true)
	case req.l2.polling || now < req.l2.nextPoll && req.l2.nextPoll-now <= 1000: // (further: the clock stepped back)
	case !c.l2Allowed():
		f.count(EvL2BreakerOpen)
		f.l2Upstream(true)
	default:
		req.l2.polling = true
		req.l2.backoff = min(max(2*req.l2.backoff, tick), 1000)
		// The last poll falls on the wait's last tick, not past its end:
		// an answer in L2 by then is served, not asked of the model again
		// (review Z75).
		req.l2.nextPoll = min(now+req.l2.backoff, max(f.waitSince+maxWait-tick, now+tick))
		f.emit(Action{Kind: ActDispatch, Call: f.l2Lookup()})
	}
}

// l2LeaseSeconds is l2.lease_ttl in whole seconds (EX), rounded up: a
// lease kept for less than lease_ttl (1 s of "1900ms") lapsed before its
// renewal, due at half of lease_ttl.
func (c *Cache) l2LeaseSeconds() string {
	return strconv.FormatInt(int64((c.cfg.L2.LeaseTTL+time.Second-1)/time.Second), 10)
}

// keepL2Lease is KeepLease for the cross-proxy lease: a leader that holds
// it renews it (EXPIRE, lease_ttl from now) once half of l2.lease_ttl has
// passed since it was set or last renewed. Without it an answer slower
// than lease_ttl (a long completion) let another proxy find the lease gone
// and no answer in L2, take the lease and ask the model a second time, and
// one more proxy each lease_ttl after that. The renewal is one call per
// lease_ttl/2 of a long answer, none for one within lease_ttl/2; its
// result changes nothing (Done is empty): failed, the lease lapses as
// before. It is a plain EXPIRE, as the release is a plain DEL (RATIONALE):
// a lease that lapsed in Redis and was taken by another proxy is
// prolonged, which holds a third proxy's leader as that one's own lease
// would. The host calls it on its VM's ticks, which come every
// tick_period whenever L2 is configured.
func (f *Flight) keepL2Lease() []Action {
	c, req := f.c, f.req
	if !req.l2.lease {
		return nil
	}
	now := c.nowMs()
	if now >= req.l2.leaseAt && now-req.l2.leaseAt < c.cfg.L2.LeaseTTL.Milliseconds()/2 || !c.l2Allowed() {
		return nil // not due (due at once if the clock stepped back past it), or webdis is failing (the breaker is open)
	}
	req.l2.leaseAt = now
	call := c.webdis("GET", "/EXPIRE/"+c.l2Keys(req).lease+"/"+c.l2LeaseSeconds()+".raw", nil, c.cfg.L2.WriteTimeout)
	call.Done = func(CallResult) []Action { return nil }
	return []Action{{Kind: ActDispatch, Call: call}}
}

// l2Release lets go of the cross-proxy lease (DEL), so that another proxy
// can lead at once rather than after l2.lease_ttl. It is tried again as
// every other write to L2 is (l2WriteTries): a lease left behind by one
// transport failure held every other proxy's request until
// coalesce.max_wait, and then sent them all upstream at once.
func (c *Cache) l2Release(req *Request) *Call {
	req.l2.lease = false
	return c.l2Invalidate("DEL", c.l2Keys(req).lease, "the lease of an entry", nil)
}

// l2Upstream: L2 cannot answer; the request goes upstream.
func (f *Flight) l2Upstream(resume bool) {
	f.state = flightDone
	f.req.Status = StatusMiss
	f.emit(Action{Kind: ActForward, Resume: resume})
}

// l2Serve answers from the L2 entry e (whose answer reported the model
// version ver), copied into L1 first so that this proxy's next requests
// (and the followers woken now) hit locally. When it cannot be copied, the
// followers are not told "stored" (they would find nothing and count a
// leader failure): they are woken as after an abandoned lead, which is no
// failure — the next one leads and finds the entry in L2 itself. Nor
// when a purge reached L1 while the lookup was out (l2Unpurged): the copy
// is taken out again, since the value may be one Redis held just before
// that purge reached it. This request is still served the value, as it
// would have been had its answer come a moment earlier.
func (f *Flight) l2Serve(e *Entry, ver string) {
	c, req := f.c, f.req
	f.count(EvL2Hit)
	req.l2.hit = true
	o := OutcomeAbandoned
	res, ok := c.l2Install(req, e, ver)
	if ok || len(res.Inserts) > 0 {
		// Counted also when a purge freed the copy's slot between its two
		// writes: the purge counted the slot freed (review Z67).
		f.emit(Action{Kind: ActNoteStore, Stored: &Stored{Result: res}, Request: req, Route: req.Route})
	}
	if ok {
		o = OutcomeStored
		if !c.l2Unpurged(req) {
			if freed, _ := c.table.Remove(req.FP, req.Key); freed {
				f.emit(Action{Kind: ActFreed, N: 1})
			}
			o = OutcomeAbandoned
		}
		if o == OutcomeStored {
			// Installed in L1, its turn is indexed here as a store's is:
			// else a paraphrase finds it only on the proxy that asked
			// the model.
			for _, a := range c.semIndexTurn(req, req.sem, res.FreshUntil) {
				f.emit(a)
			}
		}
	}
	req.Entry = e
	req.Status = StatusHit
	f.finishLead(o, 0)
	f.serve(StatusHit)
}

// l2Install stores e in L1 under the request's own key, with the life it
// has left. ver is the version the answer reported (from the L2 value,
// for a header as for a body_path version source); the entry is installed
// only if this proxy then keys it under the very identity it was written
// under in L2.
func (c *Cache) l2Install(req *Request, e *Entry, ver string) (StoreResult, bool) {
	var adm Admission
	if req.Route.ModelVersion.Enabled() {
		adm.Version = ver
	}
	// The copy's stale windows are this proxy's route's, as README says:
	// it kept the writer's, and a proxy with longer windows than the
	// writer neither served it stale nor kept it for stale-if-error
	// (review Z165).
	staleUntil := e.FreshUntil + c.staleWindow(req).Milliseconds()
	if e.Flags&FlagNoStale != 0 { // the upstream said must-revalidate
		staleUntil = e.FreshUntil
	}
	res, ok := c.prepareStore(req, adm, staleUntil)
	if !ok {
		return res, false
	}
	c.rebuildKey(req)
	if id := req.l2Identity(); !bytes.Equal(id, e.Key) {
		res.Reason = ReasonInvalidated // this proxy moved to another version meanwhile
		return res, false
	}
	l1 := *e
	l1.Key, l1.StaleUntil = req.Key, staleUntil
	if l1.EncodedSize() > req.Route.MaxEntryBytes {
		res.Reason = ReasonTooLarge
		return res, false
	}
	now := c.nowMs()
	ins, err := c.table.InsertSince(req.FP, TenantTag(req.tenant), l1.StaleUntil, l1.AppendEncode(nil), now, req.lookedAt)
	if err != nil {
		if indexWritten(err) { // the index was written (and a purge freed the slot, or its entry was not written)
			res.Inserts = []InsertResult{ins}
		}
		return res, false
	}
	res.FreshUntil = l1.FreshUntil
	res.Inserts = []InsertResult{ins}
	// The entry served is the copy: with this proxy's stale time, an
	// early refresh of the hit took the copy it had just made for a store
	// since, and made no call (review Z208).
	e.StaleUntil = l1.StaleUntil
	return res, true
}

// l2Unpurged reports whether the purge mark is where it was when the
// request's lookup was sent: no purge L2 already had was applied to L1
// since, so the value the lookup brought may stay in L1. It is read after
// the copy, not before: a purge applied between a check and the copy
// would find nothing to take out (its VM moves the mark before it does),
// and the copy would stay. One shared-data read, on an L2 hit only.
func (c *Cache) l2Unpurged(req *Request) bool {
	mark, ok := c.purgeMark()
	return ok && req.l2.marked && mark == req.l2.mark
}

// l2Stage keeps the L2 value of an entry just stored in L1 (Store), for
// the write behind the response.
func (c *Cache) l2Stage(req *Request, e *Entry, version string) {
	l := c.cfg.L2
	if l == nil || l.Write != "async" || !req.l2.known || req.batch != nil {
		return
	}
	id := req.l2Identity() // the version may have moved on with this answer
	l2e := *e
	l2e.Key = id
	if l2e.EncodedSize()+l2ValueHeader+2+len(version) > l.MaxEntryBytes {
		return
	}
	v, ok := encodeL2Value(&l2e, req.l2.gens, version)
	if !ok {
		return
	}
	req.l2.id = id
	req.l2.put, req.l2.until = v, e.StaleUntil
}

// l2Write emits the write-behind of a stored answer: SETEX with the
// entry's whole life (fresh and stale windows), off the client's path; a
// failure is only counted. Once it is written, the model's generation is
// renewed (l2Renew), so that it outlives the entry.
func (f *Flight) l2Write() {
	c, req := f.c, f.req
	if req.l2.put == nil {
		return
	}
	k := c.l2Keys(req)
	life := (req.l2.until - c.nowMs()) / 1000
	if life < 0 {
		return
	}
	w := l2Put{entry: k.entry, life: life + 1, value: req.l2.put, gens: req.l2.gens, all: k.all, model: k.model, route: req.Route}
	req.l2.put = nil
	if req.l2.lease {
		w.release = c.l2Release(req)
	}
	// Not written while the breaker is open (L2 is skipped for its cool
	// down, writes too), nor past the VM's budget of write-behinds in
	// flight: a write outlives its request and holds its value until
	// webdis answers or write_timeout ends it (review Z224).
	skip := EvL2BreakerOpen
	if c.l2Allowed() {
		if c.l2Writing == 0 || c.l2Writing+len(w.value) <= maxL2Writing {
			w.held = len(w.value)
			c.l2Writing += w.held
			f.emit(Action{Kind: ActDispatch, Call: c.l2PutCall(w)})
			return
		}
		skip = EvL2WriteSkipped
	}
	f.emit(Action{Kind: ActCount, Event: skip, Route: req.Route})
	if w.release != nil {
		f.emit(Action{Kind: ActDispatch, Call: w.release})
	}
}

// maxL2Writing bounds the bytes of the values of a VM's write-behinds in
// flight; one write is let go whatever its size.
const maxL2Writing = 4 << 20

// l2Written ends write-behind w, answered or given up.
func (c *Cache) l2Written(w *l2Put) {
	c.l2Writing -= w.held
	w.held = 0
}

// l2Put is a write-behind under way: it outlives the request.
type l2Put struct {
	entry, all, model string // keys
	life              int64  // seconds
	value             []byte // base64, as encodeL2Value made it
	gens              l2Gens
	route             *Route
	release           *Call // the cross-proxy lease's release, if held
	held              int   // bytes counted in Cache.l2Writing until the write ends
}

// l2PutCall is the write of w, or first the reseeding of a generation
// an INCR made (l2Reseed).
func (c *Cache) l2PutCall(w l2Put) *Call {
	if w.gens.all < l2RandomGen {
		return c.l2Reseed(w, w.all, 4)
	}
	if w.gens.model < l2RandomGen {
		return c.l2Reseed(w, w.model, 12)
	}
	call := c.webdis("PUT", "/SETEX/"+w.entry+"/"+strconv.FormatInt(w.life, 10)+".raw", w.value, c.cfg.L2.WriteTimeout)
	call.Done = func(res CallResult) []Action {
		c.l2Written(&w)
		v := respBad
		if !res.Failed && !res.NotStarted && res.Status == 200 {
			v = parseRESP(res.Body)
		}
		ev := EvL2WriteError
		if v == respSimple {
			ev = EvL2Written
		}
		c.l2Result(ev == EvL2Written)
		acts := []Action{{Kind: ActCount, Event: ev, Route: w.route}}
		if renew := c.l2Renew(w.model, w.gens.model, w.route); ev == EvL2Written && renew != nil {
			acts = append(acts, Action{Kind: ActDispatch, Call: renew})
		}
		if w.release != nil {
			acts = append(acts, Action{Kind: ActDispatch, Call: w.release})
		}
		return acts
	}
	return call
}

// l2Reseed moves a generation an INCR made (below l2RandomGen: a purge,
// shadow invalidation or drift that found it missing made it 1, 2, …) to
// a random value before anything is written under it: SET XX GET. Such a
// generation comes back at the same small values each time it is evicted
// and purged again, and a value written under the first 1 would be
// served after the second purge. So no value is ever written under one.
// The write goes on only if the key still held the generation the lookup
// read (else a purge moved it since: the answer may be older than that
// purge, and is not written; the new value invalidates all before it
// either way). at is the generation's offset in the value's header.
func (c *Cache) l2Reseed(w l2Put, key string, at int) *Call {
	read := w.gens.model
	if at == 4 {
		read = w.gens.all
	}
	seed := l2RandomGen + c.rand()>>3 // room left for INCR
	call := c.webdis("GET", "/SET/"+key+"/"+strconv.FormatUint(seed, 10)+"/XX/GET.raw", nil, c.cfg.L2.WriteTimeout)
	call.Done = func(res CallResult) []Action {
		prev, answered := uint64(0), false
		reached := !res.Failed && !res.NotStarted && res.Status == 200
		if reached {
			prev, answered = parseRESPBulkUint(res.Body)
		}
		// A refusal (a Redis before 6.2 has no SET … GET) leaves the
		// breaker alone, as a refused renewal does: L2 answered.
		c.l2Result(reached)
		raw, err := base64.StdEncoding.DecodeString(string(w.value))
		if !answered || err != nil || len(raw) < l2ValueHeader || prev != read {
			c.l2Written(&w)
			var acts []Action
			if !answered {
				acts = append(acts, Action{Kind: ActCount, Event: EvL2WriteError, Route: w.route})
			}
			if w.release != nil {
				acts = append(acts, Action{Kind: ActDispatch, Call: w.release})
			}
			return acts
		}
		binary.LittleEndian.PutUint64(raw[at:], seed)
		w.value = base64.StdEncoding.AppendEncode(nil, raw)
		if at == 4 {
			w.gens.all = seed
		} else {
			w.gens.model = seed
		}
		return []Action{{Kind: ActDispatch, Call: c.l2PutCall(w)}}
	}
	return call
}
