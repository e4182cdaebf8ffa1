package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/filter/proxywasm"
	"github.com/modelcache/modelcache/filter/proxywasm/types"
)

// stream is one HTTP request through the filter. It is a small state
// machine; every decision is cachecore's, this type only performs it.
//
// Request side: a cacheable request's headers are held (Pause) until the
// whole body is buffered, so that on a hit the router never opens an
// upstream request. On a miss the request either leads its key upstream or
// follows another request's lead, paused until woken (the rules are
// cachecore's Flight, protocol*.go; the lease table is lease.go). Response
// side: a storable response's headers are held until the body is complete
// and checked, so that Cache-Status can say truthfully whether it was
// stored.
type stream struct {
	types.DefaultHttpContext
	p     *plugin
	id    uint32
	phase phase
	purge bool
	// authority is the request's :authority (the purge API replays
	// requests at it when they name none).
	authority string

	req        *cachecore.Request
	rs         *routeStats
	reqHeaders [][2]string

	fl        cachecore.Flight // its part in the single-flight protocol
	heldSince time.Time
	bodySeen  bool
	// sized: the request announced a content-length within
	// max_request_bytes, so Envoy may hold its body (never near its buffer
	// limit). Otherwise the body is copied here chunk by chunk.
	sized     bool
	body      cachecore.Held // an unsized request body, copied
	waitSince time.Time      // when it started following

	forwardedAt time.Time
	respStatus  int
	respHeaders [][2]string

	recording cachecore.Held // copy of an event stream as it passes

	holdResponse bool // a refetch will finish the response
	// respCopy: the answer has no content-length, so it is held with
	// StopIterationAndWatermark and copied here (respBody), as an unsized
	// request body is; see OnHttpRequestBody.
	respCopy bool
	respBody cachecore.Held
}

type phase uint8

const (
	phaseIdle        phase = iota // not a cached route: untouched
	phaseRequest                  // holding the request until its body is complete
	phaseFollowing                // paused: another request leads this key
	phaseForwarded                // sent upstream, waiting for the response
	phaseBuffering                // holding the response to check and store it
	phaseStreaming                // an event stream flows to the client while being recorded
	phasePassThrough              // response passes with a Cache-Status header only
	phaseServed                   // answered locally from the cache
)

func (s *stream) OnHttpRequestHeaders(_ int, endOfStream bool) types.Action {
	hs, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		s.p.stats.internal.Increment(1)
		return types.ActionContinue
	}
	method, _ := headerValue(hs, ":method")
	path, _ := headerValue(hs, ":path")
	c := s.p.cache
	if c.IsPurge(method, path) {
		s.purge = true
		s.authority, _ = headerValue(hs, ":authority")
		if !c.PurgeAuthorized(hs) {
			s.sendJSON(401, `{"error":"purge requires the configured bearer token"}`)
			return types.ActionPause
		}
		if endOfStream {
			s.handlePurge(nil)
		}
		return types.ActionPause
	}
	route := s.p.cfg.MatchRoute(method, path)
	if route == nil {
		return types.ActionContinue
	}
	s.rs = s.p.stats.route(route)
	s.req = c.Begin(route, method, path, hs)
	s.fl.Init(c, s.req, s.p.vmID, s.id)
	s.reqHeaders = hs
	step, acts := s.fl.RequestHeaders(hs, endOfStream, s.p.hold != holdUnsupported)
	switch step {
	case cachecore.ReqPass:
		return s.performRequest(acts)
	case cachecore.ReqHoldSized:
		s.sized = true
	}
	s.phase = phaseRequest
	if s.p.hold != holdSupported {
		s.heldSince = s.p.now()
		s.p.holding[s.id] = s
	}
	return types.ActionPause
}

// performRequest performs the protocol's actions on the request and says
// whether it goes on (forwarded or bypassed) or stays paused (answered
// locally, or following).
func (s *stream) performRequest(acts []cachecore.Action) types.Action {
	delete(s.p.holding, s.id)
	s.perform(acts)
	if s.phase == phaseForwarded || s.phase == phasePassThrough {
		return types.ActionContinue
	}
	return types.ActionPause
}

