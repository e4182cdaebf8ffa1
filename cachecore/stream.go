package cachecore

import (
	"strings"
	"time"
)

// Stream is one HTTP exchange on a cached route as the proxy sees it: the
// phases of its request and its response around its Flight. The host (the
// filter) calls one method per proxy callback with what the callback
// brought (reading bodies and headers through a Reader, only when the
// phase needs them), performs the returned Actions in order, and answers
// the proxy with the returned Verdict.
//
// Request side: a cacheable request's headers are held until the whole
// body is buffered, so that on a hit the router never opens an upstream
// request — or, where the proxy cannot hold them (HoldState), the headers
// go upstream at once and the body is held instead (a late decision: a
// hit then resets the upstream request opened for the headers). On a miss the request leads its key upstream or follows
// another request's lead, paused until woken (the Flight's rules).
// Response side: a storable response's headers are held until the body is
// complete and checked, so that Cache-Status can say truthfully whether it
// was stored.
//
// A Stream serves one request, from a zero Stream: a new one, or one Reset
// since its last request.
type Stream struct {
	streamFields
	// The actions of this stream's own events (not the Flight's), and
	// those of host feedback (Served, SendFailed), performed amid others.
	// Outside streamFields: Reset clears only the slots lists have used.
	out [12]Action
	fb  [8]Action
}

// streamFields are a Stream's fields but its actions: what Reset zeroes
// whole.
type streamFields struct {
	c     *Cache
	phase phase

	sized     bool  // the body's content-length is within max_request_bytes: the host buffers it
	reqSize   int   // a sized body's bytes buffered so far (its trailers end it)
	late      bool  // the headers went upstream: the body is held instead (late decision)
	lateCall  bool  // late, its body paused for a call of its own (Resolve)
	aborts    bool  // a local answer ends an upstream request opened for the headers
	aged      bool  // the answer sent holds cached content: its age counts in the SLO
	body      Held  // an unsized request body, copied
	heldSince int64 // ms, when its headers were held

	forwardedAt int64 // ms
	respHeaders [][2]string
	reqHeaders  [][2]string
	recording   Held // a copy of an event stream as it passes
	respCopy    bool // the answer has no content-length: copied, not buffered by the host
	respBody    Held
	respSize    int  // a held answer's bytes buffered so far (its trailers end it)
	lent        bool // the request was handed to a refresh or shadow comparison (Recycle)
	// countLater: the request went upstream with an outcome that can
	// still change (countsLater); it is counted when it ends (Done), or
	// by the local answer that took its place (Served).
	countLater bool

	// fl is in here, not beside: zeroed with the rest by one assignment
	// (one write-barrier check and one fill). Last, as it was beside: the
	// fields above keep their short offsets.
	fl Flight
}

// Reset makes s a zero Stream again, for another request once the host is
// done with this one (and has offered its request to Recycle). Where
// assigning Stream{} would write all of its 6 KB, most of them action
// slots no list has used, Reset zeroes its fields and its Flight (1.7 KB)
// but, of its own two arrays of actions (4 KB), only the slots used
// (clearActions): the host reuses a stream for every request, and Start
// does not zero the Flight again.
func (s *Stream) Reset() {
	s.streamFields = streamFields{}
	// An array no list used is not walked: a miss's actions are its
	// Flight's, and most requests use no feedback (clearActions stops at
	// the first unused slot; this is its first test, without the call).
	if s.out[0].Kind != actNone || s.fb[0].Kind != actNone {
		s.clearUsed()
	}
}

// clearUsed clears the slots of Reset's arrays that lists used. Out of
// line: Reset, without it, inlines where the host deletes a stream.
//
//go:noinline
func (s *Stream) clearUsed() {
	clearActions(s.out[:])
	clearActions(s.fb[:])
}

type phase uint8

const (
	phaseIdle        phase = iota // not a cached route: untouched
	phaseRequest                  // holding the request until its body is complete
	phaseFollowing                // paused: another request leads this key
	phaseForwarded                // sent upstream, waiting for the response
	phaseBuffering                // holding the response to check and store it
	phaseStreaming                // an event stream flows to the client while being recorded
	phaseRecording                // late: an answer flows to the client while being copied, judged at its end
	phasePassThrough              // response passes with a Cache-Status header only
	phaseServed                   // answered locally from the cache
)

// Verdict is what the host tells the proxy at the end of a callback.
type Verdict uint8

const (
	Continue Verdict = iota
	Pause
	// PauseWatermark: pause with back-pressure, the host's buffer never
	// filling towards its limit (a body copied chunk by chunk).
	PauseWatermark
	// Decided: the actions decide — Continue if the request went upstream
	// or passes, Pause if it was answered locally or waits (Resolve).
	Decided
	// PauseIfDispatched: Pause if a call among the actions was dispatched
	// (the call finishes the response), else Continue.
	PauseIfDispatched
)

// Reader reads what the current callback brought; each read is a host
// call, so the Stream reads only what its phase needs.
type Reader interface {
	RequestBody(size int) ([]byte, error)
	ResponseHeaders() ([][2]string, error)
	ResponseBody(size int) ([]byte, error)
	// CodeDetails is the proxy's response code details ("" if unknown).
	// The string may be valid only until the next call: it is read, never
	// kept.
	CodeDetails() string
}

// Begin is the event "the request headers of route arrived" (holdable:
// the host can read a body while it holds the headers): Start under a
// hold state that holds the headers, or that cannot and passes the
// request uncached.
func (s *Stream) Begin(c *Cache, route *Route, method, path string, headers [][2]string, endOfStream, holdable bool, vm uint64, id uint32) (Verdict, []Action) {
	hold := HoldState{Setting: HoldHeaders}
	if !holdable {
		hold.mode = holdUnsupported
	}
	return s.Start(c, route, method, path, headers, endOfStream, &hold, vm, id)
}

