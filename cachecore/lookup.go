package cachecore

import (
	"math"
	"strconv"
	"time"
)

// SimilarityHeader carries a near hit's similarity (semantic routes).
const SimilarityHeader = "x-modelcache-similarity"

// Looking a keyed request up and serving it: Lookup, freshness and early
// refresh (XFetch), HitResponse and Age.

// Decision is what to do with a keyed request.
type Decision uint8

const (
	// Forward: go upstream (miss, revalidation, or stale not acceptable).
	Forward Decision = iota
	// Serve: answer from req.Entry now.
	Serve
	// Unavailable: only-if-cached and no acceptable entry: answer 504.
	Unavailable
)

// Lookup decides between serving from cache and forwarding. It sets
// req.Status to StatusHit, StatusStale or StatusMiss and keeps any entry
// found in req.Entry (a stale one is still useful for stale-if-error).
func (c *Cache) Lookup(req *Request) Decision {
	if req.CC.OnlyIfCached && (req.Bypassed() || req.Status == StatusRevalidate) {
		// The client forbids going upstream and the cache cannot answer.
		req.Status = StatusUnavailable
		return Unavailable
	}
	if req.Bypassed() {
		return Forward
	}
	now := c.nowMs()
	req.lookedAt = now // a store of what this look sends upstream is of an answer asked for since
	if req.batch != nil {
		if d := c.lookupItems(req); d == Serve {
			req.Status = StatusHit
			return Serve
		}
		switch {
		case req.CC.OnlyIfCached:
			req.Status = StatusUnavailable
			return Unavailable
		case req.Status == StatusRevalidate:
		case req.batch.hits > 0:
			req.Status = StatusPartial
		default:
			req.Status = StatusMiss
		}
		return Forward
	}
	if req.Status == StatusRevalidate {
		return Forward
	}
	if req.state.Found && !req.state.empty {
		// The request may lead: the table may read its lease slot ahead
		// (Table.lookupListed; coalesce.go, leaderLookup, says why).
		found, err := c.table.lookupInto(req.FP, req.Key, now, &req.entry, req)
		if err != nil {
			req.bypass(ReasonInternal)
			return Forward
		}
		req.Entry = nil
		if found {
			req.Entry = &req.entry
		}
	}
	if e := req.Entry; e != nil {
		switch c.freshness(req, e, now) {
		case fresh:
			req.Status = StatusHit
			return Serve
		case staleAcceptable:
			req.Status = StatusStale
			return Serve
		}
	}
	req.Status = StatusMiss
	if req.CC.OnlyIfCached {
		req.Status = StatusUnavailable
		return Unavailable
	}
	req.KeepEntry() // a stale entry may answer later (stale-if-error)
	return Forward
}

// KeepEntry makes req.Entry independent of the scratch buffer, for an
// entry needed after the current callback (e.g. by a shadow comparison).
func (req *Request) KeepEntry() {
	if req.Entry != nil {
		req.Entry.Detach()
	}
}

type freshState uint8

const (
	fresh freshState = iota
	staleAcceptable
	notAcceptable
)

// freshness applies the entry's TTL and the client's Cache-Control.
func (c *Cache) freshness(req *Request, e *Entry, now int64) freshState {
	// An entry stored "after" now: within clockSkewMs, another worker's
	// clock read later than this one's, judged as just stored; beyond it,
	// stored before the wall clock stepped back, whose freshness the step
	// would stretch by its length: not served.
	if d := e.StoredAt - now; d > clockSkewMs && d > c.l2Skew() {
		return notAcceptable
	}
	now = max(now, e.StoredAt)
	age := now - e.StoredAt
	remaining := e.FreshUntil - now
	cc := &req.CC
	if clientRefuses(cc, age, remaining) {
		req.refusedFresh = req.refusedFresh || remaining > 0
		return notAcceptable
	}
	if remaining > 0 {
		return fresh
	}
	// Stale: within the client's max-stale when it sent one (a bound the
	// route's stale_while_revalidate does not widen), else within that.
	staleness := now - e.FreshUntil
	if cc.HasMaxStale {
		// Within the route's stale windows as they are now, not as the
		// entry's StaleUntil says: the configuration that stored it (a
		// reload since, another proxy's through L2) may have had wider
		// ones (review Z98).
		if (cc.MaxStaleAny || staleness <= cc.MaxStale.Milliseconds()) && staleness < c.staleWindow(req).Milliseconds() {
			return staleAcceptable
		}
		return notAcceptable
	}
	if req.Route.StaleWhileReval > 0 && staleness < req.Route.StaleWhileReval.Milliseconds() {
		return staleAcceptable
	}
	return notAcceptable
}

