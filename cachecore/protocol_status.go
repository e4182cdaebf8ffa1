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
	f.req.Status = StatusMiss
}

// StaleIfError records that the upstream failed and the stale entry
// answers instead.
func (f *Flight) StaleIfError() { f.req.Status = StatusStaleIfError }

// Streaming records that an event stream passes to the client as it comes
// (whether it is stored cannot be in the header: it is gone by then).
func (f *Flight) Streaming() {
	f.cs = CacheStatus{Status: f.req.Status, FwdStatus: f.respStatus}
}

// Refused records that the response passes without being stored.
func (f *Flight) Refused(reason Reason) {
	f.cs = CacheStatus{Status: f.req.Status, FwdStatus: f.respStatus, Reason: reason}
}

// Stored records that the response was stored (res: the store's report).
func (f *Flight) Stored(res StoreResult) {
	f.cs = CacheStatus{Status: f.req.Status, FwdStatus: f.respStatus, Stored: true,
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

// Refetched records the Cache-Status of a response replaced by a refetch
// of the whole batch (reason: why the partial answer was unusable;
// status: the refetch's answer, 0 if none).
func (f *Flight) Refetched(reason Reason, status int) {
	f.cs = CacheStatus{Status: StatusMiss, Reason: reason, FwdStatus: status}
}

// CacheStatusHeader appends the request's Cache-Status value to dst.
func (f *Flight) CacheStatusHeader(dst []byte) []byte {
	return f.cs.AppendHeader(dst, f.c.cfg.CacheName)
}

// TruncatedHeader is the Cache-Status of the held response if it never
// completes (the host leaves it where its own error reply can pick it up).
func (f *Flight) TruncatedHeader() []byte {
	cs := CacheStatus{Status: f.req.Status, FwdStatus: f.respStatus, Reason: ReasonTruncated}
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
