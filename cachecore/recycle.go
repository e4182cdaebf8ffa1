package cachecore

import "unsafe"

// Reusing a request's memory. A hit in steady state allocates nothing: the
// Request, its canonical body and key, the decoded entry's header list and
// the rendered hit headers are reused from a request that has ended. Only
// a request nothing else refers to is reused: no call was started for it
// (the host's part of the condition), no refresh or shadow comparison
// holds it, and it had no semantic turn or L2 state (those live on in
// indexes, staged writes and calls). A spare request is zeroed but for its
// buffers when it is taken, so it keeps nothing else alive; an embeddings
// request's per-item batch is kept apart for the next batch's arenas
// (embeddings.go keepBatch). Any other request is left to the garbage
// collector, since something may still read it.

// maxSpareRequests bounds the requests kept for reuse per VM; a request's
// buffers larger than maxSpareBuffer bytes, and its header lists longer
// than maxSparePairs pairs, are not kept.
const (
	maxSpareRequests = 64
	maxSpareBuffer   = 32 << 10
	maxSparePairs    = 64
)

// oversize reports whether s holds more than maxSpareBuffer bytes, too
// many to keep for the next request: one large request must not size a
// VM's scratch buffers for good, outside the per-VM bound README states.
// (A predicate, not a filter: a buffer is assigned only when let go, as a
// pointer store costs a write-barrier check on every request.)
func oversize[T any](s []T) bool {
	var zero T
	return uintptr(cap(s))*unsafe.Sizeof(zero) > maxSpareBuffer
}

// newRequest returns a zeroed Request, reusing a spare one's buffers.
func (c *Cache) newRequest() *Request {
	n := len(c.spare)
	if n == 0 {
		return &Request{}
	}
	req := c.spare[n-1]
	c.spare[n-1] = nil
	c.spare = c.spare[:n-1]
	return req // zeroed by Recycle
}

// clear zeroes req but for its own buffers, emptied: a spare request
// keeps nothing else alive (its batch, body, entry, headers' strings).
func (req *Request) clear() {
	// The header lists' strings point into buffers that may not be kept
	// (an embeddings batch's vectors, a read buffer over the bound).
	// One copy of clearPairs' loop for both lists, through their
	// addresses.
	for _, l := range [...]*[][2]string{&req.entry.Headers, &req.resp} {
		clearPairs((*l)[:cap(*l)])
	}
	headers := req.entry.Headers[:0]
	req.Route, req.Status, req.Entry = nil, StatusNone, nil
	req.requestState = requestState{}
	req.entry.Headers = headers
	// Emptied where they are: a slice resliced into itself stores only
	// its length (no pointer, no write barrier).
	req.keyHeaders = req.keyHeaders[:0] // at most maxKeyHeaders × (1 + maxKeyHeaderLines × (2 + maxKeyHeaderValue)) bytes
	req.canonical, req.Key = req.canonical[:0], req.Key[:0]
	req.resp, req.respBuf = req.resp[:0], req.respBuf[:0]
}

// oversize reports whether any of req's buffers is over the bounds a
// spare keeps (dropOversize): it compares only, and inlines.
func (req *Request) oversize() bool {
	return cap(req.canonical) > maxSpareBuffer || cap(req.Key) > maxSpareBuffer || cap(req.entry.Headers) > maxSparePairs ||
		cap(req.resp) > maxSparePairs || cap(req.respBuf) > maxSpareBuffer
}

// dropOversize lets go of req's buffers over the bounds a spare keeps
// (Recycle). Out of line: the rule, buffers within them, runs none of its
// stores, each a write-barrier check and its call.
//
//go:noinline
func (req *Request) dropOversize() {
	if cap(req.canonical) > maxSpareBuffer || cap(req.Key) > maxSpareBuffer {
		req.canonical, req.Key = nil, nil
	}
	// Header lists are sized by what an entry or an answer held: one with
	// many headers is not kept for every later request.
	if cap(req.entry.Headers) > maxSparePairs || cap(req.resp) > maxSparePairs || cap(req.respBuf) > maxSpareBuffer {
		req.entry.Headers, req.resp, req.respBuf = nil, nil, nil
	}
}

// clearPairs zeroes s. A loop of its own: clear() (and the range loop
// the compiler turns into it) calls the runtime's pointer-clearing and
// bulk write-barrier code, three functions more on every recycled
// request's path for lists of a few pairs.
func clearPairs(s [][2]string) {
	for i := 0; i < len(s); i++ {
		s[i] = [2]string{}
	}
}

// Recycle offers the stream's request for reuse once the host is done with
// the stream for good (its context deleted, none of its calls pending:
// the host's part of the condition). It reports whether the request was
// taken, in which case everything the request pointed into — its body and
// its headers, read by the host — may be reused too.
func (s *Stream) Recycle() bool {
	req := s.fl.req
	if req == nil || s.lent || req.Route.Semantic != nil || s.c.cfg.L2 != nil ||
		len(s.c.spare) >= maxSpareRequests {
		return false
	}
	s.fl.req = nil
	if req.oversize() {
		req.dropOversize()
	}
	if req.batch != nil {
		s.c.keepBatch(req.batch) // nothing reads it: its request is reused
	}
	req.clear()
	// Below maxSpareRequests, the list has room (NewCache): no append,
	// whose growth code would sit among the lines every request runs.
	n := len(s.c.spare)
	s.c.spare = s.c.spare[:n+1]
	s.c.spare[n] = req
	return true
}
