package cachecore

import (
	"math"
	"strconv"
	"strings"
)

// Completion is how a complete response ended, for the host's next step.
type Completion uint8

const (
	// Refused: not stored; the response passes with its Cache-Status.
	Refused Completion = iota
	// Completed: stored; the response passes with its Cache-Status.
	Completed
	// Refetching: the partial batch answer is unusable and is replaced
	// (Flight.Refetch); the response is now the protocol's to finish.
	Refetching
)

// Complete is the event "the response body is complete" (body: all of it;
// headers: the response's; reqHeaders: the client's request headers, for a
// refetch). It runs the one admit-and-store with the time the upstream
// took since the request was forwarded (computeMs), ends the lead, and
// decides the Cache-Status.
func (f *Flight) Complete(headers [][2]string, body []byte, computeMs uint32, reqHeaders [][2]string) (Completion, []Action) {
	c, req, r := f.c, f.req, f.req.Route
	if f.refetchFor != ReasonNone {
		return Refetching, f.Refetch(f.refetchFor, reqHeaders)
	}
	st := c.StoreBody(req, f.respStatus, headers, body, computeMs)
	if adm := st.Admission; adm.Reason != ReasonNone {
		var acts []Action
		if st.Result.VersionChanged {
			acts = append(acts, Action{Kind: ActNoteStore, Stored: &st, Request: req, Route: r})
			acts = append(acts, c.l2VersionSwitched(req, st.Result)...)
		}
		if adm.Reason == ReasonValidation {
			acts = append(acts, Action{Kind: ActLog, Level: LogDebug, Message: []byte("validation rule failed on route " + r.Name + ": " + adm.Rule)})
		}
		if req.rewritten() {
			// The answer covers only the missing items and cannot be used:
			// the client still needs a whole answer.
			if st.Result.Version != "" && req.batch != nil {
				// Of another version than the request was keyed under: a
				// new model's vectors may have another dimension; that is
				// a version change (noted above), not a drift of the
				// cached one, whose purge took the new version's entries
				// too (review Z206).
				req.batch.answerDrifted = false
			}
			return Refetching, append(acts, f.Refetch(adm.Reason, reqHeaders)...)
		}
		if adm.Reason == ReasonTruncated {
			// An event stream that ended, at its headers or after, unfinished
			// as its assembly reads it (no [DONE]): as CompleteStream's
			// (refusalEnded; review Z154).
			f.Refused(adm.Reason)
			return Refused, append(acts, f.refusalEnded(adm.Reason)...)
		}
		return Refused, append(acts, f.refuse(adm.Reason)...)
	}
	if st.Reason != ReasonNone {
		note := append([]Action{{Kind: ActNoteStore, Stored: &st, Request: req, Route: r}}, c.l2VersionSwitched(req, st.Result)...)
		if req.rewritten() {
			// Not stored (a version missing or moved, a purge meanwhile):
			// merged with the cached items it could mix two models'
			// vectors, and as it came it holds only the missing items.
			return Refetching, append(note, f.Refetch(st.Reason, reqHeaders)...)
		}
		return Refused, append(note, f.refuse(st.Reason)...)
	}
	if st.Result.VersionChanged && req.rewritten() && req.batch.hits > 0 {
		// The missing items' answer reports a version other than the one
		// the cached items were stored under: stored, it retired them, and
		// merged with them it would mix two models' vectors. The whole
		// batch is asked for again. (A batch rewritten only to send each
		// repeated item once has no cached item to mix: its answer is
		// stored and spread over the repeats.)
		note := append([]Action{{Kind: ActNoteStore, Stored: &st, Request: req, Route: r}}, c.l2VersionSwitched(req, st.Result)...)
		return Refetching, append(note, f.Refetch(ReasonInvalidated, reqHeaders)...)
	}
	f.reset()
	res := st.Result
	shown := res // what Cache-Status says of the answer
	// A batch none of whose items could be kept (each entry over
	// max_entry_bytes, say) is not stored: counted refused, and its
	// Cache-Status says so below; a partial one is still merged.
	noneKept := res.ItemsStored == 0 && res.ItemsRefused > 0
	if noneKept {
		f.emit(Action{Kind: ActNoteStore, Stored: &st, Request: req, Route: r})
		f.emit(Action{Kind: ActRefused, Route: r, Reason: res.ItemReason, Status: f.respStatus})
	} else {
		f.emit(Action{Kind: ActStored, Stored: &st, Request: req, Route: r, Status: f.respStatus})
	}
	if cached, total := req.ItemCounts(); total > 0 {
		if res.ItemsStored > 0 {
			f.emit(Action{Kind: ActCount, Event: EvItemsStored, Route: r, N: res.ItemsStored})
		}
		if res.ItemsRefused > 0 {
			f.emit(Action{Kind: ActCount, Event: EvItemsRefused, Route: r, N: res.ItemsRefused})
		}
		if req.rewritten() {
			// The client gets cached items: the answer is as old as the
			// oldest of them, and as fresh as the least fresh (as a
			// wholly cached batch says).
			age := c.Age(req).Milliseconds()
			req.batch.merged = true
			f.emit(Action{Kind: ActReplaceBody, Body: c.MergedBody(req, body), Headers: bodyDescribing(headers)})
			if cached > 0 {
				// Only cached items are entries served (a batch rewritten
				// for its repeats alone serves none: review Z22).
				f.emit(Action{Kind: ActRecordAge, Route: r, N: int(age)})
				f.emit(Action{Kind: ActSetHeader, Name: "age", Value: strconv.FormatInt(age/1000, 10)})
				shown.FreshUntil = min(shown.FreshUntil, req.batch.minFresh)
			}
		}
		f.emit(Action{Kind: ActSetHeader, Name: CachedItemsHeader, Value: strconv.Itoa(cached) + "/" + strconv.Itoa(total)})
	}
	if noneKept {
		f.finishLead(leadEnd(res.ItemReason, f.respStatus))
		f.Refused(res.ItemReason)
		return Completed, append(f.actions(), c.l2VersionSwitched(req, res)...)
	}
	f.finishLead(OutcomeStored, f.respStatus)
	f.Stored(shown)
	f.l2Write()
	return Completed, append(append(f.actions(), f.semanticStored(res.FreshUntil)...), c.l2VersionSwitched(req, res)...)
}

