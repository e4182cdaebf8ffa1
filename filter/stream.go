package main

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/modelcache/modelcache/cachecore"
	"github.com/modelcache/modelcache/filter/proxywasm"
	"github.com/modelcache/modelcache/filter/proxywasm/types"
)

// stream is one HTTP request through the filter: it hands each callback to
// its cachecore.Stream (which holds the phases and decides everything),
// performs the actions that come back and answers Envoy with the verdict.
type stream struct {
	streamFields
	// x is outside streamFields: a deleted stream resets it
	// (cachecore.Stream.Reset), which of its 4 KB of action slots writes
	// only those used.
	x cachecore.Stream
}

// streamFields are a stream's fields but its cachecore.Stream: what a
// deleted stream zeroes whole.
type streamFields struct {
	types.DefaultHttpContext
	p     *plugin
	id    uint32
	rs    *routeStats
	purge bool
	// purgeLate: a purge whose headers went on (they could not be held):
	// any answer to them is held, the purge's own replaces it.
	purgeLate bool
	// purgeSize: a purge request's body buffered so far.
	purgeSize int
	// purgeAnswered: the purge was answered (its reply sent or being
	// retried); a body that comes after is not carried out (review Z83).
	purgeAnswered bool
	// retry is a host action that failed and that nothing else would do
	// again (a purge's reply, a follower's resume): tried again each tick
	// until it is done or the stream is gone (plugin.retrying).
	retry func() error
	// authority is the request's :authority (the purge API replays
	// requests at it when they name none).
	authority string
	// pinned: something may refer to this stream after its context is
	// deleted (a call it dispatched continues it or its Flight), so its
	// memory is never reused for another request.
	pinned bool
	// merged is a partly cached batch's merged body larger than the
	// route's max_entry_bytes (ActReplaceBody), and mergedDrop the headers
	// it removes: sent as a local reply once the actions after it have set
	// their headers (sendMerged).
	merged     []byte
	mergedDrop [][2]string
	// mergedAge: the age of the cached items merged (ActRecordAge), kept
	// until the merged body is sent: recorded when a client gets it, not
	// when both ways to send it were refused (review Z216). -1: none.
	mergedAge int
	// performing counts the actions being performed (do may nest); left
	// above 0 by a panic, whatever was half done keeps the stream from
	// being reused.
	performing int
	// listed in the VM's waiting (followers) and holding lists: kept
	// here so that a callback touches the lists only when that changes.
	waitingListed, holdingListed bool
	// letGoAt: when a request held without a body was let go (ns, wall
	// clock) while the VM did not know yet whether the proxy delivers
	// bodies to a plugin holding headers; its body then tells
	// (plugin.stalled). 0: not watched.
	letGoAt int64
	// bodyLate: a request let go under header_hold "hold" whose bypass
	// reason waits for its body (plugin.stalled: a stall's is
	// hold_unsupported) or its end (body_late).
	bodyLate bool
	// brokenSeen: a panic broke the stream, and it was ended
	// (plugin.OnHttpStreamBroken).
	brokenSeen bool
	// leadingAt: the stream's place in the VM's leading list, plus one
	// (0: not listed).
	leadingAt int
	// countingListed: in the VM's counting list (its count waits for its
	// end).
	countingListed bool
	// rooted: its events are performed in a root callback (a wake-up, a
	// tick, a call's result), not in one of its own: a request paused
	// there is resumed by a call, while in its own callback the verdict
	// lets it go on.
	rooted bool
	// Buffers the host's data is read into, reused by the next stream
	// when this one's request is recycled (cachecore.Stream.Recycle).
	// Held by pointer: a deleted stream is zeroed around one word rather
	// than saving and restoring seven slices.
	bufs *buffers
}

type buffers struct {
	headersRaw []byte
	headers    [][2]string
	body       []byte
	// The response's headers (cachecore.Stream keeps them to the end) and
	// the last code details read (used at once, never kept).
	respRaw     []byte
	respHeaders [][2]string
	respBody    []byte
	details     []byte
}

