package wasmhost

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// Request is what a client sends through the plugin in an exchange.
type Request struct {
	Headers    [][2]string // must include :method, :path, :authority for a realistic request
	Body       []byte      // sent as one chunk, unless BodyChunks is set
	BodyChunks [][]byte
	Trailers   [][2]string
	// Properties answer proxy_get_property for this stream only (keys as
	// in Config.Properties).
	Properties map[string][]byte
	// Streaming sends only the headers (end_of_stream=false) at start; the
	// test then sends the body with Exchange.SendBody.
	Streaming bool
}

// UpstreamRequest is what the router sent to the upstream cluster. Answer
// it with Respond or RespondChunks, or stream it with RespondHeaders and
// SendChunk, and Reset it at any point before its end — at once (inside
// Config.Upstream) or later (Host.PendingUpstream) to simulate a slow or
// failing model server. Each frame is posted to the stream's worker as its
// own dispatcher event.
type UpstreamRequest struct {
	Worker   int
	StreamID uint32
	Headers  [][2]string // as the plugin left them
	Body     []byte
	Trailers [][2]string

	s         *stream
	mu        sync.Mutex
	started   bool // response headers sent
	ended     bool // end of stream or reset sent
	cancelled atomic.Bool
}

// Cancelled reports whether the router gave up on this request (the client
// went away or the plugin answered locally); answers are then ignored.
func (u *UpstreamRequest) Cancelled() bool { return u.cancelled.Load() }

// Respond sends a complete response (headers need not include :status).
func (u *UpstreamRequest) Respond(status int, headers [][2]string, body []byte) {
	var chunks [][]byte
	if len(body) > 0 {
		chunks = [][]byte{body}
	}
	u.RespondChunks(status, headers, chunks)
}

// RespondChunks sends the response headers and then each chunk, the last
// one ending the stream.
func (u *UpstreamRequest) RespondChunks(status int, headers [][2]string, chunks [][]byte) {
	u.RespondHeaders(status, headers, len(chunks) == 0)
	for i, ch := range chunks {
		u.SendChunk(ch, i == len(chunks)-1)
	}
}

// RespondHeaders sends the response headers; endOfStream for a bodyless
// response.
func (u *UpstreamRequest) RespondHeaders(status int, headers [][2]string, endOfStream bool) {
	if !u.step(func() bool { ok := !u.started && !u.ended; u.started, u.ended = true, endOfStream; return ok }) {
		return
	}
	s := u.s
	hm := newHeaderMap(append([][2]string{{":status", strconv.Itoa(status)}}, headers...))
	u.post(func() {
		s.setDetails("via_upstream")
		s.onHeaders(false, hm, endOfStream)
	})
}

// SendChunk sends one response body chunk after RespondHeaders.
func (u *UpstreamRequest) SendChunk(chunk []byte, endOfStream bool) {
	if !u.step(func() bool { ok := u.started && !u.ended; u.ended = endOfStream; return ok }) {
		return
	}
	s, ch := u.s, slices.Clone(chunk)
	u.post(func() { s.onData(false, ch, endOfStream) })
}

// Reset simulates the upstream resetting the stream. Before response
// headers, Envoy's router answers with a local 503 that runs through the
// plugin's response callbacks, with response code details
// "upstream_reset_before_response_started{remote_reset}". After them, while
// a filter still holds the response headers, the router's local 503 goes
// straight to the client, past every filter (FilterManager
// sendDirectLocalReply), with details
// "upstream_reset_after_response_started{remote_reset}"; once the headers
// have left, the client's stream is reset.
func (u *UpstreamRequest) Reset() {
	if !u.step(func() bool { ok := !u.ended; u.ended = true; return ok }) {
		return
	}
	s := u.s
	u.post(func() {
		if s.res.headers == nil {
			s.upstream = nil
			s.sendLocalReply(503,
				[]byte("upstream connect error or disconnect/reset before headers. reset reason: remote reset"),
				nil, "upstream_reset_before_response_started{remote_reset}")
			return
		}
		if !s.res.fwdHeadSent {
			s.upstream = nil
			s.sendLocalReply(503,
				[]byte("upstream connect error or disconnect/reset before headers. reset reason: remote reset"),
				nil, "upstream_reset_after_response_started{remote_reset}")
			return
		}
		s.setDetails("upstream_reset_after_response_started{remote_reset}")
		s.resetStream()
	})
}