// CompleteStream is Complete for a recorded event stream, already on its
// way to the client (its Cache-Status is sent): dropped means the
// recording outgrew max_entry_bytes.
// bodyDescribing lists the headers of hs that describe its body as sent,
// which a body merged in its place (a partly cached batch's) contradicts:
// a digest of it (RFC 9530, the older Digest and Content-MD5), its ETag
// and Last-Modified. nil when there is none, as most often.
func bodyDescribing(hs [][2]string) [][2]string {
	var out [][2]string
	for _, h := range hs {
		if describesBody(strings.ToLower(h[0])) {
			out = append(out, h)
		}
	}
	return out
}

// describesBody reports a header (its lower-case name) that describes the
// body it came with as sent (bodyDescribing).
func describesBody(name string) bool {
	switch name {
	case "content-digest", "repr-digest", "digest", "content-md5", "etag", "last-modified":
		return true
	}
	return false
}

func (f *Flight) CompleteStream(headers [][2]string, body []byte, dropped bool, computeMs uint32) []Action {
	req, r := f.req, f.req.Route
	if dropped {
		return f.tooLarge(true)
	}
	st := f.c.StoreBody(req, f.respStatus, headers, body, computeMs)
	if st.Reason != ReasonNone {
		note := append([]Action{{Kind: ActNoteStore, Stored: &st, Request: req, Route: r}}, f.c.l2VersionSwitched(req, st.Result)...)
		if st.Reason == ReasonTruncated {
			return append(note, f.refusalEnded(st.Reason)...)
		}
		return append(note, f.refuseQuiet(st.Reason)...)
	}
	f.reset()
	f.emit(Action{Kind: ActStored, Stored: &st, Request: req, Route: r, Status: f.respStatus})
	f.finishLead(OutcomeStored, f.respStatus)
	f.l2Write()
	return append(append(f.actions(), f.semanticStored(st.Result.FreshUntil)...), f.c.l2VersionSwitched(req, st.Result)...)
}

// refuse: the response is not stored for reason; its Cache-Status says so.
func (f *Flight) refuse(reason Reason) []Action {
	f.Refused(reason)
	return f.refusal(reason, reason == ReasonInternal && !f.req.faultCounted)
}

