package cachecore

// The request status and the Cache-Status value of a request are decided
// here, on its Flight, at each step the host reports; the host only writes
// the header (CacheStatusHeader) where the step says.

// Bypassed records that the request passes through untouched; its
// Cache-Status says bypass and why.
func (f *Flight) Bypassed() {
	f.state = flightDone
	f.cs = CacheStatus{Status: StatusBypass, Reason: f.req.Reason}
}

// FailOpen records that a local answer could not be sent: the request goes
// upstream as a miss instead.
func (f *Flight) FailOpen() {
	f.state = flightDone
	f.req.Status = missOrPartial(f.req)
}

// StaleIfError records that the upstream failed and the stale entry
// answers instead.
func (f *Flight) StaleIfError() {
	f.req.Status = StatusStaleIfError
	f.req.sieStatus = f.fwdStatus
}

// Streaming records that an event stream passes to the client as it comes
// (whether it is stored cannot be in the header: it is gone by then).
func (f *Flight) Streaming() {
	f.cs = CacheStatus{Status: f.req.Status, Request: f.req.refusedFresh, FwdStatus: f.fwdStatus}
}

// Refused records that the response passes without being stored.
func (f *Flight) Refused(reason Reason) {
	f.cs = CacheStatus{Status: f.req.Status, Request: f.req.refusedFresh, FwdStatus: f.fwdStatus, Reason: reason}
}

// Stored records that the response was stored (res: the store's report).
func (f *Flight) Stored(res StoreResult) {
	f.cs = CacheStatus{Status: f.req.Status, Request: f.req.refusedFresh, FwdStatus: f.fwdStatus, Stored: true,
		TTL: floorDiv(res.FreshUntil-f.c.nowMs(), 1000), HasTTL: true}
}

// Interrupted records a local reply of the host (a timeout, a buffer
// limit, a reset; origin says which) reaching a request still mid-way:
// before it went upstream (early) it is a bypass saying why the host
// answered; after, a truncated response. It returns the refusal reason.
func (f *Flight) Interrupted(origin Origin, early bool) Reason {
	if !early {
		f.Refused(ReasonTruncated)
		return ReasonTruncated
	}
	reason := ReasonLocalReply
	switch origin {
	case OriginUpstreamReset:
		reason = ReasonUpstreamReset
	case OriginUpstreamTimeout:
		reason = ReasonUpstreamTimeout
	}
	f.state = flightDone
	f.req.Status = StatusBypass
	f.cs = CacheStatus{Status: StatusBypass, Reason: reason}
	return reason
}

// EarlyAnswer records that the model answered a request decided late
// before its body was decided (its headers went upstream first, its body
// is held): the request is a miss whose answer passes unstored, with the
// model's status.
func (f *Flight) EarlyAnswer(status int) Reason {
	f.state = flightDone
	f.req.Status = StatusMiss
	f.respStatus, f.fwdStatus = status, status
	f.cs = CacheStatus{Status: StatusMiss, FwdStatus: status, Reason: ReasonEarlyAnswer}
	return ReasonEarlyAnswer
}

// EarlyStale is EarlyAnswer (origin: the model's) or Interrupted (an
// upstream reset or timeout Envoy answers) for a failure (status) that
// ends a late request before its body was decided, where the request's
// lookup found an entry within stale_if_error: the entry answers instead
// (Stream.earlyStale), and the lead ends failed. A reset met before the
// decision was a bypass that passed Envoy's 503, where one met after it
// was answered with the entry (review Z119). nil, with nothing done, when
// that is not so.
func (f *Flight) EarlyStale(origin Origin, status int) []Action {
	c, req := f.c, f.req
	reason := ReasonEarlyAnswer
	switch origin {
	case OriginUpstream:
	case OriginUpstreamReset:
		reason = ReasonUpstreamReset
	case OriginUpstreamTimeout:
		reason = ReasonUpstreamTimeout
	default:
		return nil
	}
	if OutcomeOf(reason, status) != OutcomeFailed || !c.StaleIfError(req) {
		return nil
	}
	if origin == OriginUpstream {
		f.EarlyAnswer(status)
	} else {
		f.Interrupted(origin, true)
	}
	f.reset()
	f.emit(Action{Kind: ActRefused, Route: req.Route, Reason: reason, Status: status})
	f.finishLead(OutcomeFailed, status)
	f.Refused(reason)
	f.StaleIfError()
	f.emit(Action{Kind: ActServeEntry})
	return f.actions()
}

