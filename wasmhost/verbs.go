package wasmhost

import (
	"fmt"
	"slices"
)

// The low-level verbs drive one stream callback at a time, in the style of
// proxy-wasm-go-sdk's proxytest, but through the same filter-manager model
// as exchanges: a Pause really holds the headers, a local reply really runs
// the response callbacks, continue_stream really forwards what was held.
// Streams driven this way have no router: forwarded request data is only
// recorded, and the test plays the upstream with CallOnResponse*.

func (v *vm) newStream() *stream {
	c := v.newContext(v.root.id)
	s := &stream{v: v, c: c}
	c.s = s
	return s
}

func (v *vm) stream(id uint32) *stream {
	s := v.streams[id]
	if s == nil {
		panic(fmt.Sprintf("wasmhost: %s has no HTTP context %d", v.name, id))
	}
	return s
}

// InitializeHttpContext creates a stream context on a worker and calls
// proxy_on_context_create(id, root). Ids are per VM: the root context is 1
// on every VM, so the first stream is 2 on every worker.
func (h *Host) InitializeHttpContext(worker int) uint32 {
	var id uint32
	h.do(worker, func(v *vm) {
		s := v.newStream()
		v.streams[s.c.id] = s
		id = s.c.id
		s.onCreate()
	})
	return id
}

func (h *Host) onStream(worker int, id uint32, f func(s *stream)) {
	h.do(worker, func(v *vm) { f(v.stream(id)) })
}

// CallOnRequestHeaders delivers request headers (proxy_on_request_headers)
// and returns what the plugin returned (Pause if it sent a local reply).
func (h *Host) CallOnRequestHeaders(worker int, id uint32, headers [][2]string, endOfStream bool) Action {
	var a Action
	h.onStream(worker, id, func(s *stream) { a = s.onHeaders(true, newHeaderMap(headers), endOfStream) })
	return a
}

// CallOnRequestBody delivers one request body chunk. While the plugin
// buffers (Pause), the next call passes the whole buffered body.
func (h *Host) CallOnRequestBody(worker int, id uint32, chunk []byte, endOfStream bool) Action {
	var a Action
	h.onStream(worker, id, func(s *stream) { a = s.onData(true, slices.Clone(chunk), endOfStream) })
	return a
}

// CallOnRequestTrailers delivers request trailers.
func (h *Host) CallOnRequestTrailers(worker int, id uint32, trailers [][2]string) Action {
	var a Action
	h.onStream(worker, id, func(s *stream) { a = s.onTrailers(true, newHeaderMap(trailers)) })
	return a
}

// CallOnResponseHeaders delivers upstream response headers (include
// :status). It is ignored, returning Pause, once a response has started
// (for example a local reply already went through the plugin).
func (h *Host) CallOnResponseHeaders(worker int, id uint32, headers [][2]string, endOfStream bool) Action {
	a := ActionPause
	h.onStream(worker, id, func(s *stream) {
		if s.res.headers != nil {
			h.log(s.v.name, LogWarn, "wasmhost: CallOnResponseHeaders ignored: the stream already has a response")
			return
		}
		s.setDetails("via_upstream")
		a = s.onHeaders(false, newHeaderMap(headers), endOfStream)
	})
	return a
}

// CallOnResponseBody delivers one response body chunk.
func (h *Host) CallOnResponseBody(worker int, id uint32, chunk []byte, endOfStream bool) Action {
	var a Action
	h.onStream(worker, id, func(s *stream) { a = s.onData(false, slices.Clone(chunk), endOfStream) })
	return a
}

// CallOnResponseTrailers delivers response trailers.
func (h *Host) CallOnResponseTrailers(worker int, id uint32, trailers [][2]string) Action {
	var a Action
	h.onStream(worker, id, func(s *stream) { a = s.onTrailers(false, newHeaderMap(trailers)) })
	return a
}

// CompleteHttpContext ends the stream in Envoy's order: proxy_on_log,
// proxy_on_done, proxy_on_delete.
func (h *Host) CompleteHttpContext(worker int, id uint32) {
	h.onStream(worker, id, func(s *stream) { s.complete() })
}

// SetStreamProperty makes proxy_get_property(path) answer value on this
// stream (path segments joined with NUL, see Path).
func (h *Host) SetStreamProperty(worker int, id uint32, path string, value []byte) {
	h.onStream(worker, id, func(s *stream) {
		if s.props == nil {
			s.props = map[string][]byte{}
		}
		s.props[path] = slices.Clone(value)
	})
}

func (h *Host) inspect(worker int, id uint32, f func(s *stream)) {
	v := h.vm(worker)
	v.mu.Lock()
	defer v.mu.Unlock()
	f(v.stream(id))
}

// GetCurrentRequestHeaders is the stream's request header map as it is now
// (including the plugin's edits).
func (h *Host) GetCurrentRequestHeaders(worker int, id uint32) [][2]string {
	var out [][2]string
	h.inspect(worker, id, func(s *stream) { out = s.req.headers.clone() })
	return out
}

// GetCurrentResponseHeaders is the stream's response header map as it is now.
func (h *Host) GetCurrentResponseHeaders(worker int, id uint32) [][2]string {
	var out [][2]string
	h.inspect(worker, id, func(s *stream) { out = s.res.headers.clone() })
	return out
}

// GetForwardedRequestHeaders is what went upstream (nil while held).
func (h *Host) GetForwardedRequestHeaders(worker int, id uint32) [][2]string {
	var out [][2]string
	h.inspect(worker, id, func(s *stream) { out = slices.Clone(s.req.fwdHeaders) })
	return out
}

// GetForwardedRequestBody is the request body that went upstream.
func (h *Host) GetForwardedRequestBody(worker int, id uint32) []byte {
	var out []byte
	h.inspect(worker, id, func(s *stream) { out = slices.Clone(s.req.fwdBody) })
	return out
}

// GetForwardedResponseBody is the response body that went to the client.
func (h *Host) GetForwardedResponseBody(worker int, id uint32) []byte {
	var out []byte
	h.inspect(worker, id, func(s *stream) { out = slices.Clone(s.res.fwdBody) })
	return out
}

// GetClientResponse is everything the client received on this stream.
func (h *Host) GetClientResponse(worker int, id uint32) *ClientResponse {
	var out *ClientResponse
	h.inspect(worker, id, func(s *stream) {
		out = s.client.clone()
		out.Details = s.details
	})
	return out
}

// GetSentLocalResponse is the plugin's first proxy_send_local_response on
// the stream, or nil.
func (h *Host) GetSentLocalResponse(worker int, id uint32) *LocalResponse {
	var out *LocalResponse
	h.inspect(worker, id, func(s *stream) { out = s.local })
	return out
}

// RequestResumed reports whether a proxy_continue_stream(HTTP_REQUEST) took
// effect on the stream.
func (h *Host) RequestResumed(worker int, id uint32) bool {
	var r bool
	h.inspect(worker, id, func(s *stream) { r = s.req.resumed })
	return r
}

// ResponseResumed reports whether a proxy_continue_stream(HTTP_RESPONSE)
// took effect on the stream.
func (h *Host) ResponseResumed(worker int, id uint32) bool {
	var r bool
	h.inspect(worker, id, func(s *stream) { r = s.res.resumed })
	return r
}

// StreamCompleted reports whether the stream ended (on_log/on_done/on_delete ran).
func (h *Host) StreamCompleted(worker int, id uint32) bool {
	var r bool
	h.inspect(worker, id, func(s *stream) { r = s.completed })
	return r
}