// refuseQuiet counts a refusal and ends any lead with its outcome.
func (f *Flight) refuseQuiet(reason Reason) []Action { return f.refusal(reason, false) }

// refusal is refuseQuiet, counting an internal error after if internal:
// one function on a refusal's path, not two.
func (f *Flight) refusal(reason Reason, internal bool) []Action {
	f.reset()
	f.emit(Action{Kind: ActRefused, Route: f.req.Route, Reason: reason, Status: f.respStatus})
	// leadEnd, written out: the refusal on every uncacheable miss's path
	// runs OutcomeOf inlined and no call for a lead that did not fail.
	o, status := OutcomeOf(reason, f.respStatus), f.respStatus
	if o == OutcomeFailed {
		status = wholeStatus(reason, status)
	}
	f.finishLead(o, status)
	if internal {
		f.internal()
	}
	return f.actions()
}

// refusalEnded is refuseQuiet for a stream that reached its end (the
// host saw it whole) but that its assembly found unfinished: no [DONE],
// or a last event without its blank line. The model sends the same whole
// stream to every retry, and followers led into it max_retries+1 times
// were answered 502 (review Z150): as for any refused whole answer
// (refusedWhole), they go upstream instead. A reset or timeout mid-stream
// never comes here (Interrupted).
func (f *Flight) refusalEnded(reason Reason) []Action {
	f.reset()
	f.emit(Action{Kind: ActRefused, Route: f.req.Route, Reason: reason, Status: f.respStatus})
	o := OutcomeOf(reason, f.respStatus)
	f.finishLead(o, endedStatus(o, f.respStatus))
	return f.actions()
}

// endedStatus is the status a failed lead passes its followers when the
// model's answer reached its end whole (a success status): refusedWhole.
func endedStatus(o Outcome, status int) int {
	if o == OutcomeFailed && status >= 200 && status < 300 {
		return status | refusedWhole
	}
	return status
}

// RespStep is what the host does with the response headers.
type RespStep uint8

const (
	// RespPass: let them through with the Cache-Status (not stored).
	RespPass RespStep = iota
	// RespServed: the upstream failed and the stale entry answers instead
	// (the actions serve it); hold the upstream response back.
	RespServed
	// RespStream: an event stream; let it through with the Cache-Status
	// and record the body (CompleteStream at its end).
	RespStream
	// RespComplete: there is no body; Complete now.
	RespComplete
	// RespHold: hold the headers and buffer the body until Complete.
	RespHold
	// RespCopy: as RespHold, but the answer has no content-length: the host
	// copies it chunk by chunk (bounded by max_entry_bytes) rather than
	// letting its buffer grow towards its limit.
	RespCopy
)

// ResponseHeaders is the event "the upstream's response headers arrived"
// (origin: who produced them).
func (f *Flight) ResponseHeaders(status int, headers [][2]string, origin Origin, endOfStream bool) (RespStep, []Action) {
	c, req := f.c, f.req
	f.respStatus = status
	f.fwdStatus = 0
	if origin == OriginUpstream {
		f.fwdStatus = status
	}
	if reason := c.AdmitHeaders(req, status, headers, origin); reason != ReasonNone {
		if reason == ReasonEncoded && req.encodingKept {
			// The host's fault, not the model's: no lasting refusal, and
			// counted once, where the host failed (refuse; review Z248).
			reason, req.faultCounted = ReasonInternal, true
		}
		if status == 429 || status >= 500 { // (a flight starts at zero; the uncacheable miss's 200 makes no call)
			f.retryAfter = retryAfterOf(status, headers)
		}
		if req.Route.ModelVersion.Enabled() {
			return f.versionRefused(reason, headers, endOfStream)
		}
		if req.Entry == nil && req.batch == nil {
			// The rule: no stale answer to serve instead (StaleIfError),
			// no batch that was rewritten; it passes as it came.
			return RespPass, f.refuse(reason)
		}
		return f.headersRefused(reason, endOfStream)
	}
	f.reset()
	if req.Route.ModelVersion.Header != "" {
		f.keepVersion(headers)
	}
	switch {
	case StreamsResponse(req, headers) && !endOfStream:
		// An event stream reaches the client as it comes, with no added
		// delay to the first token; the host keeps a copy and the protocol
		// decides at the end. (Whether it was stored cannot be in
		// Cache-Status: the headers are gone by then. The stats say.)
		f.Streaming()
		return RespStream, nil
	case endOfStream:
		if req.rewritten() {
			return RespPass, f.bodyless(headers)
		}
		return RespComplete, nil
	}
	if _, sized := header(headers, "content-length"); !sized {
		// Only an answer that is passed on as it came can be copied: a
		// merged or refetched one replaces the whole body.
		if !req.rewritten() {
			return RespCopy, nil
		}
	}
	return RespHold, nil
}