// step applies a state change under the lock and reports whether the frame
// may be sent.
func (u *UpstreamRequest) step(f func() bool) bool {
	u.mu.Lock()
	ok := f()
	ended := u.ended
	u.mu.Unlock()
	if ended {
		u.s.v.h.forgetUpstream(u)
	}
	return ok && !u.Cancelled()
}

func (u *UpstreamRequest) post(f func()) {
	s := u.s
	h := s.v.h
	h.post(s.v.thread, func(v *vm) {
		if s.upstream != u || s.completed {
			return
		}
		f()
	})
	if !h.cfg.ManualDrain {
		h.Drain()
	}
}

// routerHeaders: the router opens the upstream request when the request
// headers pass the plugin.
func (s *stream) routerHeaders() {
	if s.ex == nil {
		return
	}
	s.upstream = &UpstreamRequest{Worker: s.v.index, StreamID: s.c.id, s: s}
	s.ex.upstreamContacted = true
}

// routerRequestComplete hands the finished request to the fake upstream.
func (s *stream) routerRequestComplete() {
	u := s.upstream
	if s.ex == nil || u == nil {
		return
	}
	u.Headers = s.req.fwdHeaders
	u.Body = slices.Clone(s.req.fwdBody)
	u.Trailers = s.req.fwdTrailers
	h := s.v.h
	h.pendMu.Lock()
	h.upPend = append(h.upPend, u)
	h.pendMu.Unlock()
	if up := h.cfg.Upstream; up != nil {
		s.v.outbox = append(s.v.outbox, func() { up(u) })
	}
}

func (s *stream) cancelUpstream() {
	if u := s.upstream; u != nil {
		u.cancelled.Store(true)
		s.v.h.forgetUpstream(u)
		s.upstream = nil
	}
}

func (h *Host) forgetUpstream(u *UpstreamRequest) {
	h.pendMu.Lock()
	h.upPend = slices.DeleteFunc(h.upPend, func(x *UpstreamRequest) bool { return x == u })
	h.pendMu.Unlock()
}

// PendingUpstream lists upstream requests (complete on the request side)
// whose response has not ended yet, oldest first.
func (h *Host) PendingUpstream() []*UpstreamRequest {
	h.pendMu.Lock()
	defer h.pendMu.Unlock()
	return slices.Clone(h.upPend)
}

// Exchange is one client request driven through the plugin and the fake
// router, from headers to the response the client sees. It finishes when
// the response ends or the stream is reset; then the plugin gets
// proxy_on_log, proxy_on_done and proxy_on_delete.
type Exchange struct {
	h      *Host
	worker int
	id     uint32
	s      *stream
	req    Request

	upstreamContacted bool // guarded by the VM mutex
	finished          bool
}

// StartExchange creates a stream context on a worker and sends the request
// headers, body and trailers through the plugin (all at once, as if read
// in one go, unless req.Streaming).
func (h *Host) StartExchange(worker int, req Request) *Exchange {
	ex := &Exchange{h: h, worker: worker, req: req}
	h.do(worker, func(v *vm) {
		s := v.newStream()
		s.ex, ex.s, ex.id = ex, s, s.c.id
		chunks := req.BodyChunks
		if len(chunks) == 0 && len(req.Body) > 0 {
			chunks = [][]byte{req.Body}
		}
		if req.Streaming {
			s.onHeaders(true, newHeaderMap(req.Headers), false)
			return
		}
		s.onHeaders(true, newHeaderMap(req.Headers), len(chunks) == 0 && len(req.Trailers) == 0)
		for i, ch := range chunks {
			s.onData(true, slices.Clone(ch), i == len(chunks)-1 && len(req.Trailers) == 0)
		}
		if len(req.Trailers) > 0 {
			s.onTrailers(true, newHeaderMap(req.Trailers))
		}
	})
	return ex
}

// Exchange runs a request to the end: StartExchange, Drain, and the
// client's response. It fails if the exchange is still waiting (a paused
// stream nobody resumes, an upstream nobody answers).
func (h *Host) Exchange(worker int, req Request) (*ClientResponse, error) {
	ex := h.StartExchange(worker, req)
	h.Drain()
	if !ex.Done() {
		return ex.Response(), fmt.Errorf("wasmhost: exchange on worker %d not finished: %s", worker, ex.State())
	}
	return ex.Response(), nil
}