func (s *stream) OnHttpRequestBody(bodySize int, endOfStream bool) types.Action {
	if s.purge {
		if !endOfStream {
			return types.ActionPause
		}
		body, _ := proxywasm.GetHttpRequestBody(0, bodySize)
		s.handlePurge(body)
		return types.ActionPause
	}
	if s.phase != phaseRequest {
		return types.ActionContinue
	}
	if !s.bodySeen {
		s.bodySeen = true
		s.p.hold = holdSupported // Envoy delivers bodies while headers are held
	}
	if s.sized {
		// At most content-length <= max_request_bytes is ever held: Envoy
		// buffers it and hands the whole body over at the end.
		if !endOfStream {
			return types.ActionPause
		}
		body, err := proxywasm.GetHttpRequestBody(0, bodySize)
		if err != nil {
			return s.performRequest(s.fl.Bypass(cachecore.ReasonInternal))
		}
		return s.performRequest(s.fl.RequestBody(body, false))
	}
	// Unknown length (chunked). A body held with StopIterationAndBuffer is
	// merged with each new chunk before the plugin is called, and a merge
	// over the buffer limit is a 413 whatever the plugin answers. So hold
	// it with StopIterationAndWatermark (back-pressure, never a 413), see
	// each chunk once, and keep a copy bounded by max_request_bytes.
	chunk, err := proxywasm.GetHttpRequestBody(0, bodySize)
	if err != nil && bodySize > 0 {
		s.body.Drop()
		return s.performRequest(s.fl.Bypass(cachecore.ReasonInternal))
	}
	if ok, acts := s.fl.RequestChunk(&s.body, chunk); !ok {
		return s.performRequest(acts)
	}
	if !endOfStream {
		return types.ActionPauseWatermark
	}
	return s.performRequest(s.fl.RequestBody(s.body.Take(), true))
}

// perform carries out the protocol's actions on this stream (its context
// is the effective one).
func (s *stream) perform(acts []cachecore.Action) {
	for i := range acts {
		a := &acts[i]
		switch a.Kind {
		case cachecore.ActWait:
			s.phase = phaseFollowing
			s.waitSince = s.p.now()
			s.p.waiting[s.id] = s
		case cachecore.ActBypass:
			s.phase = phasePassThrough
			s.rs.request(s.req.Status)
			s.rs.bypassed(a.Reason)
		case cachecore.ActServeEntry:
			s.stopWaiting()
			s.serve()
		case cachecore.ActServeLocal:
			s.stopWaiting()
			if err := proxywasm.SendHttpResponse(uint32(a.Status), a.Headers, a.Body, -1); err != nil && a.Resume {
				s.p.stats.internal.Increment(1)
				s.resumeUpstream() // could not answer locally: fail open
				continue
			}
			s.phase = phaseServed
			s.rs.request(a.CacheStatus)
		case cachecore.ActForward:
			if a.Resume {
				s.resumeUpstream()
			} else {
				s.forward()
			}
		case cachecore.ActDispatch:
			if a.Call.Stream == s.id { // a step of this request: it continues here
				call, done := *a.Call, a.Call.Done
				call.Done = func(r cachecore.CallResult) []cachecore.Action { s.perform(done(r)); return nil }
				s.p.dispatch(&call)
			} else {
				s.p.perform(a)
			}
		default:
			s.p.perform(a)
		}
	}
}

// wake runs in a root callback (queue or tick) when the key's leader is
// done (status: the failed leader's response status, 0 if unknown).
func (s *stream) wake(o cachecore.Outcome, status int) {
	if s.phase != phaseFollowing || proxywasm.SetEffectiveContext(s.id) != nil {
		return
	}
	s.perform(s.fl.Wake(o, status))
}

// tick re-checks a paused follower (cachecore's Flight.Tick).
func (s *stream) tick() {
	if s.phase != phaseFollowing || proxywasm.SetEffectiveContext(s.id) != nil {
		return
	}
	s.perform(s.fl.Tick())
}

func (s *stream) stopWaiting() {
	delete(s.p.waiting, s.id)
}

// resumeUpstream lets a paused follower's request go to the model.
func (s *stream) resumeUpstream() {
	s.stopWaiting()
	s.fl.FailOpen()
	s.forward()
	if err := proxywasm.ResumeHttpRequest(); err != nil {
		s.p.stats.internal.Increment(1)
	}
}

// finishLead ends this stream's leadership and wakes the followers.
func (s *stream) finishLead(o cachecore.Outcome) {
	if s.fl.Leading() {
		s.perform(s.fl.FinishLead(o, s.respStatus))
	}
}