// Start is the event "the request headers of route arrived", with the
// VM's HoldState choosing how the body is read: headers held, a late
// decision (BeginLate), or — header_hold "hold" on a proxy that cannot
// hold — no cache. Every request of a cached route starts here, in one
// function: each call on this path is code every request runs (Begin and
// BeginLate are Start under a hold state of their own). s must be zero (a
// new Stream, or one Reset since its last request): Start does not zero
// its Flight again.
func (s *Stream) Start(c *Cache, route *Route, method, path string, headers [][2]string, endOfStream bool, hold *HoldState, vm uint64, id uint32) (Verdict, []Action) {
	holdable := hold.Holdable()
	late := !holdable && hold.Late()
	req := c.Begin(route, method, path, headers)
	s.c, s.reqHeaders = c, headers
	s.fl.start(c, req, vm, id)
	// A late decision reads the body as a held request does.
	step, acts := s.fl.RequestHeaders(headers, endOfStream, holdable || late)
	if step == ReqPass {
		return Decided, s.apply(acts)
	}
	s.sized = step == ReqHoldSized
	s.phase = phaseRequest
	if late {
		return Continue, s.goLate(s.out[:0])
	}
	if hold.Watching() { // else nobody looks at heldSince (the filter lists it only while watching)
		s.heldSince = c.nowMs()
	}
	return Pause, nil
}

// BeginLate is Begin for a late decision: the headers continue now
// (prepared by the actions), the body is held and decided on as Begin's.
func (s *Stream) BeginLate(c *Cache, route *Route, method, path string, headers [][2]string, endOfStream bool, vm uint64, id uint32) (Verdict, []Action) {
	hold := HoldState{Setting: HoldLate}
	return s.Start(c, route, method, path, headers, endOfStream, &hold, vm, id)
}

// goLate prepares the headers of a request about to go upstream before
// its body is decided on (appending the actions to out): the cache can
// only check an uncompressed answer. The answer's headers cannot be held
// either (the proxy that cannot hold request headers cannot hold response
// headers), so nothing may need rewriting them: an embeddings batch with
// some items cached is fetched whole (KeepBody) instead of cut to its
// missing items and merged. Out of line: its two actions' literals would
// otherwise sit in Start, among the lines every request runs.
//
//go:noinline
func (s *Stream) goLate(out []Action) []Action {
	s.late = true
	s.fl.req.KeepBody()
	return append(out, Action{Kind: ActCount, Route: s.fl.req.Route, Event: EvLateDecision},
		Action{Kind: ActRemoveRequestHeader, Name: "accept-encoding", Request: s.fl.req})
}

// LetGo lets a request held too long go (see HoldState): decided late on
// the body the proxy delivers once the headers continue, or — under
// header_hold "hold" — uncached.
func (s *Stream) LetGo(hold *HoldState) []Action {
	if !hold.Late() {
		return s.GiveUpHold(hold)
	}
	out := s.goLate(s.out[:0])
	return append(out, Action{Kind: ActCount, Route: s.fl.req.Route, Event: EvLateRescued})
}

// Late reports whether the request is decided late (its headers went
// upstream before its body was decided on).
func (s *Stream) Late() bool { return s.late }

// Request is the stream's request (nil: not a cached route).
func (s *Stream) Request() *Request { return s.fl.req }

// Answered reports whether the stream's answer is decided and passes as
// it is: not a cached route, passed through with its Cache-Status, or
// served by the cache. ResponseBody then does nothing (Continue, no
// actions), which the host may skip.
func (s *Stream) Answered() bool {
	return s.phase == phasePassThrough || s.phase == phaseServed || s.phase == phaseIdle
}

// Holding reports whether the request's headers are held for its body.
func (s *Stream) Holding() bool { return s.phase == phaseRequest && !s.late }

// Following reports whether the request waits for its key's leader.
func (s *Stream) Following() bool { return s.phase == phaseFollowing }

// Paused reports which side of the stream the protocol holds until a later
// event, one a root callback may bring: the request (waiting for its key's
// leader, or its headers held for its body or for a call's result) or the
// answer (its headers held while it is judged, or while a batch is asked
// for again whole). A host whose root callback
// broke the stream resumes that side, failing it open. A request decided
// late is paused only while its body waits for a call of its own (its
// headers went on; Resolve notes the wait).
func (s *Stream) Paused() (request, response bool) {
	switch s.phase {
	case phaseFollowing:
		return true, false
	case phaseRequest:
		return !s.late || s.lateCall, false
	case phaseBuffering:
		return false, true
	case phaseServed:
		return false, s.fl.refetching
	}
	return false, false
}

// HeldTooLong reports whether the request's headers have been held
// without a body for longer than HoldGrace (see HoldState). A request
// held while its VM was not watching (Start read no clock for it) is timed
// from the first look.
func (s *Stream) HeldTooLong() bool {
	if !s.Holding() {
		return false
	}
	now := s.c.nowMs()
	if s.heldSince == 0 {
		s.heldSince = now
	}
	return sinceOrNow(&s.heldSince, now) >= HoldGrace.Milliseconds()
}

// HoldLeft is how long a request HeldTooLong kept may still be held (ms):
// the host's tick is armed for it, so that it is let go at the grace, not
// at the next tick of one held before it.
func (s *Stream) HoldLeft() int64 {
	return max(HoldGrace.Milliseconds()-(s.c.nowMs()-s.heldSince), 0)
}

// LetGoJudged is the judgement of a request GiveUpHold let go as
// body_late, once its body came: at once (stall), the proxy held it back,
// and the request passed for the proxy's lack of support (its
// Cache-Status says hold-unsupported); later, a slow client's. It returns
// the request's bypass reason, to count.
func (s *Stream) LetGoJudged(stall bool) Reason {
	req := s.fl.req
	if req == nil {
		return ReasonBodyLate
	}
	if stall && req.Reason == ReasonBodyLate {
		req.Reason = ReasonHoldUnsupported
		s.fl.cs.Reason = ReasonHoldUnsupported
	}
	return req.Reason
}