// Property is a value the plugin stored with proxy_set_property on this
// stream (Envoy's filter state "wasm.<path>"; path segments joined with NUL).
func (ex *Exchange) Property(path string) ([]byte, bool) {
	var v []byte
	var ok bool
	ex.locked(func(s *stream) { v, ok = s.props[path] })
	return slices.Clone(v), ok
}

// ContextID is the stream's context id on its worker.
func (ex *Exchange) ContextID() uint32 { return ex.id }

// Worker is the worker the exchange runs on.
func (ex *Exchange) Worker() int { return ex.worker }

func (ex *Exchange) locked(f func(s *stream)) {
	v := ex.s.v
	v.mu.Lock()
	defer v.mu.Unlock()
	f(ex.s)
}

// SendBody sends more request body (Request.Streaming).
func (ex *Exchange) SendBody(chunk []byte, endOfStream bool) {
	ex.h.do(ex.worker, func(v *vm) { ex.s.onData(true, slices.Clone(chunk), endOfStream) })
}

// SendTrailers ends the request with trailers (Request.Streaming).
func (ex *Exchange) SendTrailers(trailers [][2]string) {
	ex.h.do(ex.worker, func(v *vm) { ex.s.onTrailers(true, newHeaderMap(trailers)) })
}

// Abort is the client going away: the upstream request is cancelled and
// the plugin sees proxy_on_log, proxy_on_done, proxy_on_delete, with
// response code details "downstream_remote_disconnect" (as Envoy 1.40
// reports an HTTP/1.1 client closing its connection mid-response).
func (ex *Exchange) Abort() {
	ex.h.do(ex.worker, func(v *vm) {
		if !ex.s.completed {
			ex.s.setDetails("downstream_remote_disconnect")
			ex.s.resetStream()
		}
	})
}

// Done reports whether the exchange finished (response complete or reset).
func (ex *Exchange) Done() bool {
	done := false
	ex.locked(func(*stream) { done = ex.finished })
	return done
}

// UpstreamContacted reports whether the request headers reached the router
// (and so the upstream cluster), even if the plugin later answered locally.
func (ex *Exchange) UpstreamContacted() bool {
	c := false
	ex.locked(func(*stream) { c = ex.upstreamContacted })
	return c
}

// OpenUpstream is the router's upstream request of the exchange while it
// is open, even before the request is complete (PendingUpstream lists it
// only then): for a model that answers a request's headers before its
// body. Nil if none is open.
func (ex *Exchange) OpenUpstream() *UpstreamRequest {
	var u *UpstreamRequest
	ex.locked(func(s *stream) { u = s.upstream })
	return u
}

// Response is what the client has received so far.
func (ex *Exchange) Response() *ClientResponse {
	var r *ClientResponse
	ex.locked(func(s *stream) {
		r = s.client.clone()
		r.Details = s.details
	})
	return r
}

// LocalResponse is the plugin's proxy_send_local_response, if any.
func (ex *Exchange) LocalResponse() *LocalResponse {
	var lr *LocalResponse
	ex.locked(func(s *stream) { lr = s.local })
	return lr
}

// State describes where the exchange is waiting, for failure messages.
func (ex *Exchange) State() string {
	var st string
	ex.locked(func(s *stream) {
		switch {
		case ex.finished:
			st = "finished"
		case !s.req.headersContinued:
			st = "request headers held by the plugin"
		case !s.req.ended:
			st = "request body held by the plugin or not fully sent"
		case s.upstream != nil && s.res.headers == nil:
			st = "waiting for the upstream response (answer PendingUpstream or set Config.Upstream)"
		case !s.res.fwdHeadSent:
			st = "response headers held by the plugin"
		default:
			st = "response body held by the plugin or not fully received"
		}
	})
	return st
}

func (ex *Exchange) finish() { ex.finished = true }

// SendTrailers ends the answer with trailers, after RespondHeaders and
// SendChunk(…, false): end of stream comes with them.
func (u *UpstreamRequest) SendTrailers(trailers [][2]string) {
	if !u.step(func() bool { ok := u.started && !u.ended; u.ended = true; return ok }) {
		return
	}
	s, hm := u.s, newHeaderMap(trailers)
	u.post(func() { s.onTrailers(false, hm) })
}