// maxFreeStreams bounds the streams kept for reuse (about 6 KB each, plus
// their buffers: a request and a response body buffer of up to maxKeptBody
// bytes each and two header buffers of up to maxKeptHeaders are kept,
// larger ones are not).
const (
	maxFreeStreams = 64
	maxKeptBody    = 32 << 10
	maxKeptHeaders = 16 << 10
	// maxKeptPairs bounds a kept decoded header list as maxKeptHeaders
	// bounds its serialised buffer: 512 pairs of two strings are 16 KiB
	// (review Z230: 1,400 short headers fit 15 KiB raw and decode to 44).
	maxKeptPairs   = maxKeptHeaders / 32
	maxKeptDetails = 256
)

// newStream returns a zeroed stream for contextID, reusing the memory of a
// deleted one when there is one: a request then allocates no stream. A
// stream on the free list was zeroed when it was put there (but for its
// buffers), so it is not cleared a second time: it is about 6 KB.
func (p *plugin) newStream(contextID uint32) *stream {
	var s *stream
	if n := len(p.free); n > 0 {
		s = p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
	} else {
		s = new(stream)
	}
	if s.bufs == nil {
		s.bufs = new(buffers)
	}
	s.p, s.id = p, contextID
	return s
}

// OnHttpStreamDeleted offers the stream's memory for reuse once no
// callback can reach it: not pinned by a call, not in the VM's lists.
func (s *stream) OnHttpStreamDeleted() {
	p := s.p
	if s.countingListed { // its end did not come: counted here, not by Done
		s.countBroken()
	}
	if s.waitingListed || s.holdingListed || s.leadingAt != 0 {
		s.unlist()
		return
	}
	if s.pinned || s.performing != 0 || s.purge || len(p.free) >= maxFreeStreams {
		return
	}
	// The buffers are reused only if nothing can still read what they
	// hold: the request was recycled with them, or there was none (a
	// route the cache does not serve).
	bufs := s.bufs
	if s.x.Request() == nil || s.x.Recycle() {
		if bufs.oversize() {
			bufs.trim()
		}
	} else {
		bufs = nil // newStream gives the next request new ones
	}
	// Zeroed in place, then given its buffers back (a literal with them
	// would be built in a temporary and copied over).
	s.streamFields = streamFields{}
	s.bufs = bufs
	s.x.Reset()
	// Below maxFreeStreams, the list has room (newPlugin): no append,
	// whose growth code would sit among the lines every request runs.
	n := len(p.free)
	p.free = p.free[:n+1]
	p.free[n] = s
}

// countBroken counts a deleted stream whose count waited for an end that
// did not come. Out of line, as unlist.
//
//go:noinline
func (s *stream) countBroken() {
	s.countingListed = false
	delete(s.p.counting, s.id)
	s.perform(s.x.Broken(false)) // ended, not broken by a panic: the host sent no reply of its own
}

// unlist takes a deleted stream off the VM's lists, which still refer to
// it: its memory is not reused. Out of line: a stream is most often off
// them when it is deleted, and the code would otherwise sit among the
// lines every request runs.
//
//go:noinline
func (s *stream) unlist() {
	delete(s.p.waiting, s.id)
	delete(s.p.holding, s.id)
	s.p.unlead(s)
}

// oversize reports whether any buffer is larger than the free list keeps
// (trim): compares only, so that the rule, buffers within the bounds,
// runs none of trim's stores (each a write-barrier check and its call).
func (b *buffers) oversize() bool {
	return cap(b.body) > maxKeptBody || cap(b.respBody) > maxKeptBody || cap(b.headersRaw) > maxKeptHeaders ||
		cap(b.respRaw) > maxKeptHeaders || cap(b.details) > maxKeptDetails || cap(b.headers) > maxKeptPairs ||
		cap(b.respHeaders) > maxKeptPairs
}

// trim drops the buffers larger than the free list keeps. Out of line:
// see oversize.
//
//go:noinline
func (b *buffers) trim() {
	if cap(b.body) > maxKeptBody {
		b.body = nil
	}
	if cap(b.respBody) > maxKeptBody {
		b.respBody = nil
	}
	if cap(b.headersRaw) > maxKeptHeaders || cap(b.headers) > maxKeptPairs {
		b.headersRaw, b.headers = nil, nil
	}
	if cap(b.respRaw) > maxKeptHeaders || cap(b.respHeaders) > maxKeptPairs {
		b.respRaw, b.respHeaders = nil, nil
	}
	if cap(b.details) > maxKeptDetails {
		b.details = nil
	}
}

