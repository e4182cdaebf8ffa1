package wasmhost

import (
	"slices"
	"strconv"
	"sync"
	"time"
)

// HTTPCall is one proxy_http_call dispatched by a plugin. The test (or
// Config.HTTPCall) answers it with Respond, Fail or, on a FakeClock,
// lets AdvanceAndTick time it out. The answer is posted to the calling VM
// and delivered as proxy_on_http_call_response on its root context — even
// if the stream that made the call is gone (Envoy owns the call on the root
// context, tetratelabs/proxy-wasm-go-sdk#261).
type HTTPCall struct {
	VM       int // worker index or MainVM
	Token    uint32
	Cluster  string
	Headers  [][2]string // as Envoy sends them: lower-cased, content-length added for a body
	Body     []byte
	Trailers [][2]string
	Timeout  time.Duration // 0 = none

	v       *vm
	started int64
	once    sync.Once
}

// Respond answers the call. headers need not include :status.
func (c *HTTPCall) Respond(status int, headers [][2]string, body []byte) {
	c.RespondWithTrailers(status, headers, body, nil)
}

// asyncResponseLimit is Envoy's AsyncClient response buffer limit
// (kBufferLimitForResponse, runtime http.async_response_buffer_limit): an
// answer whose body is larger is drained and the call reset
// (onFailure(ExceedResponseBufferLimit)), which the plugin sees as a failed
// call (review Z251).
const asyncResponseLimit = 32 << 20

// RespondWithTrailers answers the call with trailers too.
func (c *HTTPCall) RespondWithTrailers(status int, headers [][2]string, body []byte, trailers [][2]string) {
	if len(body) > asyncResponseLimit {
		c.Fail()
		return
	}
	hm := newHeaderMap(append([][2]string{{":status", strconv.Itoa(status)}}, headers...))
	var tm *headerMap
	if len(trailers) > 0 {
		tm = newHeaderMap(trailers)
	}
	c.answer(&httpCallResponse{headers: hm, body: append([]byte(nil), body...), trailers: tm})
}

// Fail resets the call (Envoy onHttpCallFailure): the plugin gets
// num_headers = 0 and proxy_get_status answers (11 BROKEN_CONNECTION,
// "reset") during the callback.
func (c *HTTPCall) Fail() { c.answer(nil) }

// timeout is Envoy's AsyncClient timeout: a locally generated 504
// (inferred from AsyncStreamImpl; not verified against a running Envoy).
func (c *HTTPCall) timeout() {
	body := []byte("upstream request timeout")
	c.answer(&httpCallResponse{headers: localReplyHeaders(504, body, nil), body: body})
}

func (c *HTTPCall) answer(resp *httpCallResponse) {
	answered := false
	c.once.Do(func() { answered = true })
	if !answered {
		return
	}
	h := c.v.h
	h.forgetHTTPCall(c)
	h.post(c.v.thread, func(v *vm) {
		if v != c.v || v.failed || v.httpCalls[c.Token] != c {
			return // the VM or the call is gone
		}
		delete(v.httpCalls, c.Token)
		root := v.root
		if resp == nil {
			root.statusCode, root.statusMsg = uint32(StatusBrokenConnection), "reset"
			v.addAfter(func() { root.statusMsg = "" })
			v.invoke(root, "proxy_on_http_call_response", uint64(root.id), uint64(c.Token), 0, 0, 0)
			return
		}
		root.httpResp = resp
		v.addAfter(func() { root.httpResp = nil })
		v.invoke(root, "proxy_on_http_call_response", uint64(root.id), uint64(c.Token),
			uint64(resp.headers.len()), uint64(len(resp.body)), uint64(resp.trailers.len()))
	})
	if !h.cfg.ManualDrain {
		h.Drain()
	}
}

func (h *Host) addHTTPCall(c *HTTPCall) {
	h.pendMu.Lock()
	h.httpPend = append(h.httpPend, c)
	h.pendMu.Unlock()
}

func (h *Host) forgetHTTPCall(c *HTTPCall) {
	h.pendMu.Lock()
	h.httpPend = slices.DeleteFunc(h.httpPend, func(x *HTTPCall) bool { return x == c })
	h.pendMu.Unlock()
}

// PendingHTTPCalls lists dispatched calls nobody has answered yet, oldest
// first.
func (h *Host) PendingHTTPCalls() []*HTTPCall {
	h.pendMu.Lock()
	defer h.pendMu.Unlock()
	return slices.Clone(h.httpPend)
}
