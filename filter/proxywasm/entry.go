package proxywasm

import (
	"fmt"
	"runtime/debug"
	"strconv"

	"github.com/modelcache/modelcache/filter/proxywasm/types"
)

// The host calls the exports in abi_exports_wasip1.go; they land here. This
// layer keeps the context tables, routes each callback to the plugin's
// context object, and makes sure a Go panic never reaches the host: a panic
// that escapes an export traps the VM and Envoy then fails every later
// request on that worker (or reloads the VM and loses its state). Instead the
// panic is logged, reported to the panic hook, and the stream fails open.

var (
	vmContext types.VMContext = types.DefaultVMContext{}
	roots     contextTable[rootState]
	streams   contextTable[streamState]
	// currentRoot is the root context of the callback being run; HTTP calls
	// are always owned by it (Envoy issues them on the root context).
	currentRoot uint32
	panicHook   func(where string, recovered any)
)

// collectorYields counts the yields to a marking collector (GCYields).
var collectorYields uint64

// collectorYield ends a request's last callback (proxy_on_delete) and each
// tick: if a garbage collection is marking, the collector runs now rather
// than through every later allocation's assist (yieldToCollector).
func collectorYield() {
	if yieldToCollector() {
		collectorYields++
	}
}

// GCYields is how many times the binding let a marking collector run.
func GCYields() uint64 { return collectorYields }

// callbacks counts the callbacks the host has made into the plugin.
var callbacks uint64

// Callback is the number of the current callback: it changes at the start
// of every callback the host makes into the plugin (before the plugin's
// own method), and never comes back. Plugins use it to keep per-callback
// caches, e.g. of the current time, without a hook run on every callback.
func Callback() uint64 { return callbacks }

func enter() { callbacks++ }

type rootState struct {
	ctx   types.PluginContext
	calls map[uint32]func(numHeaders, bodySize, numTrailers int)
}

type streamState struct {
	ctx  types.HttpContext
	root uint32
	// broken is set after a panic in one of this stream's callbacks; the
	// rest of the stream bypasses the plugin (fail open).
	broken bool
	done   bool
}

// brokenReplies are the answers that streams which must not pass their
// upstream's answer as it came give instead should a panic break them
// (SetBrokenReply), by stream id; deleted with the stream. Kept apart from
// streamState: every stream would carry, and zero, a field few use.
var brokenReplies map[uint32]*brokenReply

// brokenReply is a broken stream's answer in place of its upstream's.
type brokenReply struct {
	status  int
	headers [][2]string
	body    []byte
	sent    bool // its body took a chunk's place
}

// SetBrokenReply says that stream contextID's upstream answer must not
// reach its client as it came should a panic break the stream (its request
// was rewritten, say): the binding then replaces that answer's status and
// headers, and its body whole, with this one's. A stream that breaks only
// after its answer passed is not changed.
func SetBrokenReply(contextID uint32, status int, headers [][2]string, body []byte) {
	if brokenReplies == nil {
		brokenReplies = map[uint32]*brokenReply{}
	}
	brokenReplies[contextID] = &brokenReply{status: status, headers: headers, body: body}
}

// HasBrokenReply reports whether stream contextID has a reply set
// (SetBrokenReply) and its answer has not passed yet: broken now, its
// client gets that reply, not the answer. (The reply is let go of once the
// answer's end passes: its last body chunk, its trailers, or headers that
// end it.)
func HasBrokenReply(contextID uint32) bool {
	_, ok := brokenReplies[contextID]
	return ok
}

// brokenResponse is a broken stream's response callback cb (or the one
// that broke it) when it has a reply: the headers are replaced (they are
// still held: a reply is set for answers the plugin holds), the first body
// chunk is replaced by the reply's body and every later one by nothing.
// The response is never paused: the callback that broke it cannot tell
// whether it ended the answer. A request's callback passes.
func brokenResponse(contextID uint32, cb streamCallback) types.Action {
	r := brokenReplies[contextID]
	if r == nil {
		return types.ActionContinue
	}
	switch cb {
	case responseHeaders:
		replaceBrokenHeaders(r)
	case responseBody:
		if !r.sent {
			replaceBrokenHeaders(r)
			r.sent = true
			_ = ReplaceHttpResponseBody(r.body)
		} else {
			_ = ReplaceHttpResponseBody(nil)
		}
	}
	return types.ActionContinue
}