// keepLarger makes got the buffer of the next read when it is larger
// than *buf (the host had to allocate a new one); a smaller or empty
// result never shrinks *buf.
func keepLarger[T any](buf *[]T, got []T) {
	if cap(got) > cap(*buf) {
		keep(buf, got)
	}
}

// keep is keepLarger's store (the rare case: a read that did not fit),
// out of line: its write barrier's code is in no read's lines.
//
//go:noinline
func keep[T any](buf *[]T, got []T) { *buf = got[:0] }

// reader is cachecore.Reader over the current callback's host calls.
type reader struct{ s *stream }

// RequestBody reads into the stream's reused buffer.
func (r reader) RequestBody(n int) ([]byte, error) {
	b, err := proxywasm.GetHttpRequestBodyInto(r.s.bufs.body, 0, n)
	keepLarger(&r.s.bufs.body, b)
	return b, err
}

// ResponseHeaders reads into the stream's reused buffers: the strings
// stay valid as long as the stream's request (bufs outlive it only when
// it is recycled).
func (r reader) ResponseHeaders() ([][2]string, error) {
	b := r.s.bufs
	raw, hs, err := proxywasm.GetHttpResponseHeadersInto(b.respRaw, b.respHeaders)
	keepLarger(&b.respRaw, raw) // a store only when the host's did not fit
	keepLarger(&b.respHeaders, hs)
	return hs, err
}

// ResponseBody reads into the stream's reused buffer, as RequestBody does
// (cachecore copies chunks it keeps; a whole body it is handed lives as
// long as the stream's request).
func (r reader) ResponseBody(n int) ([]byte, error) {
	b, err := proxywasm.GetHttpResponseBodyInto(r.s.bufs.respBody, 0, n)
	keepLarger(&r.s.bufs.respBody, b)
	return b, err
}

// codeDetailsPath is the property CodeDetails reads, encoded once.
var codeDetailsPath = proxywasm.NewPropertyPath("response", "code_details")

// CodeDetails reads into the stream's reused buffer: the string is valid
// until the next call (cachecore only classifies it).
func (r reader) CodeDetails() string {
	d, _ := proxywasm.GetPropertyPathInto(codeDetailsPath, r.s.bufs.details)
	keepLarger(&r.s.bufs.details, d)
	if len(d) == 0 {
		return ""
	}
	return unsafe.String(&d[0], len(d))
}

var verdicts = [...]types.Action{cachecore.Continue: types.ActionContinue, cachecore.Pause: types.ActionPause,
	cachecore.PauseWatermark: types.ActionPauseWatermark}

// do performs acts and answers Envoy with v; the VM's lists of paused
// followers and held requests follow the stream's phase.
func (s *stream) do(v cachecore.Verdict, acts []cachecore.Action) types.Action {
	s.performing++ // a panic leaves it raised: the stream is never reused
	dispatched := s.perform(acts)
	if dispatched {
		s.pinned = true
	}
	s.performing--
	if following := s.x.Following(); following != s.waitingListed {
		if following {
			s.p.waiting[s.id] = s
		} else {
			delete(s.p.waiting, s.id)
		}
		s.waitingListed = following
	}
	if holding := s.x.Holding() && s.p.hold.Watching(); holding != s.holdingListed {
		if holding {
			s.p.holding[s.id] = s
		} else {
			delete(s.p.holding, s.id)
		}
		s.holdingListed = holding
	}
	fast := s.waitingListed || s.holdingListed
	if s.leadingAt != 0 || s.x.Leading() {
		fast = s.listLead() || fast // off a hit's path: a hit never leads
	}
	if fast && !s.p.tickFast() {
		s.p.setTick(true)
	}
	return verdicts[s.x.Resolve(v, dispatched)]
}

// listLead keeps the VM's leading list in step with whether s leads, and
// reports whether its lease needs fast ticks.
//
//go:noinline
func (s *stream) listLead() bool {
	leading := s.x.Leading()
	switch {
	case leading == (s.leadingAt != 0):
		return false
	case leading:
		s.p.lead(s)
		return s.x.LeaseTicksFast()
	}
	s.p.unlead(s)
	return false
}

