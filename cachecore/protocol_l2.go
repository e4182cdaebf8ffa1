package cachecore

import "strconv"

// The L2 tier's steps of the request protocol (the store side is l2.go).
// A request about to go upstream (a leader, or a miss that does not
// coalesce) first looks its key up in L2 — one Call, bounded by
// l2.timeout. A hit is copied into L1 with its remaining life and served
// (Cache-Status detail=l2); the request's local followers then collapse on
// it. A miss or any failure goes upstream as if there were no L2; an
// answer the request stores is then written to L2 behind the response.

type l2State struct {
	tried bool   // the lookup was made (or skipped) once
	known bool   // gens read: the answer may be written to L2
	gens  l2Gens // the generations the lookup saw
	hit   bool   // answered from L2
	put   []byte // the value to write (set by Store)
	until int64  // its stale_until (unix ms)
	id    []byte // the L2 identity
	lease bool   // holds the cross-proxy lease
}

// upstream sends a request that must go upstream — through an L2 lookup
// first, when L2 applies and was not tried yet. resume: the request is
// paused and must be resumed.
func (f *Flight) upstream(resume bool) {
	c, req := f.c, f.req
	if !req.l2.tried && c.l2On(req) {
		req.l2.tried = true
		if c.l2Allowed() {
			f.state = flightL2
			f.emit(Action{Kind: ActDispatch, Call: f.l2Lookup()})
			return
		}
		f.count(EvL2BreakerOpen)
	}
	f.state = flightDone
	f.emit(Action{Kind: ActForward, Resume: resume})
}

func (f *Flight) l2Lookup() *Call {
	c, req := f.c, f.req
	req.l2.id = req.l2Identity()
	k := c.l2Keys(req, req.l2.id)
	call := c.webdis("GET", "/MGET/"+k.all+"/"+k.model+"/"+k.entry, nil, c.cfg.L2.Timeout)
	call.Stream = f.id
	call.start = c.nowMs()
	call.Done = func(res CallResult) []Action {
		f.reset()
		f.l2Looked(call, res)
		return f.actions()
	}
	return call
}

// l2Looked continues the request with the lookup's result.
func (f *Flight) l2Looked(call *Call, res CallResult) {
	c, req := f.c, f.req
	if f.state != flightL2 {
		return
	}
	resume := !res.NotStarted // a call that never started returns in the same callback
	var g l2Gens
	var value []byte
	ok := !res.Failed && !res.NotStarted && res.Status == 200
	if ok {
		g, value, ok = parseL2Lookup(res.Body)
	}
	if !ok {
		if res.Failed && int64(call.elapsed(c)) >= c.cfg.L2.Timeout.Milliseconds() {
			f.count(EvL2Timeout)
		} else {
			f.count(EvL2Error)
		}
		c.l2Result(false)
		f.l2Upstream(resume)
		return
	}
	c.l2Result(true)
	req.l2.known, req.l2.gens = true, g
	if value != nil {
		e, err := decodeL2Value(value, req.l2.id, g)
		switch {
		case err == errL2Corrupt || err == errL2Foreign:
			f.count(EvL2Rejected) // the answer upstream overwrites it
		case err == nil && e.FreshUntil-c.nowMs() > c.cfg.L2.TTLSlack.Milliseconds():
			f.l2Serve(e)
			return
		}
	}
	f.count(EvL2Miss)
	f.l2Upstream(resume)
}

// l2Upstream: L2 cannot answer; the request goes upstream.
func (f *Flight) l2Upstream(resume bool) {
	f.state = flightDone
	f.req.Status = StatusMiss
	f.emit(Action{Kind: ActForward, Resume: resume})
}

// l2Serve answers from the L2 entry e, copied into L1 first so that this
// proxy's next requests (and the followers woken now) hit locally.
func (f *Flight) l2Serve(e *Entry) {
	c, req := f.c, f.req
	f.count(EvL2Hit)
	req.l2.hit = true
	if res, ok := c.l2Install(req, e); ok {
		f.emit(Action{Kind: ActNoteStore, Stored: &Stored{Result: res}, Request: req, Route: req.Route})
	}
	req.Entry = e
	req.Status = StatusHit
	f.finishLead(OutcomeStored, 0)
	f.serve(StatusHit)
}

// l2Install stores e in L1 under the request's own key, with the life it
// has left.
func (c *Cache) l2Install(req *Request, e *Entry) (StoreResult, bool) {
	var adm Admission
	if h := req.Route.ModelVersion.Header; req.Route.ModelVersion.Enabled() && h != "" {
		adm.Version, _ = header(e.Headers, h)
	}
	res, ok := c.prepareStore(req, adm, e.StaleUntil)
	if !ok {
		return res, false
	}
	c.buildKey(req)
	l1 := *e
	l1.Key = req.Key
	now := c.nowMs()
	ins, err := c.table.Insert(req.FP, TenantTag(req.tenant), l1.StaleUntil, l1.AppendEncode(nil), now)
	if err != nil {
		return res, false
	}
	res.FreshUntil = l1.FreshUntil
	res.Inserts = []InsertResult{ins}
	return res, true
}

// l2Stage keeps the L2 value of an entry just stored in L1 (Store), for
// the write behind the response.
func (c *Cache) l2Stage(req *Request, e *Entry) {
	l := c.cfg.L2
	if l == nil || l.Write != "async" || !req.l2.known || req.batch != nil {
		return
	}
	id := req.l2Identity() // the version may have moved on with this answer
	l2e := *e
	l2e.Key = id
	if l2e.EncodedSize()+l2ValueHeader > l.MaxEntryBytes {
		return
	}
	req.l2.id = id
	req.l2.put, req.l2.until = encodeL2Value(&l2e, req.l2.gens), e.StaleUntil
}

// l2Write emits the write-behind of a stored answer: SETEX with the
// entry's whole life (fresh and stale windows), off the client's path; a
// failure is only counted.
func (f *Flight) l2Write() {
	c, req := f.c, f.req
	if req.l2.put == nil {
		return
	}
	k := c.l2Keys(req, req.l2.id)
	life := (req.l2.until - c.nowMs()) / 1000
	if life < 0 {
		return
	}
	call := c.webdis("PUT", "/SETEX/"+k.entry+"/"+strconv.FormatInt(life+1, 10)+".raw", req.l2.put, c.cfg.L2.WriteTimeout)
	req.l2.put = nil
	route := req.Route
	call.Done = func(res CallResult) []Action {
		v := respValue{}
		if !res.Failed && !res.NotStarted && res.Status == 200 {
			v = parseRESP(res.Body)
		}
		if v.kind == respSimple {
			c.l2Result(true)
			return []Action{{Kind: ActCount, Event: EvL2Written, Route: route}}
		}
		c.l2Result(false)
		return []Action{{Kind: ActCount, Event: EvL2WriteError, Route: route}}
	}
	f.emit(Action{Kind: ActDispatch, Call: call})
}