// l2Skew is how far ahead of this proxy's clock another proxy's may run,
// in ms (l2.ttl_slack; 0 without L2): an entry it wrote, copied from L2,
// counts as just stored within it (README, "Staleness you can see").
//
//go:noinline
func (c *Cache) l2Skew() int64 {
	if c.cfg.L2 == nil {
		return 0
	}
	return c.cfg.L2.TTLSlack.Milliseconds()
}

// clientRefuses reports whether the client's max-age or min-fresh refuses
// an answer of this age (ms) with this much freshness left (ms; negative
// when stale): it wants a fresher one, whatever else would allow this.
func clientRefuses(cc *RequestCC, age, remaining int64) bool {
	return cc.HasMaxAge && age > cc.MaxAge.Milliseconds() ||
		cc.HasMinFresh && remaining < cc.MinFresh.Milliseconds()
}

// EarlyRefresh reports whether this fresh hit should trigger a background
// refresh (XFetch, Vattani et al., VLDB 2015): refresh when
// now − δ·β·ln(U) ≥ expiry, with δ the recompute time stored in the entry
// and U uniform in (0,1]. Hot keys are refreshed shortly before they
// expire, roughly once per TTL, and cold keys almost never.
func (c *Cache) EarlyRefresh(req *Request) bool {
	e := req.Entry
	if e == nil || req.Status != StatusHit || !req.Route.EarlyRefresh.Enabled {
		return false
	}
	u := float64(c.rand()>>11+1) / float64(1<<53) // (0, 1]
	gap := -float64(e.ComputeMs) * req.Route.EarlyRefresh.Beta * math.Log(u)
	return float64(c.nowMs())+gap >= float64(e.FreshUntil)
}

// HitResponse renders the response for a request served from req.Entry:
// the stored status, headers and body plus Age and Cache-Status.
func (c *Cache) HitResponse(req *Request) (status int, headers [][2]string, body []byte) {
	if req.batch != nil {
		return c.embeddingHit(req)
	}
	e := req.Entry
	now := max(c.nowMs(), e.StoredAt) // as freshness judged it
	// The headers and their text are the request's own buffers (reused
	// with it, see recycle.go): the host sends them at once.
	headers = append(req.resp[:0], e.Headers...)
	age := (now - e.StoredAt) / 1000
	buf := req.respBuf[:0]
	if need := len(c.cfg.CacheName) + 64; cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	buf = appendInt(buf, age)
	ageLen := len(buf)
	// FwdStatus: a stale_if_error answer's model failure (0 otherwise).
	cs := CacheStatus{Status: req.Status, TTL: floorDiv(e.FreshUntil-now, 1000), HasTTL: true, L2: req.l2.hit, FwdStatus: req.sieStatus}
	buf = cs.AppendHeader(buf, c.cfg.CacheName)
	semantic, sim := req.SemanticHit()
	if semantic {
		buf = append(buf, "; detail=semantic"...)
	}
	// Both strings alias buf: it is not appended to after this.
	headers = append(headers, [2]string{"age", bytesString(buf[:ageLen])})
	if semantic {
		headers = append(headers, [2]string{SimilarityHeader, strconv.FormatFloat(math.Floor(sim*1000)/1000, 'f', 3, 64)})
	}
	headers = append(headers, [2]string{"cache-status", bytesString(buf[ageLen:])})
	req.resp, req.respBuf = headers, buf
	return int(e.Status), headers, e.Body
}

// floorDiv rounds towards minus infinity, so 0.5 s of staleness is ttl=-1.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// Age returns how old req.Entry is (for a batch: its oldest item), never
// less than 0: after the wall clock stepped back, or for an L2 entry from
// a proxy whose clock runs ahead, an entry looks stored in the future; its
// Age header says 0 (HitResponse), and so do age_at_serve_ms and the SLO.
func (c *Cache) Age(req *Request) time.Duration {
	if req.batch != nil && req.batch.hits > 0 {
		return time.Duration(max(c.nowMs()-req.batch.oldest, 0)) * time.Millisecond
	}
	if req.Entry == nil {
		return 0
	}
	return time.Duration(max(c.nowMs()-req.Entry.StoredAt, 0)) * time.Millisecond
}