// forward sends the request upstream (the caller continues or resumes it).
// For an embeddings batch with cached items, the body becomes the batch of
// missing items; the headers are still held, so content-length can follow.
func (s *stream) forward() {
	s.phase = phaseForwarded
	s.forwardedAt = s.p.now()
	s.rs.request(s.req.Status)
	// The cache can only check and store an uncompressed body; a compressor
	// in front of this filter compresses for the client. (Headers are still
	// held here, on every path that forwards.)
	_ = proxywasm.RemoveHttpRequestHeader("accept-encoding")
	if cached, total := s.req.ItemCounts(); total > 0 {
		s.rs.items(cachecore.EvItemsHit, cached)
		body, rewritten := s.req.UpstreamBody()
		if rewritten {
			if err := proxywasm.ReplaceHttpRequestBody(body); err != nil {
				s.p.stats.internal.Increment(1)
			}
			_ = proxywasm.ReplaceHttpRequestHeader("content-length", strconv.Itoa(len(body)))
		}
	}
}

func (s *stream) serve() {
	status, headers, body := s.p.cache.HitResponse(s.req)
	if err := proxywasm.SendHttpResponse(uint32(status), headers, body, -1); err != nil {
		// Could not answer locally: fail open, go upstream.
		s.p.stats.internal.Increment(1)
		s.fl.FailOpen()
		s.forward()
		_ = proxywasm.ResumeHttpRequest()
		return
	}
	s.phase = phaseServed
	s.rs.request(s.req.Status)
	if cached, total := s.req.ItemCounts(); total > 0 {
		s.rs.items(cachecore.EvItemsHit, cached)
	}
	s.rs.ageAtServe.Record(uint64(s.p.cache.Age(s.req).Milliseconds()))
	if s.p.cache.WantsRefresh(s.req) {
		s.p.performAll(s.p.cache.Refresh(s.req, s.reqHeaders, s.p.vmID))
	}
	if s.p.cache.WantsShadow(s.req) {
		s.p.performAll(s.p.cache.Shadow(s.req, s.reqHeaders))
	}
}

func (s *stream) OnHttpResponseHeaders(_ int, endOfStream bool) types.Action {
	switch s.phase {
	case phaseIdle, phaseServed: // not a cached route / a hit carries its own
		return types.ActionContinue
	case phasePassThrough:
		s.setCacheStatus()
		return types.ActionContinue
	case phaseForwarded:
	default:
		// phaseRequest, phaseFollowing, phaseBuffering, phaseStreaming: Envoy
		// answers the client itself (a timeout, a buffer limit, a reset)
		// through the filter chain while this stream is mid-way.
		s.interrupted()
		return types.ActionContinue
	}
	hs, err := proxywasm.GetHttpResponseHeaders()
	if err != nil {
		s.refuse(cachecore.ReasonInternal)
		s.setCacheStatus()
		return types.ActionContinue
	}
	s.respHeaders = hs
	st, _ := headerValue(hs, ":status")
	s.respStatus, _ = strconv.Atoi(st)
	details, _ := proxywasm.GetProperty([]string{"response", "code_details"})
	step, acts := s.fl.ResponseHeaders(s.respStatus, hs, cachecore.ClassifyOrigin(string(details)), endOfStream)
	s.perform(acts)
	switch step {
	case cachecore.RespServed:
		return types.ActionPause
	case cachecore.RespPass:
		s.phase = phasePassThrough
		s.setCacheStatus()
		return types.ActionContinue
	case cachecore.RespStream:
		s.phase = phaseStreaming
		s.setCacheStatus()
		return types.ActionContinue
	case cachecore.RespComplete:
		s.finishResponse(nil)
		return types.ActionContinue
	}
	s.phase = phaseBuffering
	s.respCopy = step == cachecore.RespCopy
	s.noteInterruption()
	return types.ActionPause
}

// interruptedProperty is the filter state (Envoy key "wasm.<name>") that
// holds the Cache-Status of a response cut while the filter holds its
// headers.
const interruptedProperty = "modelcache_cache_status"

// interrupted labels a local reply that reaches the filter while the
// stream is still mid-way, so that every response on a cached route carries
// a truthful Cache-Status: one that never went upstream says bypass and
// why Envoy answered; a response cut after its headers says truncated. The
// reply is counted as a refusal (nothing is stored) and any lead ends.
func (s *stream) interrupted() {
	details, _ := proxywasm.GetProperty([]string{"response", "code_details"})
	early := s.phase == phaseRequest || s.phase == phaseFollowing
	reason := s.fl.Interrupted(cachecore.ClassifyOrigin(string(details)), early)
	if early {
		delete(s.p.holding, s.id)
		s.stopWaiting()
		s.body.Drop()
		s.rs.request(s.req.Status)
	} else { // phaseBuffering, phaseStreaming
		s.recording.Drop()
	}
	s.refuseCount(reason)
	s.setCacheStatus()
}