func (s *stream) OnHttpRequestHeaders(_ int, endOfStream bool) types.Action {
	// s.p and s.bufs in locals: read through s after each call, each
	// read was a load and a nil check of its own.
	p, b := s.p, s.bufs
	raw, hs, err := proxywasm.GetHttpRequestHeadersInto(b.headersRaw, b.headers)
	keepLarger(&b.headersRaw, raw) // a store only when the host's did not fit
	keepLarger(&b.headers, hs)
	if err != nil {
		return s.headersUnread()
	}
	method, _ := cachecore.Header(hs, ":method")
	path, _ := cachecore.Header(hs, ":path")
	c := p.cache
	if c.IsPurge(method, path) {
		return s.startPurge(method, hs, endOfStream)
	}
	route := p.cfg.MatchRoute(method, path)
	if route == nil {
		return types.ActionContinue
	}
	// A route of p.cfg, whose stats newStats listed at its index: no
	// check for a route of another configuration (stats.route).
	s.rs = p.stats.byIndex[route.Index]
	return s.do(s.x.Start(c, route, method, path, hs, endOfStream, &p.hold, p.vmID, s.id))
}

// headersUnread is OnHttpRequestHeaders for headers the host failed to
// hand over: the request goes on uncached, unless it may be a call of the
// purge API, whose bearer token must never go upstream (review Z242): its
// :path is read alone, and if that fails too, or names the purge API, it
// is answered 503 to be sent again. Out of line: the rule runs none of it.
//
//go:noinline
func (s *stream) headersUnread() types.Action {
	s.p.stats.internal.Increment(1)
	c := s.p.cache
	if !c.IsPurge("POST", c.PurgePath()) {
		return types.ActionContinue // no purge API configured
	}
	if path, err := proxywasm.GetHttpRequestHeader(":path"); err == nil && !c.IsPurge("POST", path) {
		return types.ActionContinue
	}
	s.purge = true
	s.sendJSON(503, `{"error":"the request's headers could not be read; send it again"}`)
	return types.ActionPause
}

// startPurge takes a request for the purge API at its headers. Out of line:
// its code would otherwise sit among the lines every request runs.
//
//go:noinline
func (s *stream) startPurge(method string, hs [][2]string, endOfStream bool) types.Action {
	s.purge = true
	s.authority, _ = cachecore.Header(hs, ":authority")
	switch {
	case method != "POST":
		// Answered here whatever it carries: passed on, it would take
		// the token upstream.
		s.reply(405, [][2]string{{"content-type", "application/json"}, {"allow", "POST"}}, []byte(`{"error":"the purge API takes POST"}`))
	case !s.p.cache.PurgeAuthorized(hs):
		// With its challenge, as a 401 must carry one (RFC 9110 §15.5.2;
		// review Z278), as the 405 above carries its Allow.
		s.reply(401, [][2]string{{"content-type", "application/json"}, {"www-authenticate", `Bearer realm="modelcache purge"`}},
			[]byte(`{"error":"purge requires the configured bearer token"}`))
	case endOfStream:
		s.handlePurge(nil)
	case !s.p.hold.Holdable() || s.p.hold.Watching():
		// Envoy may not hand the body to a filter that holds the
		// headers (a plain WasmPlugin), and has not been seen to: the
		// headers go on without the token, the body is read as it
		// comes, and the answer is local (the upstream request the
		// headers opened is reset), as a hit decided late is.
		if proxywasm.RemoveHttpRequestHeader("authorization") != nil {
			// The token would go upstream: answered here, to be sent
			// again (review Z176).
			s.p.stats.internal.Increment(1)
			s.sendJSON(503, `{"error":"the purge could not be taken; send it again"}`)
			return types.ActionPause
		}
		s.purgeLate = true
		return types.ActionContinue
	}
	return types.ActionPause
}

func (s *stream) OnHttpRequestBody(bodySize int, endOfStream bool) types.Action {
	if s.letGoAt != 0 {
		s.p.stalled(s)
	}
	if !s.purge {
		if s.retry != nil {
			s.dropRetry()
		}
		return s.do(s.x.RequestBody(bodySize, endOfStream, reader{s}, &s.p.hold))
	}
	if s.purgeAnswered {
		return types.ActionPause // refused (its reply retried): never carried out
	}
	if endOfStream {
		s.readPurge(bodySize)
	}
	s.purgeSize = bodySize
	return types.ActionPause
}

