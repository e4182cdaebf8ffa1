package cachecore

// The request side of the protocol: the headers decide whether the body is
// held (and how), the complete body decides between serving, leading,
// following and forwarding.

// ReqStep is what the host does with the request after an event.
type ReqStep uint8

const (
	// ReqPass: let it through (the actions bypassed or answered it).
	ReqPass ReqStep = iota
	// ReqHoldSized: hold the headers; the body (of an announced length
	// within max_request_bytes) is buffered by the host and handed over
	// complete.
	ReqHoldSized
	// ReqHoldCopy: hold the headers; the body has no announced length: the
	// host copies it chunk by chunk (RequestChunk) with back-pressure.
	ReqHoldCopy
)

// Bypass takes the request out of the cache for reason (ReasonNone: the
// reason already set): it passes with a Cache-Status saying why — unless
// the client said only-if-cached: then it gets a 504, never an upstream
// call.
func (f *Flight) Bypass(reason Reason) []Action {
	if reason != ReasonNone {
		f.req.bypass(reason)
	}
	f.reset()
	if f.req.CC.OnlyIfCached {
		code, headers, body := f.Unavailable()
		f.emit(Action{Kind: ActServeLocal, Status: code, Headers: headers, Body: body, CacheStatus: StatusUnavailable})
		return f.actions()
	}
	f.Bypassed()
	f.emit(Action{Kind: ActBypass, Reason: f.req.Reason})
	if f.req.Reason == ReasonInternal {
		f.internal()
	}
	return f.actions()
}

// RequestHeaders is the event "the request headers of a cached route
// arrived" (Begin made the request). holdable: the host can read a body
// while it holds the headers.
func (f *Flight) RequestHeaders(headers [][2]string, endOfStream, holdable bool) (ReqStep, []Action) {
	if f.req.Bypassed() {
		return ReqPass, f.Bypass(ReasonNone)
	}
	if !holdable || endOfStream {
		return ReqPass, f.requestPasses(holdable)
	}
	if v, ok := header(headers, "content-length"); ok {
		n, ok := parseDecimal(v)
		if ok && n > uint64(f.c.cfg.MaxRequestBytes) {
			// Decided now: nothing is held, so the host streams the body to
			// the model instead of buffering it towards its limit (413).
			return ReqPass, f.Bypass(ReasonBodyTooLarge)
		}
		if ok {
			return ReqHoldSized, nil
		}
	}
	return ReqHoldCopy, nil
}

// requestPasses is RequestHeaders for a request that passes at its
// headers though not bypassed: on a host that cannot hold them (then
// bypassed for that), or with no body to key. Out of line: a request
// whose body is held runs none of its code.
//
//go:noinline
func (f *Flight) requestPasses(holdable bool) []Action {
	if req := f.req; !holdable {
		req.bypass(ReasonHoldUnsupported)
	} else { // the headers end the request: no body
		f.c.SetBody(req, nil)
	}
	return f.Bypass(ReasonNone)
}

// Held is a body the host copies chunk by chunk, bounded by the protocol
// (a request body by max_request_bytes, a response or a recorded stream by
// max_entry_bytes).
type Held struct {
	body    []byte
	dropped bool // a recording that outgrew its bound or missed a chunk
	failed  bool // dropped because a chunk could not be read (a host fault)
}

// RequestChunk is the event "a chunk of a body of unknown length
// arrived". It reports false (with the bypass actions) once the body
// outgrows max_request_bytes.
func (f *Flight) RequestChunk(h *Held, chunk []byte) (bool, []Action) {
	if len(h.body)+len(chunk) > f.c.cfg.MaxRequestBytes {
		h.body = nil
		return false, f.Bypass(ReasonBodyTooLarge)
	}
	h.body = append(h.body, chunk...)
	return true, nil
}

// Take hands the copied body over (and forgets it).
func (h *Held) Take() []byte {
	b := h.body
	h.body = nil
	return b
}

// Drop forgets a copied body.
func (h *Held) Drop() { h.body = nil }

// RequestBody is the event "the request body is complete": key it, look it
// up, and serve, answer 504 (only-if-cached), lead, follow or forward.
// copied: the host copied the body chunk by chunk, so the upstream gets
// the host's own buffer and the body cannot be rewritten.
func (f *Flight) RequestBody(body []byte, copied bool) []Action {
	c, req := f.c, f.req
	if copied {
		req.KeepBody()
	}
	c.SetBody(req, body)
	if req.Bypassed() {
		return f.Bypass(ReasonNone)
	}
	f.reset()
	switch c.Lookup(req) {
	case Serve:
		f.semanticExactHit()
		f.serve(StatusNone)
		return f.actions()
	case Unavailable:
		code, headers, body := f.Unavailable()
		f.emit(Action{Kind: ActServeLocal, Status: code, Headers: headers, Body: body, CacheStatus: StatusUnavailable})
		return f.actions()
	}
	if req.Bypassed() { // internal fault during the lookup: fail open
		return f.Bypass(ReasonNone)
	}
	if b := req.batch; b != nil && b.drifted {
		// Cached items disagreed on their dimension (lookupItems): the
		// model's entries go before the batch goes upstream whole.
		return append(f.c.modelDrifted(req), f.missed()...)
	}
	if req.Route.Semantic != nil { // the step's code is not entered on other routes
		if acts := f.semanticStep(); acts != nil {
			return acts
		}
	}
	return f.missed()
}

// missed goes on after a lookup that found nothing to serve: coalesce on
// a miss (Miss), else forward. It inlines: the choice is miss's.
func (f *Flight) missed() []Action {
	req := f.req
	return f.miss(req.Status == StatusMiss && req.Route.Coalesce.Enabled && (req.batch == nil || !req.batch.tooLarge))
}