// noteInterruption prepares the Cache-Status of a held response that never
// completes. If the upstream fails mid-body while the headers are held,
// Envoy answers the client itself (502) with a local reply sent straight to
// the codec, past every filter: this filter never sees it. Envoy's
// local_reply_config can copy filter state into that reply's headers (the
// shipped envoy.yaml does), so the value is left there now.
func (s *stream) noteInterruption() {
	_ = proxywasm.SetProperty([]string{interruptedProperty}, s.fl.TruncatedHeader())
}

// recordStream copies one chunk of an event stream and, at its end,
// hands the recording to the protocol to judge and store.
func (s *stream) recordStream(bodySize int, endOfStream bool) {
	if bodySize > 0 && !s.recording.Dropped() {
		chunk, err := proxywasm.GetHttpResponseBody(0, bodySize)
		if err != nil {
			s.recording.RecordingFailed()
		} else {
			s.fl.Recorded(&s.recording, chunk)
		}
	}
	if !endOfStream {
		return
	}
	s.phase = phasePassThrough
	s.perform(s.fl.CompleteRecording(&s.recording, s.respHeaders, s.computeMs()))
}

func (s *stream) OnHttpResponseBody(bodySize int, endOfStream bool) types.Action {
	if s.phase == phaseStreaming {
		s.recordStream(bodySize, endOfStream)
		return types.ActionContinue
	}
	if s.phase != phaseBuffering {
		return types.ActionContinue
	}
	if s.respCopy {
		return s.copyResponse(bodySize, endOfStream)
	}
	if !endOfStream {
		if ok, acts := s.fl.Buffered(bodySize); !ok {
			return s.pass(acts)
		}
		return types.ActionPause
	}
	body, err := proxywasm.GetHttpResponseBody(0, bodySize)
	if err != nil {
		s.refuse(cachecore.ReasonInternal)
		s.setCacheStatus()
		return types.ActionContinue
	}
	s.finishResponse(body)
	if s.holdResponse {
		return types.ActionPause
	}
	return types.ActionContinue
}

// copyResponse holds an answer of unknown length with
// StopIterationAndWatermark, which never turns into Envoy's 500 past its
// buffer limit (a body held with StopIterationAndBuffer is merged with each
// new chunk before the plugin can stop holding it), and keeps a copy
// bounded by max_entry_bytes.
func (s *stream) copyResponse(bodySize int, endOfStream bool) types.Action {
	chunk, err := proxywasm.GetHttpResponseBody(0, bodySize)
	if err != nil && bodySize > 0 {
		s.respBody.Drop()
		s.refuse(cachecore.ReasonInternal)
		s.setCacheStatus()
		return types.ActionContinue
	}
	if ok, acts := s.fl.ResponseChunk(&s.respBody, chunk); !ok {
		return s.pass(acts)
	}
	if !endOfStream {
		return types.ActionPauseWatermark
	}
	s.finishResponse(s.respBody.Take())
	return types.ActionContinue
}

// pass lets a response through unstored after the protocol refused it.
func (s *stream) pass(acts []cachecore.Action) types.Action {
	s.phase = phasePassThrough
	s.perform(acts)
	s.setCacheStatus()
	return types.ActionContinue
}

// finishResponse checks a complete response and stores it if admitted.
func (s *stream) finishResponse(body []byte) {
	step, acts := s.fl.Complete(s.respHeaders, body, s.computeMs(), s.reqHeaders)
	if step == cachecore.Refetching {
		s.phase = phaseServed // the response is now the protocol's to finish
		s.holdResponse = s.p.performAll(acts)
		return
	}
	s.phase = phasePassThrough
	s.perform(acts)
	s.setCacheStatus()
}

// computeMs is how long the upstream took to answer (XFetch's δ).
func (s *stream) computeMs() uint32 { return uint32(s.p.now().Sub(s.forwardedAt).Milliseconds()) }