// replaceBrokenHeaders replaces the held response headers with r's (its
// length unknown until its body ends: no content-length).
func replaceBrokenHeaders(r *brokenReply) {
	if held, err := GetHttpResponseHeaders(); err == nil {
		for _, h := range held {
			if len(h[0]) > 0 && h[0][0] != ':' {
				_ = RemoveHttpResponseHeader(h[0])
			}
		}
	}
	_ = ReplaceHttpResponseHeader(":status", strconv.Itoa(r.status))
	for _, h := range r.headers {
		_ = AddHttpResponseHeader(h[0], h[1])
	}
}

// SetVMContext installs the plugin. Call it from an init function.
func SetVMContext(ctx types.VMContext) { vmContext = ctx }

// SetPanicHook registers a function called (after logging) whenever a
// callback panicked; plugins use it to count failures in a metric.
func SetPanicHook(f func(where string, recovered any)) { panicHook = f }

// StreamBrokenNotifier is implemented by a plugin context that keeps its
// streams in lists: the binding calls OnHttpStreamBroken with the id of a
// stream of its that a panic left broken, once the panic is recovered and
// again when the stream is deleted. It calls none of the stream's own
// methods again (OnHttpStreamDone and OnHttpStreamDeleted included), so
// the plugin takes it off its lists here.
type StreamBrokenNotifier interface {
	OnHttpStreamBroken(contextID uint32)
}

// HttpContextOf returns stream contextID's context (nil: no such stream):
// for a StreamBrokenNotifier, which may keep a broken stream on no list
// of its own (one waiting on a call of its own, say).
func HttpContextOf(contextID uint32) types.HttpContext {
	if s := streams.get(contextID); s != nil {
		return s.ctx
	}
	return nil
}

// broke tells the plugin context root that stream contextID is broken.
func broke(root, contextID uint32) {
	r := roots.get(root)
	if r == nil {
		return
	}
	if n, ok := r.ctx.(StreamBrokenNotifier); ok {
		func() {
			defer func() { _ = recover() }()
			n.OnHttpStreamBroken(contextID)
		}()
	}
}

// PauseReporter is implemented by an HttpContext its plugin pauses in one
// callback and resumes from a root callback (a follower woken, a request
// held for its body or a call, an answer held while it is judged). Paused
// reports the side paused now. Should a root callback panic with the
// stream's context effective, the binding breaks the stream as a panic in
// its own callback would, and resumes that side (fail open): the request
// goes on upstream; a held answer passes, or the stream's broken reply
// (SetBrokenReply) in its place.
type PauseReporter interface {
	Paused() (request, response bool)
}

// effective is the stream a root callback last made the effective context
// (SetEffectiveContext; 0 when each root callback starts): the stream the
// callback was acting on should it panic (breakEffective).
var effective uint32

// breakEffective breaks the stream a root callback was acting on when it
// panicked: the plugin hears no more of it (broke), and the side the
// plugin had left paused goes on (PauseReporter). A stream already broken
// or ended is left alone.
func breakEffective() {
	id := effective
	effective = 0
	s := streams.get(id)
	if s == nil || s.broken || s.done {
		return
	}
	s.broken = true
	broke(s.root, id)
	pr, ok := s.ctx.(PauseReporter)
	if !ok || SetEffectiveContext(id) != nil {
		return
	}
	var req, resp bool
	func() {
		defer func() { _ = recover() }() // nothing resumed
		req, resp = pr.Paused()
	}()
	if req {
		_ = ResumeHttpRequest()
	}
	if resp {
		if r := brokenReplies[id]; r != nil && !r.sent {
			replaceBrokenHeaders(r)
			r.sent = true
			_ = ReplaceHttpResponseBody(r.body)
		}
		_ = ResumeHttpResponse()
	}
	effective = 0
}

func recovered(where string, r any) {
	unpin()
	LogCritical(fmt.Sprintf("panic in %s (failing open): %v\n%s", where, r, debug.Stack()))
	if panicHook != nil {
		func() {
			defer func() { _ = recover() }()
			panicHook(where, r)
		}()
	}
}

func registerHTTPCall(token uint32, cb func(numHeaders, bodySize, numTrailers int)) {
	r := roots.get(currentRoot)
	if r == nil || cb == nil {
		return
	}
	if r.calls == nil {
		r.calls = map[uint32]func(int, int, int){}
	}
	r.calls[token] = cb
}

func onContextCreate(contextID, parentID uint32) {
	enter()
	defer func() {
		if r := recover(); r != nil {
			recovered("proxy_on_context_create", r)
		}
	}()
	if parentID == 0 {
		currentRoot = contextID
		roots.put(contextID, &rootState{ctx: vmContext.NewPluginContext(contextID)})
		return
	}
	root := roots.get(parentID)
	if root == nil || root.ctx == nil {
		return
	}
	currentRoot = parentID
	if h := root.ctx.NewHttpContext(contextID); h != nil {
		s := newStreamState()
		s.ctx, s.root = h, parentID
		streams.put(contextID, s)
	}
}