// GiveUpHold lets a request held too long pass uncached, for the reason
// its hold state gives (HoldState.letGoReason).
func (s *Stream) GiveUpHold(hold *HoldState) []Action {
	return s.apply(s.fl.Bypass(hold.letGoReason()))
}

// Resolve turns Decided into the verdict the actions performed led to.
func (s *Stream) Resolve(v Verdict, dispatched bool) Verdict {
	switch v {
	case Decided:
		// A late request still deciding continues (its headers were let go)
		// unless it waits for a call of its own (an L2 lookup, an
		// embedding): then its body stays paused.
		s.lateCall = s.phase == phaseRequest && s.late && dispatched
		if s.phase == phaseForwarded || s.phase == phasePassThrough || (s.phase == phaseRequest && s.late && !dispatched) {
			return Continue
		}
		return Pause
	case PauseIfDispatched:
		if dispatched {
			return Pause
		}
		return Continue
	}
	return v
}

// RequestBody is the event "request body bytes arrived" (bodySize: what
// the proxy holds so far; hold: the VM's HoldState, told that bodies do
// reach a plugin holding headers).
func (s *Stream) RequestBody(bodySize int, endOfStream bool, rd Reader, hold *HoldState) (Verdict, []Action) {
	if s.phase != phaseRequest {
		return Continue, nil
	}
	if !s.late {
		hold.BodySeen()
	}
	if s.sized {
		// At most content-length <= max_request_bytes is ever held: the
		// proxy buffers it and hands the whole body over at the end.
		if !endOfStream {
			s.reqSize = bodySize
			return Pause, nil
		}
		body, err := rd.RequestBody(bodySize)
		if err != nil {
			return Decided, s.apply(s.fl.Bypass(ReasonInternal))
		}
		return Decided, s.apply(s.fl.RequestBody(body, false))
	}
	// Unknown length (chunked). A body held with StopIterationAndBuffer is
	// merged with each new chunk before the plugin is called, and a merge
	// over the buffer limit is a 413 whatever the plugin answers. So hold
	// it with back-pressure (never a 413), see each chunk once, and keep a
	// copy bounded by max_request_bytes.
	chunk, err := rd.RequestBody(bodySize)
	if err != nil && bodySize > 0 {
		s.body.Drop()
		return Decided, s.apply(s.fl.Bypass(ReasonInternal))
	}
	if ok, acts := s.fl.RequestChunk(&s.body, chunk); !ok {
		return Decided, s.apply(acts)
	}
	if !endOfStream {
		return PauseWatermark, nil
	}
	return Decided, s.apply(s.fl.RequestBody(s.body.Take(), true))
}

// RequestTrailers is the event "the request's trailers arrived": they end
// a body no chunk ended (the client sent trailers), which is then decided
// on as at the end of any body.
func (s *Stream) RequestTrailers(rd Reader, hold *HoldState) (Verdict, []Action) {
	if s.phase != phaseRequest {
		return Continue, nil
	}
	n := 0
	if s.sized {
		n = s.reqSize // the buffered body; an unsized one is copied already
	}
	return s.RequestBody(n, true, rd, hold)
}

// Wake is the event "the key's leader finished" for a following request
// (from the worker's wake-up queue).
func (s *Stream) Wake(o Outcome, status int) []Action {
	return s.WakeFrom(LeaseHolder{}, o, status)
}

// WakeFrom is Wake for a wake-up message from leader (Flight.WakeFrom).
func (s *Stream) WakeFrom(leader LeaseHolder, o Outcome, status int) []Action {
	if s.phase != phaseFollowing {
		return nil
	}
	return s.apply(s.fl.WakeFrom(leader, o, status))
}

// Tick re-checks a following request.
func (s *Stream) Tick() []Action {
	if s.phase != phaseFollowing {
		return nil
	}
	return s.apply(s.fl.Tick())
}

// Leading reports whether the request holds its key's lease: its host
// calls KeepLease on every tick until it does not.
func (s *Stream) Leading() bool { return s.fl.leader }

// KeepLease is the event "a tick found this request still leading"
// (Flight.KeepLease). It needs no context of the request's: it moves the
// lease in shared data, and its actions (a renewal of the cross-proxy
// lease) are calls of the plugin's, tied to no request. (A leader whose
// recording was dropped stopped leading then, in record.)
func (s *Stream) KeepLease() []Action { return s.fl.KeepLease() }

// LeaseTicksFast reports whether the request's lease needs its VM to tick
// at tick_period while it leads, rather than at the idle period: KeepLease
// moves a lease once half of max_wait is left, so a tick must come well
// within that (a quarter of max_wait apart, below 4 s with the default
// periods). A tick_period itself that long is not helped.
func (s *Stream) LeaseTicksFast() bool {
	return s.fl.req.Route.Coalesce.MaxWait < 4*max(s.c.cfg.TickPeriod, IdleTickPeriod)
}

// Continue is the event "a call of this request's (an L2 lookup, say)
// returned": acts are its Done's actions.
func (s *Stream) Continue(acts []Action) []Action { return s.apply(acts) }