// OnHttpRequestTrailers ends a body that no chunk ended.
func (s *stream) OnHttpRequestTrailers(int) types.Action {
	if !s.purge {
		if s.retry != nil {
			s.dropRetry()
		}
		return s.do(s.x.RequestTrailers(reader{s}, &s.p.hold))
	}
	if s.purgeAnswered {
		return types.ActionPause
	}
	s.readPurge(s.purgeSize)
	return types.ActionPause
}

func (s *stream) OnHttpResponseHeaders(_ int, endOfStream bool) types.Action {
	if s.purgeLate {
		if cachecore.ClassifyOrigin(reader{s}.CodeDetails()) == cachecore.OriginUpstream {
			return types.ActionPause // the upstream's answer to a purge's headers never passes
		}
		// Envoy's own reply (a 413 for a body over its buffer, say): the
		// body will not reach the filter, so no purge answer can follow.
		s.purgeLate = false
		return types.ActionContinue
	}
	return s.do(s.x.ResponseHeaders(endOfStream, reader{s}))
}

func (s *stream) OnHttpResponseBody(bodySize int, endOfStream bool) types.Action {
	if s.purgeLate {
		return types.ActionPause
	}
	if s.x.Answered() && !s.waitingListed && !s.holdingListed && s.leadingAt == 0 && !s.x.Leading() {
		// Nothing to read, perform or list (do would find every list as
		// it is): an answer that passes, most often, runs no more code.
		return types.ActionContinue
	}
	return s.do(s.x.ResponseBody(bodySize, endOfStream, reader{s}))
}

// OnHttpResponseTrailers ends an answer that no chunk ended.
func (s *stream) OnHttpResponseTrailers(int) types.Action {
	if s.purgeLate {
		return types.ActionPause // as its headers and body: continued, they passed (review Z131)
	}
	return s.do(s.x.ResponseTrailers(reader{s}))
}

func (s *stream) OnHttpStreamDone() {
	if !s.x.Ended() || s.waitingListed || s.holdingListed || s.leadingAt != 0 {
		// Else Done would return no actions and do would find every
		// list as it is: a request that ended as most do (its answer
		// passed, counted) runs none of their code at its end.
		s.do(cachecore.Continue, s.x.Done(reader{s}))
	}
	if s.countingListed { // counted by Done
		s.countingListed = false
		delete(s.p.counting, s.id)
	}
	if s.bodyLate { // its body never came
		s.bodyLate = false
		s.rs.bypassed(cachecore.ReasonBodyLate)
	}
}

// inRoot runs one of the stream's events in a root callback (a wake-up, a
// tick, a held request let through) with the stream's context made the
// effective one. A paused follower is resumed by its actions; a held
// request that passes is resumed here.
func (s *stream) inRoot(event func(*cachecore.Stream) []cachecore.Action, resumeHeld bool) bool {
	if proxywasm.SetEffectiveContext(s.id) != nil {
		return false
	}
	s.rooted = true
	v := s.do(cachecore.Decided, event(&s.x))
	s.rooted = false
	if v == types.ActionContinue && resumeHeld {
		if err := proxywasm.ResumeHttpRequest(); err != nil {
			s.retryLater(proxywasm.ResumeHttpRequest) // off the holding list: nothing else resumes it (review Z121)
		}
	}
	return true
}

// Paused (proxywasm.PauseReporter) is the side of the stream its protocol
// holds, for the binding to resume should a root callback break it.
func (s *stream) Paused() (request, response bool) { return s.x.Paused() }

// continued performs the actions a call of the stream's own led to (its
// result arrives in a root callback).
func (s *stream) continued(acts []cachecore.Action) {
	s.rooted = true
	s.do(cachecore.Continue, s.x.Continue(acts))
	s.rooted = false
}