func onVMStart(rootID uint32, size uint32) (ok bool) {
	enter()
	defer func() {
		if r := recover(); r != nil {
			recovered("proxy_on_vm_start", r)
			ok = false
		}
	}()
	currentRoot = rootID
	return bool(vmContext.OnVMStart(int(size)))
}

func onConfigure(rootID uint32, size uint32) (ok bool) {
	enter()
	defer func() {
		if r := recover(); r != nil {
			recovered("proxy_on_configure", r)
			ok = false
		}
	}()
	root := roots.get(rootID)
	if root == nil || root.ctx == nil {
		return false
	}
	currentRoot = rootID
	return bool(root.ctx.OnPluginStart(int(size)))
}

func onTick(rootID uint32) {
	enter()
	defer collectorYield()
	effective = 0
	defer func() {
		if r := recover(); r != nil {
			recovered("proxy_on_tick", r)
			breakEffective()
		}
	}()
	if root := roots.get(rootID); root != nil && root.ctx != nil {
		currentRoot = rootID
		root.ctx.OnTick()
	}
}

func onQueueReady(rootID, queueID uint32) {
	enter()
	effective = 0
	defer func() {
		if r := recover(); r != nil {
			recovered("proxy_on_queue_ready", r)
			breakEffective()
		}
	}()
	if root := roots.get(rootID); root != nil && root.ctx != nil {
		currentRoot = rootID
		root.ctx.OnQueueReady(queueID)
	}
}

func onHTTPCallResponse(rootID, token, numHeaders, bodySize, numTrailers uint32) {
	enter()
	effective = 0
	defer func() {
		if r := recover(); r != nil {
			recovered("proxy_on_http_call_response", r)
			breakEffective()
		}
	}()
	root := roots.get(rootID)
	if root == nil {
		return
	}
	cb := root.calls[token]
	delete(root.calls, token)
	if cb != nil {
		currentRoot = rootID
		cb(int(numHeaders), int(bodySize), int(numTrailers))
	}
}

// onDone is called for roots (may delay) and streams.
func onDone(contextID uint32) bool {
	enter()
	// A stream's first (no context is both a stream and a root): most
	// often its end ran at proxy_on_log, and this call does nothing more.
	if s := streams.get(contextID); s != nil {
		if !s.done {
			streamCall(streamEndOnDone, contextID, 0, 0)
		}
		return true
	}
	if root := roots.get(contextID); root != nil {
		return rootDone(root, contextID)
	}
	return true
}

// rootDone runs a plugin context's OnPluginDone (proxy_on_done).
func rootDone(root *rootState, contextID uint32) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			recovered("proxy_on_done", r)
			ok = true
		}
	}()
	currentRoot = contextID
	if root.ctx == nil {
		return true
	}
	return root.ctx.OnPluginDone()
}

func onLog(contextID uint32) {
	enter()
	streamCall(streamEndOnLog, contextID, 0, 0)
}

func onDelete(contextID uint32) {
	enter()
	// The context's state is let go of on every path: here after a
	// panic, below otherwise. (Deleted in the guard on every path, it
	// would be deleted twice, a stream's state first below, on every
	// request.) One deferred call for the guard and the collector's
	// yield: each defer is code every request runs.
	defer func() {
		if r := recover(); r != nil {
			recovered("proxy_on_delete", r)
			streams.del(contextID)
			delete(brokenReplies, contextID)
			roots.del(contextID)
		}
		collectorYield()
	}()
	s := streams.get(contextID)
	if s == nil {
		roots.del(contextID) // a root context, or a stream the plugin did not take
		return
	}
	if !s.done { // its end came with neither proxy_on_log nor proxy_on_done
		streamCall(streamEndOnDelete, contextID, 0, 0)
	}
	streams.del(contextID)
	if len(brokenReplies) != 0 {
		delete(brokenReplies, contextID)
	}
	h, broken, root := s.ctx, s.broken, s.root
	*s = streamState{}
	freeStates = append(freeStates, s)
	// A call made in the deletion is filed under the stream's own root,
	// which Envoy answers it on: not the root that ran the last callback
	// (another plugin's in the VM) when the end ran earlier (review Z121).
	currentRoot = root
	// A stream that panicked is left to the garbage collector: its state
	// is whatever the panic left.
	if !broken {
		h.OnHttpStreamDeleted()
	} else {
		broke(root, contextID) // a panic in OnHttpStreamDone included
	}
}

// freeStates are streamStates of deleted streams, reused for new ones: a
// stream costs the garbage collector nothing here. Nothing refers to a
// streamState but the streams table.
var freeStates []*streamState