// Refetched records that a response is replaced by a refetch of the
// whole batch (reason: why the partial answer was unusable; status: the
// refetch's answer, 0 if none): the request is a miss, in its
// Cache-Status and its count.
func (f *Flight) Refetched(reason Reason, status int) {
	f.req.Status = StatusMiss
	f.cs = CacheStatus{Status: StatusMiss, Reason: reason, FwdStatus: status}
	if reason == ReasonStatus {
		f.cs.Refused = f.respStatus // the first answer's, not the refetch's
	}
}

// CacheStatusHeader appends the request's Cache-Status value to dst.
func (f *Flight) CacheStatusHeader(dst []byte) []byte {
	return f.cs.AppendHeader(dst, f.c.cfg.CacheName)
}

// CacheStatusValue is the request's Cache-Status value as a string that
// stays valid (Cache.statusValueOf).
func (f *Flight) CacheStatusValue() string { return f.c.statusValueOf(&f.cs) }

// TruncatedHeader is the Cache-Status of the held response if it never
// completes (the host leaves it where its own error reply can pick it up).
func (f *Flight) TruncatedHeader() []byte {
	cs := CacheStatus{Status: f.req.Status, Request: f.req.refusedFresh, FwdStatus: f.fwdStatus, Reason: ReasonTruncated}
	return cs.AppendHeader(nil, f.c.cfg.CacheName)
}

// Unavailable is the answer to an only-if-cached request the cache cannot
// serve: 504, never an upstream call.
func (f *Flight) Unavailable() (int, [][2]string, []byte) {
	f.state = flightDone
	f.req.Status = StatusUnavailable
	cs := CacheStatus{Status: StatusUnavailable}
	return 504, [][2]string{{"content-type", "application/json"}, {"cache-status", string(cs.AppendHeader(nil, f.c.cfg.CacheName))}},
		[]byte(`{"error":{"message":"not cached (only-if-cached)","type":"cache_miss"}}`)
}

// maxStatusStrings bounds the Cache-Status values a VM keeps.
const maxStatusStrings = 256

// statusMemoSize is how many Cache-Status values a VM keeps beside the
// status each renders (statusValueOf): a few per status.
const statusMemoSize = 8

type statusMemo struct {
	cs CacheStatus
	v  string
}

// statusValueOf is *cs rendered, as statusString keeps it. The last
// values rendered are kept with the status they render, in a small table:
// a status sent again — every bypass for one reason, every answer not
// stored for one cause — is then neither rendered nor looked up by its
// text, so the request runs neither the renderer's code nor the map's.
// The status is passed by its address, one word, not copied field by
// field into the call.
func (c *Cache) statusValueOf(cs *CacheStatus) string {
	m := &c.statusMemo[(uint(cs.Status)*5+uint(cs.Reason))%statusMemoSize]
	if m.v != "" && m.cs.same(cs) {
		return m.v
	}
	return c.renderStatus(m, cs)
}

// renderStatus is statusValueOf for a status not in its table: rendered,
// and kept in m. Out of line: a status sent again runs none of its code
// (its buffer's frame, the renderer's call, the map's).
//
//go:noinline
func (c *Cache) renderStatus(m *statusMemo, cs *CacheStatus) string {
	var buf [160]byte // on the stack: statusString copies what it keeps
	v := c.statusString(cs.AppendHeader(buf[:0], c.cfg.CacheName))
	m.cs, m.v = *cs, v
	return v
}

// same reports whether cs and o are the same Cache-Status, field by
// field: == on the struct calls a comparison function of its own, code a
// request runs for this one test (TestCacheStatusSame keeps the fields
// here in step with the struct's).
func (cs *CacheStatus) same(o *CacheStatus) bool {
	return cs.Status == o.Status && cs.Reason == o.Reason && cs.FwdStatus == o.FwdStatus &&
		cs.Stored == o.Stored && cs.TTL == o.TTL && cs.HasTTL == o.HasTTL && cs.L2 == o.L2 && cs.Refused == o.Refused && cs.Request == o.Request
}

// statusString is the Cache-Status value b as a string, without
// allocating when it was sent before: the values repeat (a status, a
// forward reason, an upstream status, a TTL, a detail), so a VM keeps the
// first maxStatusStrings of them.
func (c *Cache) statusString(b []byte) string {
	if v, ok := c.statuses[string(b)]; ok {
		return v
	}
	v := string(b)
	if len(c.statuses) < maxStatusStrings {
		if c.statuses == nil {
			c.statuses = make(map[string]string, 16)
		}
		c.statuses[v] = v
	}
	return v
}