// perform carries out the protocol's actions on this stream (its context
// is the effective one); the rest are the plugin's (perform in actions.go).
// It reports whether a call was dispatched.
func (s *stream) perform(acts []cachecore.Action) (dispatched bool) {
	for i := range acts {
		a := &acts[i]
		switch a.Kind {
		case cachecore.ActBypass:
			s.rs.request(a.CacheStatus)
			if a.Reason == cachecore.ReasonBodyLate {
				s.bodyLate = true // counted once its body tells (plugin.stalled)
				continue
			}
			s.rs.bypassed(a.Reason)
		case cachecore.ActCountRequest:
			s.rs.request(a.CacheStatus)
		case cachecore.ActRecordAge:
			if s.merged != nil {
				s.mergedAge = a.N // (sendMerged records it)
				continue
			}
			s.rs.ageAtServe.Record(uint64(a.N))
		case cachecore.ActServeEntry, cachecore.ActServeLocal:
			if err := proxywasm.SendHttpResponse(uint32(a.Status), a.Headers, a.Body, -1); err != nil && a.Resume {
				s.perform(s.x.SendFailed()) // could not answer locally: fail open
				continue
			}
			if s.perform(s.x.Served(a)) {
				dispatched = true
			}
		case cachecore.ActForward:
			s.forward(a)
		case cachecore.ActResumeResponse:
			// The answer a call's result replaced (a batch asked for
			// again): refused, nothing else resumes it (review Z121).
			if err := proxywasm.ResumeHttpResponse(); err != nil {
				s.retryLater(proxywasm.ResumeHttpResponse)
			}
		case cachecore.ActDispatch:
			// A call of this request's (an L2 lookup, a refetch): its
			// result continues it.
			if a.Call.Stream == s.id {
				dispatched = s.p.dispatch(a.Call, s.continued) || dispatched
				break
			}
			fallthrough
		default:
			// A miss's other actions (its counts, on the stream's own
			// route, and its cache-status) are done here, not through
			// the plugin's perform, which looks the route up again: a
			// miss never enters it. Tested here, after the switch, so
			// that a hit's actions find their cases as before.
			switch {
			case a.Kind == cachecore.ActCount && a.Route == s.rs.route:
				s.rs.items(a.Event, max(a.N, 1))
			case a.Kind == cachecore.ActRefused && a.Route == s.rs.route:
				s.rs.refusal(a.Reason, a.Status)
			case a.Kind == cachecore.ActSetHeader:
				if proxywasm.ReplaceHttpResponseHeader(a.Name, a.Value) != nil {
					s.p.stats.internal.Increment(1) // the answer goes without it (review Z242)
				}
			case a.Kind == cachecore.ActReplaceBody:
				if !s.replaceBody(a) {
					return s.performUnmerged(acts[i+1:]) || dispatched
				}
			default:
				if s.p.perform(a) {
					dispatched = true
				}
			}
		}
	}
	if s.merged != nil {
		s.sendMerged()
	}
	return dispatched
}

// forward sends the request upstream: the current callback continues it,
// or it is resumed (a.Resume) when a root callback performs it. Headers are
// still held here unless the decision is late (they went upstream,
// prepared, before the body). (In its own callback, a resume would be run
// by Envoy as that callback returns, before the body chunk it holds is
// passed on: the request would go upstream ended at its headers.)
func (s *stream) forward(a *cachecore.Action) {
	if !a.CountLater { // else when it ends (cachecore.Stream.Done, or Broken)
		s.rs.request(a.CacheStatus)
		s.rs.items(cachecore.EvItemsHit, a.N)
	} else if !s.countingListed {
		s.countingListed = true
		s.p.counting[s.id] = s
	}
	// The cache can only check and store an uncompressed body; a compressor
	// in front of this filter compresses for the client.
	if !a.Late && proxywasm.RemoveHttpRequestHeader("accept-encoding") != nil {
		s.encodingKept()
	}
	if a.Rewrite {
		// Should a fault break the stream from here on, the binding fails
		// it open with this answer: the upstream's covers only the missing
		// items.
		status, hs, body := s.p.cache.BrokenBatchAnswer()
		proxywasm.SetBrokenReply(s.id, status, hs, body)
		if err := proxywasm.ReplaceHttpRequestBody(a.Body); err != nil {
			s.p.stats.internal.Increment(1)
		}
		if !a.Late {
			_ = proxywasm.ReplaceHttpRequestHeader("content-length", strconv.Itoa(len(a.Body)))
		}
	}
	if a.Resume && s.rooted {
		if err := proxywasm.ResumeHttpRequest(); err != nil {
			s.retryLater(proxywasm.ResumeHttpRequest) // else nothing resumes it (review Z82)
		}
	}
}

// encodingKept counts the host's failure to remove the request's
// accept-encoding and tells the protocol: a compressed answer is then the
// cache's fault, not a lasting refusal (review Z242). Out of line: the
// rule runs none of it.
//
//go:noinline
func (s *stream) encodingKept() {
	s.p.stats.internal.Increment(1)
	s.x.Request().EncodingKept()
}