// apply records the phase each of the Flight's actions leads to and fills
// in what the host needs to carry them out. A request decided late that
// starts to follow (only a step that decides can make a request a
// follower: its body's decision, a call's result after an embedding or
// an L2 lookup that found another proxy leading) waits with its upstream
// request open, which is counted as it starts to wait (lateFollower).
func (s *Stream) apply(acts []Action) []Action {
	req, was := s.fl.req, s.phase
	for i := range acts {
		a := &acts[i]
		switch a.Kind {
		case ActWait:
			s.phase = phaseFollowing
		case ActBypass:
			s.phase = phasePassThrough
			a.CacheStatus = req.Status
		case ActServeEntry:
			s.aborts = s.late && (s.phase == phaseRequest || s.phase == phaseFollowing)
			s.phase, s.aged = phaseServed, true
			a.Status, a.Headers, a.Body = s.c.HitResponse(req)
			a.Resume = true // could not answer: go upstream (SendFailed)
		case ActServeLocal:
			// A reply of the cache's own (a 504 for only-if-cached, a 502
			// for the leaders' failures) serves no entry, whatever entry
			// the lookup saw.
			s.aborts = s.late && (s.phase == phaseRequest || s.phase == phaseFollowing)
			s.phase, s.aged = phaseServed, false
			a.Resume = true // as for an entry: a request never hangs on a reply the host could not send
		case ActRecordAge:
			s.aged = true // cached items merged into the upstream's answer
		case ActForward:
			// The request goes upstream (for an embeddings batch with
			// cached items, as the batch of the missing items; the
			// headers are still held, so content-length can follow).
			if a.Resume {
				s.fl.FailOpen()
			}
			s.phase, s.aged = phaseForwarded, false
			s.forwardedAt = s.c.nowMs()
			a.CacheStatus = req.Status
			a.Late = s.late
			s.countLater = s.countsLater()
			a.CountLater = s.countLater
			if req.batch != nil {
				forwardBatch(a, req)
			}
		}
	}
	if s.phase == phaseFollowing && was != phaseFollowing && s.late {
		return s.lateFollower(acts)
	}
	return acts
}

// lateFollower appends the count of a late request that starts to
// follow (apply) to acts, copied into the stream's own array. Rare: kept
// out of apply's code.
//
//go:noinline
func (s *Stream) lateFollower(acts []Action) []Action {
	return append(append(s.out[:0], acts...), Action{Kind: ActCount, Route: s.fl.req.Route, Event: EvLateFollower})
}

// forwardBatch fills in the forward of an embeddings batch: one with
// cached items goes upstream as the batch of the missing items. Out of
// line: a chat request runs none of its code.
//
//go:noinline
func forwardBatch(a *Action, req *Request) {
	if cached, total := req.ItemCounts(); total > 0 {
		a.N = cached
		a.Body, a.Rewrite = req.UpstreamBody()
	}
}

// countsLater reports whether the outcome of a request going upstream can
// still change: a stale entry within stale_if_error answers the model's
// failure instead (Served), and the answer to a partly cached batch may be
// replaced by the whole batch's, a miss with no cached item
// (Flight.Refetch). Such a request is counted once, as its Cache-Status
// ends up saying; any other as it goes upstream, which is when the host
// counts it.
func (s *Stream) countsLater() bool {
	req := s.fl.req
	return req.rewritten() || req.Entry != nil && req.Route.StaleIfError > 0
}

// SendFailed is the host's report that a local answer (ActServeEntry, or
// ActServeLocal with Resume) could not be sent: the request goes upstream
// instead (fail open).
func (s *Stream) SendFailed() []Action {
	if s.respHeaders != nil {
		// A stale answer for the upstream's failure (stale_if_error)
		// could not be sent: the failure, held at its headers, passes
		// with the Cache-Status its refusal gave it, and the request is
		// counted as that says (countLater). It went without one (review
		// Z67).
		s.fl.FailOpen()
		s.fl.req.Status = s.fl.cs.Status          // counted as its Cache-Status says (a reset met early: bypass; review Z123)
		s.phase, s.aged = phasePassThrough, false // the model's answer, not the entry (review Z77)
		return append(s.cacheStatus(append(s.fb[:0], Action{Kind: ActInternal})), Action{Kind: ActResumeResponse})
	}
	if b := s.fl.req.batch; b != nil {
		// The cache's answer covered every item: the upstream's must too.
		b.fetchAll()
	}
	return s.apply(append(s.fb[:0], Action{Kind: ActInternal}, Action{Kind: ActForward, Resume: true}))
}

// MergeFailed is the host's report that a partly cached batch's merged
// body (ActReplaceBody) could not be written: the client gets the batch's
// broken answer (BrokenBatchAnswer) instead, so none of its cached items
// reached it. Counted as a miss, with no item served and no age (review
// Z83).
func (s *Stream) MergeFailed() {
	if b := s.fl.req.batch; b != nil {
		b.fetchAll()
	}
	s.fl.req.Status = StatusMiss
	s.aged = false
}

// Served is the host's report that the local answer a was sent: count it
// (a request that went upstream first too: countLater) and, for an entry,
// its age, and start what the entry calls for (an early refresh, a shadow
// comparison).
func (s *Stream) Served(a *Action) []Action {
	req, r := s.fl.req, s.fl.req.Route
	out := s.fb[:0]
	s.countLater = false
	if s.aborts {
		// The router had opened an upstream request for the headers; the
		// local answer ends the stream, and the proxy resets it. (Not a
		// stale answer served for the upstream's error: that request is
		// over.)
		out = append(out, Action{Kind: ActCount, Route: r, Event: EvLateAborted})
	}
	if a.Kind != ActServeEntry {
		return append(out, Action{Kind: ActCountRequest, Route: r, CacheStatus: a.CacheStatus})
	}
	out = append(out, Action{Kind: ActCountRequest, Route: r, CacheStatus: req.Status})
	if cached, total := req.ItemCounts(); total > 0 && cached > 0 {
		out = append(out, Action{Kind: ActCount, Route: r, Event: EvItemsHit, N: cached})
	}
	out = append(out, Action{Kind: ActRecordAge, Route: r, N: int(s.c.Age(req).Milliseconds())})
	if s.c.WantsRefresh(req) {
		s.lent = true
		out = append(out, s.c.Refresh(req, s.reqHeaders, s.fl.vm)...)
	}
	if s.c.WantsShadow(req) {
		s.lent = true
		out = append(out, s.c.Shadow(req, s.reqHeaders)...)
	}
	return out
}