// bodyless refuses the answer to a rewritten batch that ends with its
// headers: without a body it is not JSON (malformed_json, as Complete
// finds for any other request's), and it has no vectors to misplace, while
// a response that ended with its headers cannot be replaced by a refetch:
// it passes, refused, with its Cache-Status, as one refused at its headers
// does (headersRefused). Asked for again, the whole batch's answer was
// left without a response to replace, and the client got the empty 200
// without a Cache-Status (review Z103). The version its headers report is
// noted as any refused answer's (versionRefused): a switch counts, and
// the old version's entries are served no more (review Z110). Out of
// line: an answer with a body runs none of it.
//
//go:noinline
func (f *Flight) bodyless(headers [][2]string) []Action {
	if !f.req.Route.ModelVersion.Enabled() {
		return f.refuse(ReasonMalformedJSON)
	}
	_, acts := f.versionRefused(ReasonMalformedJSON, headers, true)
	return acts
}

// headersRefused is ResponseHeaders for headers that refuse the answer
// (reason) of a request that looked up an entry, which may serve instead
// of a failure, or of an embeddings batch, whose answer may not pass as
// it came when it was rewritten. Out of line: a request with neither (an
// answer refused for no-store, say, on a plain miss) runs none of this
// code.
//
//go:noinline
func (f *Flight) headersRefused(reason Reason, endOfStream bool) (RespStep, []Action) {
	c, req, status := f.c, f.req, f.respStatus
	o := OutcomeOf(reason, status)
	if o == OutcomeFailed && c.StaleIfError(req) {
		// The model failed but a stale answer within stale_if_error
		// exists: the client gets that instead of the error.
		f.reset()
		f.emit(Action{Kind: ActRefused, Route: req.Route, Reason: reason, Status: status})
		f.finishLead(o, status)
		f.Refused(reason) // what the error says should the entry not be sent (Stream.SendFailed)
		f.StaleIfError()
		f.emit(Action{Kind: ActServeEntry})
		return RespServed, f.actions()
	}
	if req.rewritten() && status >= 200 && status < 300 {
		// The answer covers only the missing items of a partly cached
		// batch, indexed from 0: passed as it came, its vectors would
		// sit at other items' places. It is held to its end and the
		// whole batch asked for again (Complete). An error passes: it
		// carries no vectors.
		// (One without a body has no vectors to misplace, and a
		// response that ends with its headers cannot be replaced: it
		// passes, refused.)
		if !endOfStream {
			f.reset()
			f.refetchFor = reason
			return RespHold, nil
		}
	}
	if req.rewritten() {
		// The model's error (or Envoy's) passes as it came: the client
		// gets none of the cached items, and none is counted a hit
		// (review Z216).
		req.batch.hits = 0
	}
	return RespPass, f.refuse(reason)
}

// versionRefused is the refusal of headersRefused on a route that tracks
// model versions: the version the refused answer reports is recorded
// (noteVersion), and a switch noted with the refusal's actions, so that
// model_version_changes counts it as it counts a stored answer's. Out of
// line: other routes run none of it.
//
//go:noinline
func (f *Flight) versionRefused(reason Reason, headers [][2]string, endOfStream bool) (RespStep, []Action) {
	res := f.c.noteVersion(f.req, reason, f.respStatus, headers, nil)
	step, acts := f.headersRefused(reason, endOfStream)
	if res.VersionChanged {
		acts = append(acts, Action{Kind: ActNoteStore, Stored: &Stored{Reason: reason, Result: res}, Request: f.req, Route: f.req.Route})
		acts = append(acts, f.c.l2VersionSwitched(f.req, res)...)
	}
	return step, acts
}