// performUnmerged performs what follows a batch merge the host refused
// (replaceBody) but the age and headers of the merged answer, which the
// client does not get. Out of line: other requests run none of it.
//
//go:noinline
func (s *stream) performUnmerged(acts []cachecore.Action) bool {
	rest := make([]cachecore.Action, 0, len(acts))
	for _, a := range acts {
		if a.Kind != cachecore.ActRecordAge && a.Kind != cachecore.ActSetHeader {
			rest = append(rest, a)
		}
	}
	return s.perform(rest)
}

// replaceBody writes a partly cached batch's merged body (ActReplaceBody)
// and reports whether it could. Should the host refuse it, the upstream's
// answer, for the missing items alone and numbered from 0, may not pass
// as the batch's (reviews Z82, Z83): the client gets the batch's broken
// answer, as a local reply or, should that be refused too, as the held
// response's status and headers; the request counts as a miss with no
// item served.
func (s *stream) replaceBody(a *cachecore.Action) bool {
	if len(a.Body) > s.rs.route.MaxEntryBytes && s.merged == nil {
		s.merged, s.mergedDrop, s.mergedAge = a.Body, a.Headers, -1
		return true
	}
	return s.writeMerged(a.Body, a.Headers)
}

// writeMerged writes a merged body into the held answer's buffer.
func (s *stream) writeMerged(body []byte, drop [][2]string) bool {
	if proxywasm.ReplaceHttpResponseBody(body) == nil {
		_ = proxywasm.ReplaceHttpResponseHeader("content-length", strconv.Itoa(len(body)))
		for _, h := range drop {
			_ = proxywasm.RemoveHttpResponseHeader(h[0])
		}
		return true
	}
	s.x.MergeFailed()
	s.p.sendBrokenBatch()
	return false
}

// sendMerged sends a merged body larger than max_entry_bytes (replaceBody)
// as a local reply with the held answer's status and headers, as they
// stand once the actions that came with it are done: the held answer's
// buffer is limited by the proxy (per_connection_buffer_limit_bytes, which
// README asks to keep above max_entry_bytes, not above a merge of many
// cached items), and a merge written into it past that limit was Envoy's
// 500 (review Z143), as a whole batch asked for again was (ActSendReplacement,
// review Z100). Should the host refuse the reply, the body is written into
// the buffer after all.
func (s *stream) sendMerged() {
	body, drop, age := s.merged, s.mergedDrop, s.mergedAge
	s.merged, s.mergedDrop = nil, nil
	if hs, err := proxywasm.GetHttpResponseHeaders(); err == nil {
		status, out := 200, make([][2]string, 0, len(hs))
		for _, h := range hs {
			switch name := strings.ToLower(h[0]); {
			case name == ":status":
				status, _ = strconv.Atoi(h[1])
			case name == "content-length", name == "transfer-encoding", strings.HasPrefix(name, ":"):
			case slices.ContainsFunc(drop, func(d [2]string) bool { return strings.EqualFold(d[0], name) }):
			default:
				out = append(out, h)
			}
		}
		if proxywasm.SendHttpResponse(uint32(status), out, body, -1) == nil {
			s.recordMergedAge(age)
			return
		}
	}
	if s.writeMerged(body, drop) {
		s.recordMergedAge(age)
	}
}

// recordMergedAge records the age of a merged body's cached items, once
// the client gets it (sendMerged); -1: none to record.
func (s *stream) recordMergedAge(age int) {
	if age >= 0 {
		s.rs.ageAtServe.Record(uint64(age))
	}
}

// readPurge reads a purge's body of size bytes and carries it out. A body
// the host will not hand over is a fault of the proxy's, answered 503 to
// send the purge again and counted: read as none, it was answered 400,
// "not JSON" (review Z131).
func (s *stream) readPurge(size int) {
	body, err := proxywasm.GetHttpRequestBody(0, size)
	if err != nil && size > 0 {
		s.purgeFault(err)
		return
	}
	s.handlePurge(body)
}