// ResponseHeaders is the event "the response headers reached the filter".
func (s *Stream) ResponseHeaders(endOfStream bool, rd Reader) (Verdict, []Action) {
	switch s.phase {
	case phaseForwarded:
	case phaseIdle, phaseServed: // not a cached route / a hit carries its own
		return Continue, nil
	default:
		if s.late {
			if acts := s.earlyStale(rd); acts != nil {
				// Held while the entry answers; passed on should the host
				// refuse that reply (SendFailed: then it passes).
				return Decided, acts
			}
		}
		return Continue, s.notForwarded(rd)
	}
	hs, err := rd.ResponseHeaders()
	if err != nil {
		if s.fl.req.rewritten() && !endOfStream {
			return s.responseStep(RespHold, nil, s.out[:0], s.fl.Unread())
		}
		// (A rewritten batch's answer without a body has no vectors to
		// misplace, and cannot be replaced: it passes, as Flight.bodyless
		// lets one pass.)
		return Continue, s.refuse(ReasonInternal)
	}
	st, _ := header(hs, ":status")
	status := statusCode(st)
	step, acts := s.fl.ResponseHeaders(status, hs, ClassifyOrigin(rd.CodeDetails()), endOfStream)
	// The filter's own headers go after any forged ones are dropped.
	out := dropForged(s.out[:0], hs)
	if step != RespPass {
		return s.responseStep(step, hs, out, acts)
	}
	// Not stored (the rule on a route whose answers are uncacheable): the
	// refusal's actions count it and end any lead, which changes nothing
	// apply reads, so they go to the host as they are.
	s.phase = phasePassThrough
	return Continue, s.cacheStatus(withActions(out, acts))
}

// notForwarded is ResponseHeaders for a stream whose request did not go
// upstream as a miss: a bypass's answer passes with its Cache-Status; in
// any other phase (request, following, buffering, streaming) the proxy
// answers the client itself (a timeout, a buffer limit, a reset) through
// the filter chain while the stream is mid-way. Out of line: a miss runs
// none of this code.
//
//go:noinline
func (s *Stream) notForwarded(rd Reader) []Action {
	if s.phase == phasePassThrough {
		return s.cacheStatus(s.out[:0])
	}
	return s.interrupted(rd)
}

// withActions is out (the stream's own actions) followed by acts (the
// Flight's). With none of its own (the rule), the Flight's are extended
// where they are rather than copied, 200 bytes and their pointers each.
func withActions(out, acts []Action) []Action {
	if len(out) == 0 && len(acts) > 0 {
		return acts
	}
	return appendActions(out, acts)
}

// appendActions is append(out, acts...), out of line: its code (a
// copy under write barriers, a growth) is not among the rule's lines.
//
//go:noinline
func appendActions(out, acts []Action) []Action { return append(out, acts...) }

// responseStep is ResponseHeaders for every step but a refusal: an answer
// that may be stored (held, copied, streamed, or with no body), or a
// stale one served for the upstream's error. Out of line: an answer
// refused at its headers runs none of this code, and does not keep its
// headers (hs), which only the judging of a body reads.
//
//go:noinline
func (s *Stream) responseStep(step RespStep, hs [][2]string, out, acts []Action) (Verdict, []Action) {
	s.respHeaders = hs
	// (A step that goes on to Complete, which reuses the Flight's array,
	// has no actions here.)
	out = withActions(out, s.apply(acts))
	if s.late && (step == RespHold || step == RespCopy) {
		// Late: the headers pass now (their Cache-Status cannot say
		// whether the answer will be stored) and the body is copied as it
		// flows, then judged and stored as a held one would be.
		s.fl.Streaming()
		s.phase = phaseRecording
		return Continue, s.cacheStatus(out)
	}
	switch step {
	case RespServed:
		return Pause, out
	case RespStream:
		s.phase = phaseStreaming
		return Continue, s.cacheStatus(out)
	case RespComplete:
		_, out = s.complete(out, nil)
		return Continue, out
	}
	s.phase = phaseBuffering
	s.respCopy = step == RespCopy
	// If the upstream fails mid-body while the headers are held, the proxy
	// answers the client itself (502) with a local reply sent straight to
	// the codec, past every filter. Envoy's local_reply_config can copy
	// filter state into that reply's headers (the shipped envoy.yaml does),
	// so the Cache-Status it would need is left there now.
	return Pause, append(out, Action{Kind: ActSetProperty, Name: InterruptedProperty, Body: s.fl.TruncatedHeader()})
}

// ownHeaderPrefix begins the response headers only the filter sets
// (SimilarityHeader, CachedItemsHeader; embeddingModelHeader and
// embeddingDimsHeader are kept in entries only and never sent).
const ownHeaderPrefix = "x-modelcache-"

// dropForged takes an upstream's x-modelcache- headers off an answer that
// went upstream (stored or not): they would reach the client as the
// filter's word (a semantic near hit's similarity, a batch's cached
// items) beside a Cache-Status that says otherwise. The filter sets its
// own after (Flight.Complete). A bypassed answer passes untouched: its
// headers are not read, and its Cache-Status says the cache did not serve
// it. Names are compared without case (Envoy's are lower case already).
func dropForged(out []Action, hs [][2]string) []Action {
	for i := range hs {
		n := hs[i][0] // not a ranged copy of the pair (see header)
		if len(n) >= len(ownHeaderPrefix) && n[0]|0x20 == 'x' && strings.EqualFold(n[:len(ownHeaderPrefix)], ownHeaderPrefix) {
			out = dropHeader(out, n)
		}
	}
	return out
}