// noteStore records a store's side effects in the stats and the log.
func (p *plugin) noteStore(req *cachecore.Request, res cachecore.StoreResult) {
	if res.VersionChanged {
		p.stats.versions.Increment(1)
		proxywasm.LogInfo("route " + req.Route.Name + ": model " + strconv.Quote(req.Model) +
			" now reports version " + strconv.Quote(res.Version) + "; entries of earlier versions will not be served")
	}
	p.stats.noteInserts(res.Inserts)
}

// noteInserts updates the occupancy stats once per store, however many
// entries it wrote (an embeddings batch writes one per item).
func (st *stats) noteInserts(rs []cachecore.InsertResult) {
	var filled, evicted, expired, own int
	for _, r := range rs {
		if r.OwnShare {
			own++
		}
		switch {
		case r.Filled:
			filled++
		case r.Evicted:
			evicted++
		case r.Expired:
			expired++
		}
	}
	st.entries.Add(int64(filled))
	st.evicted.Increment(uint64(evicted))
	st.expired.Increment(uint64(expired))
	st.ownShare.Increment(uint64(own))
}

func (s *stream) refuse(reason cachecore.Reason) {
	s.fl.Refused(reason)
	s.refuseCount(reason)
}

// refuseCount counts a refusal and ends any lead with its outcome.
func (s *stream) refuseCount(reason cachecore.Reason) {
	s.phase = phasePassThrough
	s.rs.refusal(reason, s.respStatus)
	if reason == cachecore.ReasonInternal {
		s.p.stats.internal.Increment(1)
	}
	s.finishLead(cachecore.OutcomeOf(reason, s.respStatus))
}

func (s *stream) setCacheStatus() {
	_ = proxywasm.ReplaceHttpResponseHeader("cache-status", string(s.fl.CacheStatusHeader(nil)))
}

// OnHttpStreamDone: whatever the stream was doing ends here — a follower
// whose client left stops waiting; a leader whose response never completed
// (upstream reset mid-body, client abort) hands the lead on.
func (s *stream) OnHttpStreamDone() {
	delete(s.p.holding, s.id)
	if s.req != nil && s.req.Route.FreshnessSLO != nil {
		var age time.Duration
		if s.phase == phaseServed {
			age = s.p.cache.Age(s.req)
		}
		s.p.cache.NoteServed(s.req.Route, age)
	}
	switch s.phase {
	case phaseFollowing:
		s.stopWaiting()
	case phaseForwarded:
		// No answer reached the filter (an upstream failure before the
		// answer comes as a local reply through OnHttpResponseHeaders). If
		// the client went away, the followers learn nothing about the
		// upstream from it.
		if clientLeft() {
			s.finishLead(cachecore.OutcomeAbandoned)
		}
	case phaseBuffering, phaseStreaming:
		// Cut by an upstream reset, a timeout or the client going away:
		// never stored. Only the first two are upstream failures.
		s.rs.refusal(cachecore.ReasonTruncated, s.respStatus)
		s.recording.Drop()
		if clientLeft() {
			s.finishLead(cachecore.OutcomeAbandoned)
		}
	}
	s.finishLead(cachecore.OutcomeFailed) // no-op unless still leading
}

// clientLeft reports whether Envoy ended the stream because the client
// went away: response code details "downstream_remote_disconnect" (Envoy
// 1.40, measured; an upstream reset mid-answer says
// "upstream_reset_after_response_started{…}" instead).
func clientLeft() bool {
	d, err := proxywasm.GetProperty([]string{"response", "code_details"})
	return err == nil && strings.HasPrefix(string(d), "downstream_")
}

func (s *stream) handlePurge(body []byte) {
	res, err := s.p.cache.Purge(body, s.authority)
	if err != nil {
		s.sendJSON(400, `{"error":`+strconv.Quote(err.Error())+`}`)
		return
	}
	s.p.stats.purges.Increment(1)
	if res.Freed > 0 {
		s.p.stats.entries.Add(-int64(res.Freed))
	}
	proxywasm.LogInfo("purge " + res.Scope + " freed " + strconv.Itoa(res.Freed))
	s.sendJSON(200, `{"scope":"`+res.Scope+`","freed":`+strconv.Itoa(res.Freed)+`}`)
}

func (s *stream) sendJSON(status uint32, body string) {
	_ = proxywasm.SendHttpResponse(status, [][2]string{{"content-type", "application/json"}}, []byte(body), -1)
}

func headerValue(h [][2]string, name string) (string, bool) {
	for _, kv := range h {
		if kv[0] == name {
			return kv[1], true
		}
	}
	return "", false
}