// purgeFault answers a purge a fault of the proxy's stopped (a body it
// would not read, shared data that refused a write) with a 503 that says
// to send it again, as purges may be, and counts it: a 400 told automation
// the request was bad and not to retry a purge left half done (review
// Z131).
func (s *stream) purgeFault(err error) {
	s.p.stats.internal.Increment(1)
	s.sendJSON(503, cachecore.PurgeErrorBody(errors.New("purge failed, send it again: "+err.Error())))
}

func (s *stream) handlePurge(body []byte) {
	res, err := s.p.cache.Purge(body, s.authority)
	if res.Freed > 0 {
		// Freed also by a purge a fault stopped after: sent again, it
		// frees none of them (review Z132).
		s.p.stats.entries.Add(-int64(res.Freed))
	}
	if err != nil {
		if !errors.Is(err, cachecore.ErrBadPurge) {
			s.purgeFault(err)
			return
		}
		s.sendJSON(400, cachecore.PurgeErrorBody(err))
		return
	}
	s.p.stats.purges.Increment(1)
	proxywasm.LogInfo("purge " + res.Scope + " freed " + strconv.Itoa(res.Freed))
	reply := func() { s.sendJSON(200, `{"scope":"`+res.Scope+`","freed":`+strconv.Itoa(res.Freed)+`}`) }
	if res.L2 != nil { // answered once the purge reached L2 (or failed to)
		res.L2.Stream = s.id
		w := &purgeWait{s: s, id: s.id, reply: reply}
		w.dispatch(res.L2)
		return
	}
	reply()
}

// purgeWait answers a purge once every L2 call chained behind its first
// has ended: the INCR's retries, an entry's DEL, each purge-log record.
// Answered after the first call's result, a purge whose first INCR failed
// said 200 while Redis still served what it purged, and an embeddings
// purge logged in several records said so before the others were written
// (review Z85). The first call belongs to the purge's request (its Gone
// is its Done: a client that left takes nothing with it); the calls
// chained behind it are the worker's, so the answer checks that the
// request is still there.
type purgeWait struct {
	s       *stream
	id      uint32 // the purge's request: s is another's once recycled
	pending int
	reply   func()
}

func (w *purgeWait) dispatch(call *cachecore.Call) {
	w.pending++
	w.s.p.dispatch(call, w.performed)
}

// performed performs what a call of the purge's chain gave; the calls it
// makes are the chain's too.
func (w *purgeWait) performed(acts []cachecore.Action) {
	for i := range acts {
		if acts[i].Kind == cachecore.ActDispatch {
			w.dispatch(acts[i].Call)
			continue
		}
		w.s.p.perform(&acts[i])
	}
	if w.pending--; w.pending > 0 {
		return
	}
	if w.s.id == w.id && proxywasm.SetEffectiveContext(w.id) == nil {
		w.reply()
	}
}

func (s *stream) sendJSON(status uint32, body string) {
	s.reply(status, [][2]string{{"content-type", "application/json"}}, []byte(body))
}

// reply answers a purge locally. A reply the host refuses is counted and
// sent again from the ticks (retryLater): the purge may not go upstream
// (it carries the token), and it hung for good (review Z82).
func (s *stream) reply(status uint32, hs [][2]string, body []byte) {
	s.purgeAnswered = true
	send := func() error {
		// This answer passes (it goes through the response callbacks).
		// Until it is sent, an answer the upstream gives a late purge's
		// headers stays held: it passed in the purge's place while its
		// reply was being retried (review Z85).
		late := s.purgeLate
		s.purgeLate = false
		err := proxywasm.SendHttpResponse(status, hs, body, -1)
		if err != nil {
			s.purgeLate = late
		}
		return err
	}
	if send() != nil {
		s.retryLater(send)
	}
}

// dropRetry forgets a resume of the request still to be tried: a body
// callback came, whose verdict is the protocol's word on the request now
// (a follower's body held, say). Tried on a tick after it, the resume
// sent a follower's held body upstream (review Z123).
//
//go:noinline
func (s *stream) dropRetry() {
	delete(s.p.retrying, s.id)
	s.retry = nil
}

// retryLater counts a host action that failed and lists the stream for
// the ticks to try it again until it is done or the stream's context is
// gone (plugin.OnTick).
func (s *stream) retryLater(f func() error) {
	s.p.stats.internal.Increment(1)
	s.retry = f
	s.p.retrying[s.id] = s
	s.pinned = true // listed until a tick finds its context gone: never reused meanwhile
}