func newStreamState() *streamState {
	if n := len(freeStates); n > 0 {
		s := freeStates[n-1]
		freeStates = freeStates[:n-1]
		return s
	}
	return &streamState{}
}

// streamCallback names the stream callback streamCall runs. The stream's
// end (OnHttpStreamDone) runs once, on the first of on_log, on_done and
// on_delete: Envoy calls on_log first, but a stream without access logging
// may skip it.
type streamCallback uint8

const (
	requestHeaders streamCallback = iota
	requestBody
	requestTrailers
	responseHeaders
	responseBody
	responseTrailers
	streamEndOnLog // from here on: the stream's end
	streamEndOnDone
	streamEndOnDelete
)

// callbackExports name the callbacks in the log of a panic.
var callbackExports = [...]string{
	requestHeaders:    "proxy_on_request_headers",
	requestBody:       "proxy_on_request_body",
	requestTrailers:   "proxy_on_request_trailers",
	responseHeaders:   "proxy_on_response_headers",
	responseBody:      "proxy_on_response_body",
	responseTrailers:  "proxy_on_response_trailers",
	streamEndOnLog:    "proxy_on_log",
	streamEndOnDone:   "proxy_on_done",
	streamEndOnDelete: "proxy_on_delete",
}

// streamCall runs callback cb of stream contextID (n and eos are its
// arguments) with fail-open panic handling: a panic leaves the stream
// broken, and the plugin is told at once (StreamBrokenNotifier). It is one
// function with one guard for every stream callback: a closure per
// callback, and a guard of its own for the stream's end, each cost a
// request the code they run (RATIONALE.md, "The code a request runs").
func streamCall(cb streamCallback, contextID, n, eos uint32) (action types.Action) {
	s := streams.get(contextID)
	if s == nil || s.broken {
		if s != nil && len(brokenReplies) != 0 {
			return brokenResponse(contextID, cb)
		}
		return types.ActionContinue
	}
	if cb >= streamEndOnLog {
		if s.done {
			return types.ActionContinue
		}
		s.done = true
	}
	defer func() {
		if r := recover(); r != nil {
			s.broken = true
			recovered(callbackExports[cb], r)
			broke(s.root, contextID)
			action = types.ActionContinue
			if len(brokenReplies) != 0 {
				action = brokenResponse(contextID, cb)
			}
		}
	}()
	currentRoot = s.root
	// One return below: Go runs the deferred guard's code at every return
	// after the defer, so a return per case would copy it seven times.
	h := s.ctx
	switch cb {
	case requestHeaders:
		action = h.OnHttpRequestHeaders(int(n), eos != 0)
	case requestBody:
		action = h.OnHttpRequestBody(int(n), eos != 0)
	case requestTrailers:
		action = h.OnHttpRequestTrailers(int(n))
	case responseHeaders:
		action = h.OnHttpResponseHeaders(int(n), eos != 0)
	case responseBody:
		action = h.OnHttpResponseBody(int(n), eos != 0)
	case responseTrailers:
		action = h.OnHttpResponseTrailers(int(n))
	default:
		h.OnHttpStreamDone()
	}
	if len(brokenReplies) != 0 {
		answerPassed(cb, contextID, eos != 0, action)
	}
	return action
}

// answerPassed lets go of stream contextID's broken reply once its answer's
// end passed (its last body chunk, its trailers, or headers that end it):
// a later break changes nothing the client gets. Out of line: most VMs
// hold no reply.
//
//go:noinline
func answerPassed(cb streamCallback, contextID uint32, eos bool, action types.Action) {
	if action == types.ActionContinue && (cb == responseTrailers || eos && (cb == responseHeaders || cb == responseBody)) {
		delete(brokenReplies, contextID)
	}
}

func onRequestHeaders(contextID, numHeaders, eos uint32) types.Action {
	enter()
	return streamCall(requestHeaders, contextID, numHeaders, eos)
}

func onRequestBody(contextID, size, eos uint32) types.Action {
	enter()
	return streamCall(requestBody, contextID, size, eos)
}

func onRequestTrailers(contextID, n uint32) types.Action {
	enter()
	return streamCall(requestTrailers, contextID, n, 0)
}

func onResponseHeaders(contextID, numHeaders, eos uint32) types.Action {
	enter()
	return streamCall(responseHeaders, contextID, numHeaders, eos)
}

func onResponseBody(contextID, size, eos uint32) types.Action {
	enter()
	return streamCall(responseBody, contextID, size, eos)
}

func onResponseTrailers(contextID, n uint32) types.Action {
	enter()
	return streamCall(responseTrailers, contextID, n, 0)
}