// dropHeader appends the removal of the response header n. Out of line:
// an answer with no forged header (the rule) runs none of its code (an
// action's literal and its copy), which would sit in dropForged's loop.
//
//go:noinline
func dropHeader(out []Action, n string) []Action {
	return append(out, Action{Kind: ActRemoveResponseHeader, Name: n})
}

// InterruptedProperty is the filter state (Envoy key "wasm.<name>") that
// holds the Cache-Status of a response cut while the filter holds its
// headers.
const InterruptedProperty = "modelcache_cache_status"

// interrupted labels a local reply that reaches the filter while the
// stream is still mid-way, so that every response on a cached route
// carries a truthful Cache-Status: one that never went upstream says
// bypass and why the proxy answered; a response cut after its headers
// says truncated. The reply is counted as a refusal (nothing is stored)
// and any lead ends.
func (s *Stream) interrupted(rd Reader) []Action {
	early := s.phase == phaseRequest || s.phase == phaseFollowing
	origin := ClassifyOrigin(rd.CodeDetails())
	var reason Reason
	out := s.out[:0]
	if early && s.late && origin == OriginUpstream {
		// Decided late, the headers went upstream first: the model may
		// answer them before the body is decided (an API key checked on
		// the headers), an answer of its own, not Envoy's: its
		// x-modelcache- headers are dropped as any answer's (review Z76).
		hs, _ := rd.ResponseHeaders()
		reason = s.fl.EarlyAnswer(CallStatus(hs))
		out = dropForged(out, hs)
	} else {
		reason = s.fl.Interrupted(origin, early)
	}
	if early {
		s.body.Drop()
		out = append(out, Action{Kind: ActCountRequest, Route: s.fl.req.Route, CacheStatus: s.fl.req.Status})
	} else {
		s.recording.Drop()
	}
	return s.cacheStatus(s.refusal(out, reason))
}

// earlyStale answers a request decided late whose model failed its
// headers early (a 503 before its body was decided), or whose upstream
// request was reset or timed out then, with the entry its
// lookup found within stale_if_error, as a held request's failure at its
// headers is answered (Flight.headersRefused): its followers, woken by
// that failure, were served the entry while it passed the 503 on (review
// Z113). nil when that is not so. Out of line: an early answer is rare.
//
//go:noinline
func (s *Stream) earlyStale(rd Reader) []Action {
	if s.phase != phaseRequest && s.phase != phaseFollowing || s.fl.req == nil || s.fl.req.Entry == nil {
		return nil
	}
	hs, _ := rd.ResponseHeaders()
	acts := s.fl.EarlyStale(ClassifyOrigin(rd.CodeDetails()), CallStatus(hs))
	if acts == nil {
		return nil
	}
	s.body.Drop()
	out := s.apply(acts)
	s.aborts = false // its upstream request was answered, not cut short
	// Should the host refuse the entry's reply, the model's answer passes
	// with its Cache-Status (SendFailed, for a response held at its
	// headers), counted when the stream ends: it hung, held (review Z115).
	s.respHeaders, s.countLater = hs, true
	return out
}

// refuse: the response passes unstored for reason.
func (s *Stream) refuse(reason Reason) []Action {
	s.fl.Refused(reason)
	return s.cacheStatus(s.refusal(s.out[:0], reason))
}

// refusal counts a refusal and ends any lead with its outcome.
func (s *Stream) refusal(out []Action, reason Reason) []Action {
	s.phase = phasePassThrough
	out = append(out, Action{Kind: ActRefused, Route: s.fl.req.Route, Reason: reason, Status: s.fl.respStatus})
	if reason == ReasonInternal {
		out = append(out, Action{Kind: ActInternal})
	}
	return append(out, s.fl.FinishLead(leadEnd(reason, s.fl.respStatus))...)
}

func (s *Stream) cacheStatus(out []Action) []Action {
	return append(out, Action{Kind: ActSetHeader, Name: "cache-status", Value: s.fl.CacheStatusValue()})
}

// ResponseBody is the event "response body bytes arrived".
func (s *Stream) ResponseBody(bodySize int, endOfStream bool, rd Reader) (Verdict, []Action) {
	switch {
	case s.phase == phaseStreaming:
		return Continue, s.record(bodySize, endOfStream, rd)
	case s.phase == phaseRecording:
		return Continue, s.recordLate(bodySize, endOfStream, rd)
	case s.phase != phaseBuffering:
		return Continue, nil
	case s.respCopy:
		return s.copyResponse(bodySize, endOfStream, rd)
	case !endOfStream:
		if ok, acts := s.fl.Buffered(bodySize); !ok {
			return Continue, s.pass(s.out[:0], acts)
		}
		s.respSize = bodySize
		if s.fl.Refetches() {
			// Replaced whole at its end, unread: what came so far is
			// dropped as it comes. Held, a rewritten batch's answer
			// larger than the size a cached vector foretold (a rollout
			// to wider vectors) met the proxy's buffer limit, a 500
			// (review Z95).
			s.respSize = 0
			return Pause, append(s.out[:0], Action{Kind: ActDropResponseBody})
		}
		return Pause, nil
	case s.fl.Refetches():
		// Replaced unread; held meanwhile, while the whole batch is asked
		// for again, its last chunk is dropped too.
		return s.complete(append(s.out[:0], Action{Kind: ActDropResponseBody}), nil)
	}
	body, err := rd.ResponseBody(bodySize)
	if err != nil {
		if s.fl.req.rewritten() {
			acts := append(s.fl.Unread(), Action{Kind: ActDropResponseBody})
			return s.complete(append(s.out[:0], acts...), nil)
		}
		return Continue, s.refuse(ReasonInternal)
	}
	return s.complete(s.out[:0], body)
}