// ResponseChunk is the event "a chunk of a held response of unknown length
// arrived" (the host copies it into h). It reports false, with the
// refusal, once the answer outgrows max_entry_bytes: the host then lets it
// pass with its Cache-Status.
func (f *Flight) ResponseChunk(h *Held, chunk []byte) (bool, []Action) {
	if len(h.body)+len(chunk) > f.req.Route.MaxEntryBytes {
		h.body = nil
		return false, f.tooLarge(false)
	}
	h.body = append(h.body, chunk...)
	return true, nil
}

// Buffered is the event "the host buffers a held response of bodySize
// bytes so far". It reports false, with the refusal, once that is more
// than max_entry_bytes: the host stops holding it before its own buffer
// limit does.
func (f *Flight) Buffered(bodySize int) (bool, []Action) {
	if bodySize > f.req.Route.MaxEntryBytes {
		if f.req.rewritten() {
			// Not to be passed as it came (ResponseHeaders): held on (the
			// proxy's own buffer limit bounds it) and replaced at its end.
			if f.refetchFor == ReasonNone {
				f.refetchFor = ReasonTooLarge
			}
			return true, nil
		}
		return false, f.tooLarge(false)
	}
	return true, nil
}

// keepVersion keeps the version a versioned route's answer reports in its
// header (a copy: the host's header memory is reused). Out of line: a
// route without versions runs none of it.
//
//go:noinline
func (f *Flight) keepVersion(headers [][2]string) {
	if v, ok := header(headers, f.req.Route.ModelVersion.Header); ok {
		f.respVersion = strings.Clone(v)
	}
}

// tooLarge refuses an answer that outgrew max_entry_bytes after its
// headers were admitted (quiet: its Cache-Status was sent already). A new
// version its header reported switches the version first, as for an
// answer refused at its headers (versionRefused): its body is not kept,
// so a body_path version is not read.
func (f *Flight) tooLarge(quiet bool) []Action {
	note := f.headerVersionNote(ReasonTooLarge)
	var acts []Action
	if quiet {
		acts = f.refuseQuiet(ReasonTooLarge)
	} else {
		acts = f.refuse(ReasonTooLarge)
	}
	return append(acts, note...)
}

// headerVersionNote notes the version the answer's header reported
// (respVersion) for an answer refused for reason after its headers were
// admitted, whose body is not read: too large, or a stream cut before its
// end, which its client was served (review Z173). It returns the actions
// of a switch.
func (f *Flight) headerVersionNote(reason Reason) []Action {
	return f.versionNote(reason, f.respVersion)
}

// cutVersionNote is headerVersionNote for an answer cut short (truncated):
// on a route that reads the version at a body_path, the events recorded so
// far are read for it (streamEventsVersion), as a whole stream's are; cut,
// a stream reporting a new version switched nothing (review Z279).
func (f *Flight) cutVersionNote(recorded []byte) []Action {
	v := f.respVersion
	if r := f.req.Route; v == "" && r.ModelVersion.BodyPath != "" && len(recorded) <= r.MaxEntryBytes {
		v = streamEventsVersion(recorded, r.ModelVersion.BodyPath)
	}
	return f.versionNote(ReasonTruncated, v)
}

// versionNote notes version v, read from an answer refused for reason, as
// noteVersion does, and returns the actions of a switch.
func (f *Flight) versionNote(reason Reason, v string) []Action {
	req := f.req
	if v == "" || !versionCounts(req, f.respStatus) {
		return nil
	}
	return f.c.switchNoted(req, Stored{Reason: reason, Result: f.c.noteVersionOf(req, StoreResult{Reason: reason}, v)})
}

// Unread is the host's report that it could not read a rewritten batch's
// answer (its headers, its held body): that answer covers the missing
// items alone, numbered from 0, and may not pass as the batch's (reviews
// Z82, Z83), so it is replaced, as an answer refused at its headers is,
// by the whole batch asked for again at its end (Complete), counted as an
// internal fault. Passed on, a client that sent 8 items got a 200 with 4
// vectors (review Z103); answered with a local 502 instead, a host that
// refused that reply too left the response held, or let the vectors
// through under the 502's headers (review Z110).
func (f *Flight) Unread() []Action {
	if f.refetchFor == ReasonNone {
		f.refetchFor = ReasonInternal
	}
	f.reset()
	f.internal()
	return f.actions()
}