// ResponseTrailers is the event "the answer's trailers arrived": they end
// an answer no chunk ended, which is then judged as at the end of any
// answer (the trailers themselves are neither stored nor replayed).
func (s *Stream) ResponseTrailers(rd Reader) (Verdict, []Action) {
	n := 0
	if s.phase == phaseBuffering && !s.respCopy {
		n = s.respSize // the buffered answer; other phases read chunks as they came
	}
	return s.ResponseBody(n, true, rd)
}

// record copies one chunk of an event stream and, at its end, hands the
// recording to the protocol to judge and store.
func (s *Stream) record(bodySize int, endOfStream bool, rd Reader) []Action {
	var out []Action
	if bodySize > 0 && !s.recording.Dropped() {
		chunk, err := rd.ResponseBody(bodySize)
		if err != nil {
			s.recording.RecordingFailed()
		} else {
			s.fl.Recorded(&s.recording, chunk)
		}
		switch {
		case !s.recording.Dropped():
			s.fl.keepLocalLease() // a leader whose answer flows is alive (its tick keeps L2's)
		case !endOfStream:
			// It will store nothing, as its end will say (CompleteStream):
			// its followers go upstream now rather than wait for a lease
			// that expires under them, and take it for a failed leader.
			out = s.apply(s.fl.FinishLead(leadEnd(s.recording.droppedFor(), s.fl.respStatus)))
		}
	}
	if !endOfStream {
		return out
	}
	s.phase = phasePassThrough
	return s.apply(s.fl.CompleteRecording(&s.recording, s.respHeaders, s.computeMs()))
}

// recordLate copies one chunk of a late answer as it passes and, at its
// end, judges and stores the copy. Only what leaves the answer untouched
// is performed: its headers are gone, its body flows on.
func (s *Stream) recordLate(bodySize int, endOfStream bool, rd Reader) []Action {
	var acts []Action
	if chunk, err := rd.ResponseBody(bodySize); err != nil && bodySize > 0 {
		s.respBody.Drop()
		s.fl.Refused(ReasonInternal)
		acts = s.refusal(s.out[:0], ReasonInternal)
	} else if ok, refused := s.fl.ResponseChunk(&s.respBody, chunk); !ok {
		acts = refused
	} else if !endOfStream {
		return nil
	} else {
		_, acts = s.fl.Complete(s.respHeaders, s.respBody.Take(), s.computeMs(), s.reqHeaders)
	}
	s.phase = phasePassThrough
	out := s.out[:0]
	for _, a := range s.apply(acts) {
		switch a.Kind {
		case ActSetHeader, ActReplaceBody, ActReplaceResponse, ActSendReplacement, ActResumeResponse, ActSetProperty:
		default:
			out = append(out, a)
		}
	}
	return out
}

// copyResponse holds an answer of unknown length with back-pressure, which
// never turns into the proxy's 500 past its buffer limit (a body held with
// StopIterationAndBuffer is merged with each new chunk before the plugin
// can stop holding it), and keeps a copy bounded by max_entry_bytes.
func (s *Stream) copyResponse(bodySize int, endOfStream bool, rd Reader) (Verdict, []Action) {
	chunk, err := rd.ResponseBody(bodySize)
	if err != nil && bodySize > 0 {
		s.respBody.Drop()
		return Continue, s.refuse(ReasonInternal)
	}
	if ok, acts := s.fl.ResponseChunk(&s.respBody, chunk); !ok {
		return Continue, s.pass(s.out[:0], acts)
	}
	if !endOfStream {
		return PauseWatermark, nil
	}
	_, acts := s.complete(s.out[:0], s.respBody.Take())
	return Continue, acts
}

// pass lets a response through after the protocol decided on it
// (appending its actions to out).
func (s *Stream) pass(out, acts []Action) []Action {
	s.phase = phasePassThrough
	return s.cacheStatus(append(out, s.apply(acts)...))
}

// complete checks a complete response and stores it if admitted (its
// actions appended to out).
func (s *Stream) complete(out []Action, body []byte) (Verdict, []Action) {
	step, acts := s.fl.Complete(s.respHeaders, body, s.computeMs(), s.reqHeaders)
	if step == Refetching {
		s.phase = phaseServed // the response is now the protocol's to finish
		return PauseIfDispatched, append(out, acts...)
	}
	return Continue, s.pass(out, acts)
}

// computeMs is how long the upstream took to answer (XFetch's δ).
func (s *Stream) computeMs() uint32 {
	return uint32(min(max(s.c.nowMs()-s.forwardedAt, 0), 1<<32-1)) // 0 if the clock stepped back
}

// countNow appends the count of a request whose count waited for its end
// (countLater), once, as its answer made it.
func (s *Stream) countNow(out []Action) []Action {
	if !s.countLater {
		return out
	}
	return s.countWaited(out)
}

// countWaited is countNow's count, out of line: most requests are
// counted as they go upstream or are served, and run none of its code.
//
//go:noinline
func (s *Stream) countWaited(out []Action) []Action {
	s.countLater = false
	req := s.fl.req
	out = append(out, Action{Kind: ActCountRequest, Route: req.Route, CacheStatus: req.Status})
	if cached, _ := req.ItemCounts(); cached > 0 && (!req.rewritten() || req.batch.merged) {
		out = append(out, Action{Kind: ActCount, Route: req.Route, Event: EvItemsHit, N: cached})
	}
	return out
}

// Broken is the host's report that a panic broke the stream: none of its
// events will come, its end included. A request whose count waited for
// its end is counted now, as it stands. A lead it held ends as a lead
// whose client left does (OutcomeAbandoned): its answer, passed on by the
// host, is not the cache's to store, and a follower leads next rather
// than waiting for the lease to lapse at max_wait. replied: the host
// answers the client a reply of its own (a rewritten batch's 502:
// BrokenBatchAnswer), so none of the batch's cached items reached it.
func (s *Stream) Broken(replied bool) []Action {
	if s.fl.req == nil {
		return nil
	}
	if req := s.fl.req; replied && req.batch != nil {
		req.batch.fetchAll()
		req.Status = StatusMiss
	}
	out := s.countNow(s.out[:0])
	if s.phase == phaseRequest || s.phase == phaseFollowing {
		// Not counted yet (held for its body, following, waiting on a
		// call of its own): the host sends it upstream as it stands, so
		// it is counted now (review Z158). (Its phase stays: the host
		// asks it which side to resume, Paused.)
		req := s.fl.req
		out = append(out, Action{Kind: ActCountRequest, Route: req.Route, CacheStatus: req.Status})
	}
	if s.fl.leader {
		s.fl.reset()
		s.fl.finishLead(OutcomeAbandoned, 0)
		out = append(out, s.fl.actions()...)
	}
	return out
}

// Done is the event "the stream is over": whatever it was doing ends — a
// follower stops waiting; a leader whose response never completed
// (upstream reset mid-body, client abort) hands the lead on.
func (s *Stream) Done(rd Reader) []Action {
	req := s.fl.req
	if req == nil {
		return nil
	}
	if req.Route.FreshnessSLO != nil {
		s.noteServed()
	}
	out := s.countNow(s.out[:0])
	switch s.phase {
	case phaseIdle, phasePassThrough, phaseServed: // its answer was decided
	default:
		out = s.cut(rd, out)
	}
	s.phase = phaseIdle
	if s.fl.leader { // a request still leading hands the lead on as failed
		out = s.handOn(out)
	}
	return out
}

// Ended reports whether the stream has nothing left to end: no cached
// route, or its answer decided and counted, no lead held, on a route with
// no freshness SLO. Done then returns no actions and only marks the stream
// idle, which no later event reads (a call still pending continues it as
// it would an idle one; its host then offers it to Recycle and Reset): the
// host may skip Done, as it skips ResponseBody for an Answered stream.
func (s *Stream) Ended() bool {
	req := s.fl.req
	return req == nil || s.Answered() && !s.countLater && !s.fl.leader && req.Route.FreshnessSLO == nil
}

// noteServed counts the answer against its route's freshness SLO (Done).
// Out of line, as handOn: code of routes and ends that are not the rule.
//
//go:noinline
func (s *Stream) noteServed() {
	var age time.Duration
	if s.aged {
		age = s.c.Age(s.fl.req)
	}
	s.c.NoteServed(s.fl.req.Route, age)
}

// handOn appends to out the end of a lead still held when the stream is
// over (Done): it is handed on as failed.
//
//go:noinline
func (s *Stream) handOn(out []Action) []Action {
	return append(out, s.fl.FinishLead(OutcomeFailed, s.fl.respStatus)...)
}

// cut ends a stream that was over before its answer was decided (Done),
// appending the actions to out.
func (s *Stream) cut(rd Reader, out []Action) []Action {
	req := s.fl.req
	switch s.phase {
	case phaseForwarded:
		// No answer reached the filter (an upstream failure before the
		// answer comes as a local reply through ResponseHeaders). If the
		// client went away, the followers learn nothing about the upstream
		// from it.
		if clientLeft(rd) {
			out = append(out, s.fl.FinishLead(OutcomeAbandoned, s.fl.respStatus)...)
		}
	case phaseRequest, phaseFollowing:
		// A leader before its upstream call (its L2 lookup or lease out,
		// or waiting on another proxy's lead): a client gone is no
		// upstream failure either. (Asked only of a leader: the code
		// details are a host call.)
		if s.fl.Leading() && clientLeft(rd) {
			out = append(out, s.fl.FinishLead(OutcomeAbandoned, 0)...)
		}
		if req.lookedAt != 0 {
			// Looked up (a follower, a request waiting on a call of its
			// own) but never answered: counted here, once, as an
			// answered request is where it is answered. (One whose
			// client left before its body was read is not.)
			out = append(out, Action{Kind: ActCountRequest, Route: req.Route, CacheStatus: req.Status})
		}
	case phaseBuffering, phaseStreaming, phaseRecording:
		// Cut by an upstream reset, a timeout or the client going away:
		// never stored. Only the first two are upstream failures.
		out = append(out, Action{Kind: ActRefused, Route: req.Route, Reason: ReasonTruncated, Status: s.fl.respStatus})
		out = append(out, s.fl.cutVersionNote(s.recording.body)...)
		if s.recording.failed {
			// A chunk the host would not hand over is a host fault, counted
			// where the stream would have ended (CompleteRecording); cut
			// before its end, it was counted nowhere (review Z277).
			out = append(out, Action{Kind: ActInternal})
		}
		s.recording.Drop()
		if clientLeft(rd) {
			out = append(out, s.fl.FinishLead(OutcomeAbandoned, s.fl.respStatus)...)
		}
	}
	return out
}

// clientLeft reports whether the proxy ended the stream because the client
// went away: response code details "downstream_remote_disconnect" (Envoy
// 1.40, measured; an upstream reset mid-answer says
// "upstream_reset_after_response_started{…}" instead), or an HTTP/2
// client's reset of its stream, "http2.remote_reset" or
// "http2.remote_refuse" (Envoy's DR flag: every cancel between sidecars;
// review Z177).
func clientLeft(rd Reader) bool {
	d := rd.CodeDetails()
	return strings.HasPrefix(d, "downstream_") || d == "http2.remote_reset" || d == "http2.remote_refuse"
}

// CacheStatusHeader is the stream's Cache-Status value.
func (s *Stream) CacheStatusHeader() []byte { return s.fl.CacheStatusHeader(nil) }