// Refetches reports that the held answer will be replaced whatever it
// holds (refetchFor): its body need not be read.
func (f *Flight) Refetches() bool { return f.refetchFor != ReasonNone }

// Recorded is the event "a chunk of an event stream passed": the host's
// copy (h) grows until max_entry_bytes, then is dropped (and the stream
// will not be stored).
func (f *Flight) Recorded(h *Held, chunk []byte) {
	if h.dropped {
		return
	}
	if len(h.body)+len(chunk) > f.req.Route.MaxEntryBytes {
		h.body, h.dropped = nil, true
		return
	}
	h.body = append(h.body, chunk...)
}

// KeepLease is the event "this leader is alive": a chunk of its answer
// passed (Stream.record), or a tick found it still leading (its VM is
// alive, and so is the request, waiting for or reading its upstream
// answer). It moves the lease, taken for coalesce.max_wait, to max_wait
// from now once half of that (and half a tick period) is left: one
// shared-data read and write per about max_wait/2 of a long answer, none
// for an answer that ends within it. Without it a stream, or an answer not streamed (a long
// completion commonly takes 30 to 90 s and sends nothing before its end),
// lost its lease under it at max_wait: its followers took it for a dead
// leader, counted a failure and led a second upstream call (or, their
// retries used up, answered 502 leader-failed). A lease found no longer
// this leader's (it expired and another request took the key over) is not
// tried again. A follower still goes upstream itself after max_wait of its
// own wait; a leader that is gone — its VM failed, so it neither ticks nor
// flows — loses its lease at most max_wait after its last extension.
// A leader that holds the cross-proxy lease keeps that too (keepL2Lease):
// the actions are its renewal call, if one is due.
func (f *Flight) KeepLease() []Action {
	if !f.leader {
		return nil
	}
	f.keepLocalLease()
	return f.keepL2Lease()
}

// keepLocalLease is KeepLease for this proxy's lease only: what a chunk of
// a streamed answer does (the tick keeps the cross-proxy lease).
func (f *Flight) keepLocalLease() {
	if !f.leader {
		return
	}
	now := f.c.nowMs()
	wait := f.c.leaseLife(f.req.Route)
	// Renewed once half the life and half a tick period are left: a
	// window of half a life only (one tick period, for a life of two)
	// was missed by ticks that each come a few ms late, and the lease
	// lapsed under a live leader (review Z221).
	if f.leaseEnd-now > wait/2+f.c.cfg.TickPeriod.Milliseconds()/2 {
		return
	}
	ok, err := f.c.leases.Extend(f.req.LeaseFP(), f.vm, f.id, now, now+wait)
	switch {
	case ok:
		f.leaseEnd = now + wait
	case err == nil:
		f.leaseEnd = math.MaxInt64 // lost for good
	}
}

// leaseLife is how long a leader's lease is taken or kept for, in ms:
// max_wait, or two ticks if a tick_period up to max_wait is longer than
// half of it. Else one tick came with more than half left and the next
// only after the lease had lapsed under a live leader (review Z124); a
// lease first taken for max_wait alone lapsed at the first tick when
// tick_period was max_wait (review Z161). (Within the lease horizon: 2 ×
// max_wait.)
func (c *Cache) leaseLife(r *Route) int64 {
	return max(r.Coalesce.MaxWait, 2*c.cfg.TickPeriod).Milliseconds()
}

// Dropped reports whether the recording was given up (no need to read
// further chunks).
func (h *Held) Dropped() bool { return h.dropped }

// RecordingFailed: a chunk of the stream could not be read; the recording
// is incomplete and will not be stored.
func (h *Held) RecordingFailed() { h.body, h.dropped, h.failed = nil, true, true }

// droppedFor is why a dropped recording is not stored: a host fault
// (counted as internal, and no reason to skip coalescing the key), or its
// size.
func (h *Held) droppedFor() Reason {
	if h.failed {
		return ReasonInternal
	}
	return ReasonTooLarge
}

// CompleteRecording is CompleteStream on the host's copy h.
func (f *Flight) CompleteRecording(h *Held, headers [][2]string, computeMs uint32) []Action {
	if h.failed {
		h.body = nil
		return f.refuse(ReasonInternal)
	}
	acts := f.CompleteStream(headers, h.body, h.dropped, computeMs)
	h.body = nil
	return acts
}
